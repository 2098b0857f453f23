"""The change log: a sequence number per change, assigned in commit order.

Numbers come from the single "changes" counter row, bumped by an UPDATE at the very
end of each writing transaction. The row lock it takes is held until commit, so a
transaction that gets number N commits before any that gets N+1, and a reader that
sees N has already been able to see every number below it. Taking the counter last
keeps lock order the same everywhere (object rows, then the counter): no deadlock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from controller.store.records import Change
from controller.store.tables import changes, counters

COUNTER = "changes"


@dataclass(frozen=True)
class ChangeDraft:
    """A change to record: topic (object, status, event, observed, source), op, target."""

    topic: str
    op: str
    kind: str
    name: str
    resource_version: int | None = None


def record_changes(conn: Connection, drafts: list[ChangeDraft], now: datetime) -> int | None:
    """Append `drafts` to the change log; return the last number used (None if none)."""
    if not drafts:
        return None
    last = conn.execute(
        update(counters)
        .where(counters.c.name == COUNTER)
        .values(value=counters.c.value + len(drafts))
        .returning(counters.c.value)
    ).scalar_one()
    first = last - len(drafts) + 1
    conn.execute(
        insert(changes),
        [
            {
                "seq": first + i,
                "topic": d.topic,
                "op": d.op,
                "kind": d.kind,
                "name": d.name,
                "resource_version": d.resource_version,
                "at": now,
            }
            for i, d in enumerate(drafts)
        ],
    )
    return last


def current_seq(conn: Connection) -> int:
    """Return the number of the newest change (0 before any)."""
    return conn.execute(select(counters.c.value).where(counters.c.name == COUNTER)).scalar_one()


def changes_since(conn: Connection, seq: int, limit: int) -> list[Change]:
    """Return up to `limit` changes numbered above `seq`, oldest first."""
    rows = conn.execute(
        select(changes).where(changes.c.seq > seq).order_by(changes.c.seq).limit(limit)
    )
    return [Change(r.seq, r.topic, r.op, r.kind, r.name, r.resource_version, r.at) for r in rows]


def oldest_seq(conn: Connection) -> int | None:
    """Return the number of the oldest change still kept (None when the log is empty)."""
    return conn.execute(select(func.min(changes.c.seq))).scalar_one()


def trim_changes(conn: Connection, keep_after: int) -> int:
    """Delete changes numbered at or below `keep_after`; return how many were deleted."""
    return conn.execute(delete(changes).where(changes.c.seq <= keep_after)).rowcount
