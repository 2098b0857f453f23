"""Status from a plan's verdicts and the executor's outcomes (pure).

One status write per object per pass: Reconciling while actions are planned or in
flight, Stalled when nothing will change until the spec or the fleet does, Ready
True only when observed equals desired.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from controller.conditions import set_condition
from controller.plan.model import ObjectKey, ObjectVerdict
from schemas.kinds import KINDS
from schemas.meta import ConditionStatus, ConditionType, ObjectStatus

ACTION_FAILED = "ActionFailed"
"""An action for this object failed in the last pass; it is retried on the next one."""


def _field_names(model: type[ObjectStatus]) -> dict[str, str]:
    """Return field name and camelCase alias -> field name, for verdict fields of either form."""
    names = {name: name for name in model.model_fields}
    names.update({f.alias: name for name, f in model.model_fields.items() if f.alias})
    return names


def status_type(kind: str) -> type[ObjectStatus]:
    """Return the status model of a kind."""
    return KINDS[kind].model_fields["status"].annotation.__args__[0]  # type: ignore[union-attr]


_FIELD_NAMES = {status_type(kind): _field_names(status_type(kind)) for kind in KINDS}


def build_status(
    kind: str,
    previous: ObjectStatus | None,
    verdict: ObjectVerdict,
    *,
    generation: int | None,
    revision: str | None,
    failure: str | None,
    now: datetime,
) -> ObjectStatus:
    """Return the new status of one object.

    `failure` is the message of an action for this object that failed in this pass:
    it turns Ready False (reason ActionFailed) without Stalled, since the next pass
    retries. Kind-specific fields come from `verdict.fields`; fields the verdict does
    not mention keep their previous values.
    """
    model = status_type(kind)
    base: dict[str, Any] = previous.model_dump() if previous is not None else {}
    base.update(
        {_FIELD_NAMES[model][k]: v for k, v in verdict.fields.items() if k in _FIELD_NAMES[model]}
    )
    conditions = list(previous.conditions) if previous is not None else []
    ready, stalled, reconciling = (
        ConditionType.READY.value,
        ConditionType.STALLED.value,
        ConditionType.RECONCILING.value,
    )
    true, false = ConditionStatus.TRUE, ConditionStatus.FALSE
    said = (verdict.reason, verdict.message)
    if failure is not None:
        steps = [(reconciling, true, *said), (ready, false, ACTION_FAILED, failure)]
    elif verdict.ready:
        conditions = [c for c in conditions if c.type not in (stalled, reconciling)]
        steps = [(ready, true, *said)]
    elif verdict.stalled:
        steps = [(stalled, true, *said), (ready, false, *said)]
    else:
        steps = [(reconciling, true, *said), (ready, false, *said)]
    for type_, value, reason, message in steps:
        conditions = set_condition(
            conditions, type_, value, reason, message, generation=generation, now=now
        )
    base["conditions"] = conditions
    base["observed_generation"] = generation
    base["source_revision"] = revision
    return model.model_validate(base)


def build_statuses(
    verdicts: Mapping[ObjectKey, ObjectVerdict],
    previous: Mapping[ObjectKey, ObjectStatus | None],
    generations: Mapping[ObjectKey, int | None],
    revisions: Mapping[ObjectKey, str | None],
    failures: Mapping[ObjectKey, str],
    now: datetime,
) -> dict[ObjectKey, ObjectStatus]:
    """Return the new status of every object that has a verdict."""
    return {
        key: build_status(
            key[0],
            previous.get(key),
            verdict,
            generation=generations.get(key),
            revision=revisions.get(key),
            failure=failures.get(key),
            now=now,
        )
        for key, verdict in verdicts.items()
        if key[0] in KINDS
    }
