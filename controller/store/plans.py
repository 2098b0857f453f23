"""Plan history: each computed plan with its actions, and each action's outcome."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from controller.store.canonical import json_array_text
from controller.store.errors import InvalidInput, NotFound
from controller.store.records import ActionOutcome, PlanRecord
from controller.store.tables import plan_outcomes, plans
from controller.store.upsert import upsert


def record_plan(
    conn: Connection,
    actions: Sequence[Any],
    source: str | None,
    revision: str | None,
    summary: str,
    now: datetime,
) -> int:
    """Store a plan (actions as dicts, models or dataclasses); return its id."""
    docs = json_array_text(actions, "actions")
    return conn.execute(
        insert(plans)
        .values(created_at=now, source=source, revision=revision, actions=docs, summary=summary)
        .returning(plans.c.id)
    ).scalar_one()


def _action_count(conn: Connection, plan_id: int) -> int:
    query = select(plans.c.actions).where(plans.c.id == plan_id)
    actions = conn.execute(query).scalar_one_or_none()
    if actions is None:
        raise NotFound("Plan", str(plan_id))
    return len(actions)


def record_outcome(
    conn: Connection,
    plan_id: int,
    index: int,
    ok: bool,
    error: str | None,
    now: datetime,
    count: int | None = None,
) -> None:
    """Record how action `index` of a plan ended; recording it again replaces the outcome.

    `count` is the plan's number of actions when the caller knows it (reading it decodes
    every action of the plan: at 30,000 actions that is most of the cost of an outcome).
    """
    if count is None:
        count = _action_count(conn, plan_id)
    if not 0 <= index < count:
        raise InvalidInput("index", f"plan {plan_id} has {count} actions, got index {index}")
    upsert(
        conn,
        plan_outcomes,
        {"plan_id": plan_id, "action_index": index, "ok": ok, "error": error, "at": now},
        keys=["plan_id", "action_index"],
        update_columns=["ok", "error", "at"],
    )


def record_outcomes(
    conn: Connection,
    plan_id: int,
    outcomes: Sequence[tuple[int, bool, str | None]],
    now: datetime,
    count: int | None = None,
) -> None:
    """Record many (index, ok, error) outcomes of one plan as `record_outcome` does each."""
    if count is None:
        count = _action_count(conn, plan_id)
    latest: dict[int, dict[str, Any]] = {}
    for index, ok, error in outcomes:
        if not 0 <= index < count:
            raise InvalidInput("index", f"plan {plan_id} has {count} actions, got index {index}")
        latest[index] = {"plan_id": plan_id, "action_index": index, "ok": ok, "error": error}
    if not latest:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(plan_outcomes).values(at=now)
    statement = statement.on_conflict_do_update(
        index_elements=["plan_id", "action_index"],
        set_={col: statement.excluded[col] for col in ("ok", "error", "at")},
    )
    conn.execute(statement, list(latest.values()))


def finish_plan(conn: Connection, plan_id: int, summary: str | None, now: datetime) -> None:
    """Mark the plan finished, replacing its summary when one is given."""
    values: dict[str, Any] = {"finished_at": now}
    if summary is not None:
        values["summary"] = summary
    if conn.execute(update(plans).where(plans.c.id == plan_id).values(**values)).rowcount != 1:
        raise NotFound("Plan", str(plan_id))


def finish_open_plans(conn: Connection, summary: str, now: datetime) -> int:
    """Mark every plan not yet finished as finished with `summary`; return how many."""
    query = update(plans).where(plans.c.finished_at.is_(None))
    return conn.execute(query.values(finished_at=now, summary=summary)).rowcount


def _records(conn: Connection, rows: list[Any]) -> list[PlanRecord]:
    ids = [r.id for r in rows]
    outcomes: dict[int, dict[int, ActionOutcome]] = {i: {} for i in ids}
    if ids:
        query = select(plan_outcomes).where(plan_outcomes.c.plan_id.in_(ids))
        for o in conn.execute(query):
            outcomes[o.plan_id][o.action_index] = ActionOutcome(o.ok, o.error, o.at)
    return [
        PlanRecord(
            id=r.id,
            created_at=r.created_at,
            finished_at=r.finished_at,
            source=r.source,
            revision=r.revision,
            actions=r.actions,
            outcomes=[outcomes[r.id].get(i) for i in range(len(r.actions))],
            summary=r.summary,
        )
        for r in rows
    ]


def get_plan(conn: Connection, plan_id: int) -> PlanRecord:
    """Return the plan with its outcomes; raise NotFound."""
    rows = conn.execute(select(plans).where(plans.c.id == plan_id)).all()
    if not rows:
        raise NotFound("Plan", str(plan_id))
    return _records(conn, rows)[0]


def list_plans(conn: Connection, source: str | None = None, limit: int = 20) -> list[PlanRecord]:
    """Return the newest plans first, optionally of one source."""
    query = select(plans).order_by(plans.c.id.desc()).limit(limit)
    if source is not None:
        query = query.where(plans.c.source == source)
    return _records(conn, conn.execute(query).all())
