"""The scheduler: pure placement, rebalancing and drain decisions over HostViews."""

from controller.scheduler.affinity import AffinityIndex
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
    "HostView",
    "Placement",
    "SchedulingPass",
    "VMRequest",
    "check_placement",
    "placement_order",
    "schedule_many",
    "schedule_vm",
]
