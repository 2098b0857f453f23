"""The pure planner: (desired, observed, policy) -> Plan of ordered actions and verdicts.

`plan` is imported on first use: the scheduler imports this package's model, and the
planner imports the scheduler, so an eager import here would be circular.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controller.plan.model import (
    Action,
    ActionType,
    Desired,
    HostObservation,
    ObjectKey,
    ObjectVerdict,
    Observed,
    Plan,
    PolicyContext,
)

if TYPE_CHECKING:
    from controller.plan.planner import plan

__all__ = [
    "Action",
    "ActionType",
    "Desired",
    "HostObservation",
    "ObjectKey",
    "ObjectVerdict",
    "Observed",
    "Plan",
    "PolicyContext",
    "plan",
]


def __getattr__(name: str) -> Any:
    if name == "plan":
        from controller.plan.planner import plan

        return plan
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
