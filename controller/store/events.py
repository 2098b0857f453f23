"""Events, Kubernetes-like: the same (object, type, reason, message) within a window counts up."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from controller.store.changes import ChangeDraft
from controller.store.errors import InvalidInput
from controller.store.records import EventRecord
from controller.store.tables import events
from schemas.meta import check_reason

EVENT_TYPES = ("Normal", "Warning")


def to_event(row: Any) -> EventRecord:
    """Return the record of an events row."""
    return EventRecord(
        id=row.id,
        type=row.type,
        reason=row.reason,
        message=row.message,
        kind=row.object_kind,
        name=row.object_name,
        count=row.count,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        component=row.component,
        identity=row.identity,
    )


def _validate(type_: str, reason: str, kind: str, name: str, component: str) -> None:
    if type_ not in EVENT_TYPES:
        raise InvalidInput("type", f"expected Normal or Warning, got {type_!r}")
    try:
        check_reason(reason)
    except ValueError as exc:
        raise InvalidInput("reason", str(exc)) from exc
    for field, value in (("kind", kind), ("name", name), ("component", component)):
        if not value:
            raise InvalidInput(field, "must not be empty")


def record_event(
    conn: Connection,
    kind: str,
    name: str,
    type_: str,
    reason: str,
    message: str,
    component: str,
    identity: str | None,
    now: datetime,
    window: timedelta,
) -> tuple[EventRecord, list[ChangeDraft]]:
    """Record an event, or count a repeat of one last seen within `window`; return it."""
    _validate(type_, reason, kind, name, component)
    same = (
        select(events)
        .where(
            events.c.object_kind == kind,
            events.c.object_name == name,
            events.c.reason == reason,
            events.c.type == type_,
            events.c.message == message,
            events.c.last_seen >= now - window,
        )
        .order_by(events.c.last_seen.desc(), events.c.id.desc())
        .limit(1)
        .with_for_update()
    )
    row = conn.execute(same).first()
    if row is not None:
        conn.execute(
            update(events)
            .where(events.c.id == row.id)
            .values(count=events.c.count + 1, last_seen=now, identity=identity or row.identity)
        )
        op = "updated"
        event_id = row.id
    else:
        event_id = conn.execute(
            insert(events)
            .values(
                type=type_,
                reason=reason,
                message=message,
                object_kind=kind,
                object_name=name,
                count=1,
                first_seen=now,
                last_seen=now,
                component=component,
                identity=identity,
            )
            .returning(events.c.id)
        ).scalar_one()
        op = "created"
    stored = conn.execute(select(events).where(events.c.id == event_id)).one()
    return to_event(stored), [ChangeDraft("event", op, kind, name, event_id)]


def record_events(
    conn: Connection,
    items: list[tuple[str, str, str, str, str]],
    component: str,
    identity: str | None,
    now: datetime,
    window: timedelta,
) -> list[ChangeDraft]:
    """Record many (kind, name, type, reason, message) events as `record_event` does each,
    with one query to find repeats, one bulk update and one bulk insert; return the changes.

    Repeats within the batch count up the same event. Repeats are locked (FOR UPDATE on
    PostgreSQL) as `record_event` locks them.
    """
    for kind, name, type_, reason, _message in items:
        _validate(type_, reason, kind, name, component)
    names = sorted({name for _kind, name, *_rest in items})
    found: dict[tuple[str, str, str, str, str], Any] = {}
    for start in range(0, len(names), 500):
        query = (
            select(events)
            .where(
                events.c.object_name.in_(names[start : start + 500]),
                events.c.last_seen >= now - window,
            )
            .order_by(events.c.last_seen, events.c.id)
            .with_for_update()
        )
        for row in conn.execute(query):
            found[(row.object_kind, row.object_name, row.type, row.reason, row.message)] = row
    bumps: dict[int, int] = {}
    new: dict[tuple[str, str, str, str, str], int] = {}
    for item in items:
        row = found.get(item)
        if row is not None:
            bumps[row.id] = bumps.get(row.id, 0) + 1
        else:
            new[item] = new.get(item, 0) + 1
    drafts: list[ChangeDraft] = []
    if bumps:
        conn.execute(
            update(events)
            .where(events.c.id == bindparam("event_id"))
            .values(
                count=events.c.count + bindparam("bump"),
                last_seen=now,
                identity=func.coalesce(bindparam("who"), events.c.identity),
            ),
            [{"event_id": i, "bump": n, "who": identity} for i, n in bumps.items()],
        )
        by_id = {row.id: row for row in found.values()}
        drafts += [
            ChangeDraft("event", "updated", by_id[i].object_kind, by_id[i].object_name, i)
            for i in bumps
        ]
    if new:
        rows = [
            {
                "type": type_,
                "reason": reason,
                "message": message,
                "object_kind": kind,
                "object_name": name,
                "count": n,
                "first_seen": now,
                "last_seen": now,
                "component": component,
                "identity": identity,
            }
            for (kind, name, type_, reason, message), n in new.items()
        ]
        ids = conn.execute(
            insert(events).returning(events.c.id, sort_by_parameter_order=True), rows
        ).scalars()
        drafts += [
            ChangeDraft("event", "created", row["object_kind"], row["object_name"], event_id)
            for row, event_id in zip(rows, ids, strict=True)
        ]
    return drafts


def list_events(
    conn: Connection,
    kind: str | None = None,
    name: str | None = None,
    since: datetime | None = None,
    type_: str | None = None,
    limit: int = 100,
) -> list[EventRecord]:
    """Return events newest first (by last_seen), filtered by object, time and type."""
    query = select(events).order_by(events.c.last_seen.desc(), events.c.id.desc()).limit(limit)
    if kind is not None:
        query = query.where(events.c.object_kind == kind)
    if name is not None:
        query = query.where(events.c.object_name == name)
    if since is not None:
        query = query.where(events.c.last_seen >= since)
    if type_ is not None:
        query = query.where(events.c.type == type_)
    return [to_event(r) for r in conn.execute(query)]


def prune_events(conn: Connection, before: datetime) -> int:
    """Delete events last seen before `before`; return how many."""
    return conn.execute(delete(events).where(events.c.last_seen < before)).rowcount
