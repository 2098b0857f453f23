"""Leader terms and fencing tokens, kept as rows of the `counters` table.

`leader.epoch` is the fencing token: it grows by one whenever a different controller
takes the lead. `leader.holder` identifies the holder (a 63-bit hash of its identity)
and `leader.expires_ms` is when its lease runs out (unix milliseconds by the holder's
clock). Every write of a fenced Store checks its token against `leader.epoch` inside
its own transaction, with the row locked for share on PostgreSQL: a new leader's
bump waits for writes in flight, and every write after it sees the new epoch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from controller.store.errors import Fenced
from controller.store.tables import counters

EPOCH = "leader.epoch"
HOLDER = "leader.holder"
EXPIRES = "leader.expires_ms"


@dataclass(frozen=True)
class Term:
    """The lead as stored: fencing token, holder hash, lease expiry (unix ms)."""

    epoch: int
    holder: int
    expires_ms: int


def holder_hash(identity: str) -> int:
    """Return the 63-bit number that stands for `identity` in the counters table."""
    return int.from_bytes(hashlib.sha256(identity.encode()).digest()[:8], "big") >> 1


def _ensure_rows(conn: Connection) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    rows = [{"name": name, "value": 0} for name in (EPOCH, HOLDER, EXPIRES)]
    conn.execute(dialect.insert(counters).on_conflict_do_nothing(index_elements=["name"]), rows)


def read_term(conn: Connection, lock: bool = False) -> Term:
    """Return the stored term (zeros before any leader); `lock` locks it for update."""
    query = select(counters.c.name, counters.c.value).where(
        counters.c.name.in_((EPOCH, HOLDER, EXPIRES))
    )
    rows = dict(conn.execute(query.with_for_update() if lock else query).all())
    if len(rows) < 3:
        _ensure_rows(conn)
        rows = dict(conn.execute(query.with_for_update() if lock else query).all())
    return Term(rows[EPOCH], rows[HOLDER], rows[EXPIRES])


def claim(conn: Connection, identity: str, now_ms: int, ttl_ms: int) -> Term | None:
    """Take or keep the lead for `identity` until now + ttl; return the term, or None
    when another holder's lease has not run out. A new holder gets the next epoch."""
    term = read_term(conn, lock=True)
    me = holder_hash(identity)
    if term.holder != me and term.expires_ms > now_ms:
        return None
    epoch = term.epoch if term.holder == me and term.epoch > 0 else term.epoch + 1
    new = Term(epoch, me, now_ms + ttl_ms)
    for name, value in ((EPOCH, new.epoch), (HOLDER, new.holder), (EXPIRES, new.expires_ms)):
        conn.execute(update(counters).where(counters.c.name == name).values(value=value))
    return new


def renew(conn: Connection, identity: str, epoch: int, now_ms: int, ttl_ms: int) -> Term | None:
    """Extend the lead of `identity` in term `epoch`; None when that term is over."""
    term = read_term(conn, lock=True)
    if term.epoch != epoch or term.holder != holder_hash(identity):
        return None
    conn.execute(update(counters).where(counters.c.name == EXPIRES).values(value=now_ms + ttl_ms))
    return Term(epoch, term.holder, now_ms + ttl_ms)


def release(conn: Connection, identity: str, epoch: int) -> bool:
    """End the lead of `identity` in term `epoch` at once; return whether it held it."""
    term = read_term(conn, lock=True)
    if term.epoch != epoch or term.holder != holder_hash(identity):
        return False
    conn.execute(update(counters).where(counters.c.name == EXPIRES).values(value=0))
    return True


def check_token(conn: Connection, token: int) -> None:
    """Raise Fenced unless `token` is the current epoch (locks the epoch row for share)."""
    query = select(counters.c.value).where(counters.c.name == EPOCH)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    current = conn.execute(query).scalar_one_or_none()
    if current != token:
        raise Fenced(token, current)
