"""Dry runs: the plan the controller would make if a write were applied; nothing is written."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from controller.loop import plan_action_record, policy_context, summarize_plan
from controller.observe import read_observed
from controller.plan import Desired, ObjectKey, plan
from controller.store import Store, StoredObject
from schemas.kinds import AnyResource


def preview_plan(
    store: Store,
    changes: Mapping[ObjectKey, AnyResource | None],
    now: datetime | None = None,
) -> dict[str, Any]:
    """Return the plan for the stored desired state with `changes` swapped in (None: deleted).

    Observed state is the store's last observation of every host: no agent is called.
    The answer holds the actions (as the plan history keeps them), a summary, and the
    planner's verdict on each changed object.
    """
    stored = store.list().items
    deleted = {(s.kind, s.name) for s in store.list_deleted()}
    objects = {(s.kind, s.name): s.obj for s in stored}
    for key, obj in changes.items():
        if obj is None:
            objects.pop(key, None)
            deleted.add(key)
        else:
            objects[key] = obj
            deleted.discard(key)
    desired = Desired(objects=objects, deleted=frozenset(deleted))
    result = plan(
        desired,
        read_observed(store, now or datetime.now(UTC)),
        policy_context(_with(stored, changes)),
    )
    return {
        "summary": summarize_plan(result) if result.actions else "0 actions",
        "actions": [plan_action_record(a) for a in result.actions],
        "verdicts": [
            {
                "kind": key[0],
                "name": key[1],
                "ready": v.ready,
                "stalled": v.stalled,
                "reason": v.reason,
                "message": v.message,
            }
            for key, v in sorted(result.verdicts.items())
            if key in changes
        ],
    }


def _with(
    stored: list[StoredObject], changes: Mapping[ObjectKey, AnyResource | None]
) -> list[StoredObject]:
    """Return `stored` with changed objects replaced (policies and hosts may be among them)."""
    by_key = {(s.kind, s.name): s for s in stored}
    for key, obj in changes.items():
        if obj is None:
            by_key.pop(key, None)
        elif key in by_key:
            by_key[key] = replace(by_key[key], obj=obj)
        else:
            by_key[key] = StoredObject(
                obj=obj,
                source="api:dry-run",
                revision=None,
                generation=0,
                resource_version=0,
                status_version=None,
                created_at=now_utc(),
                updated_at=now_utc(),
            )
    return list(by_key.values())


def now_utc() -> datetime:
    return datetime.now(UTC)
