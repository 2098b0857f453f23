"""The scheduler: pure placement, rebalancing and drain decisions over HostViews."""

from controller.scheduler.affinity import AffinityIndex
from controller.scheduler.balance import (
    DrainPlan,
    DrainVerdict,
    Move,
    RebalancePlan,
    plan_drain,
    plan_rebalance,
)
from controller.scheduler.model import HostView, Placement, VMRequest
from controller.scheduler.schedule import (
    NO_HOST_FITS,
    SCHEDULED,
    SchedulingPass,
    check_placement,
    placement_order,
    schedule_many,
    schedule_vm,
)

__all__ = [
    "NO_HOST_FITS",
    "SCHEDULED",
    "AffinityIndex",
    "DrainPlan",
    "DrainVerdict",
    "HostView",
    "Move",
    "Placement",
    "RebalancePlan",
    "SchedulingPass",
    "VMRequest",
    "check_placement",
    "placement_order",
    "plan_drain",
    "plan_rebalance",
    "schedule_many",
    "schedule_vm",
]
