"""Condition bookkeeping, as in Kubernetes and Flux: one place for the rules.

- Every write stamps `observedGeneration`.
- `lastTransitionTime` changes only when status, reason or message changes (UTC, seconds).
- Reconciling and Stalled never hold together: setting one removes the other.
- Conditions are sorted Stalled, Reconciling, Ready, then the rest by type.
"""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.meta import Condition, ConditionStatus, ConditionType, ObjectStatus

_ORDER = {
    ConditionType.STALLED.value: 0,
    ConditionType.RECONCILING.value: 1,
    ConditionType.READY.value: 2,
}
_EXCLUSIVE = {
    ConditionType.STALLED.value: ConditionType.RECONCILING.value,
    ConditionType.RECONCILING.value: ConditionType.STALLED.value,
}


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    """Return `conditions` with `type_` set; the transition time moves only on a real change.

    `now` must be timezone-aware; it is stored in UTC, truncated to seconds.
    """
    now = now.astimezone(UTC).replace(microsecond=0)
    current = next((c for c in conditions if c.type == type_), None)
    unchanged = current is not None and (current.status, current.reason, current.message) == (
        status,
        reason,
        message,
    )
    new = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        observed_generation=generation,
        last_transition_time=current.last_transition_time if unchanged and current else now,
    )
    rest = [c for c in conditions if c.type not in (type_, _EXCLUSIVE.get(type_))]
    return sort_conditions([*rest, new])


def remove_condition(conditions: list[Condition], type_: str) -> list[Condition]:
    """Return `conditions` without `type_`."""
    return [c for c in conditions if c.type != type_]


def sort_conditions(conditions: list[Condition]) -> list[Condition]:
    """Return conditions in the display order: Stalled, Reconciling, Ready, others by type."""
    return sorted(conditions, key=lambda c: (_ORDER.get(c.type, 3), c.type))


def summarize(status: ObjectStatus | None) -> tuple[str, str, str]:
    """Return (ready, reason, message) for tables: "True"/"False"/"Unknown" and its reason."""
    if status is None:
        return ConditionStatus.UNKNOWN.value, "", "not yet reconciled"
    ready = status.condition(ConditionType.READY.value)
    if ready is None:
        return ConditionStatus.UNKNOWN.value, "", "not yet reconciled"
    stalled = status.condition(ConditionType.STALLED.value)
    shown = stalled if stalled is not None and stalled.status is ConditionStatus.TRUE else ready
    return ready.status.value, shown.reason, shown.message
