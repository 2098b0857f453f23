"""Observed state per host: the agent's last full state, reachability, and when a power
fence confirmed the host off. (Fencing leases live in etcd, kept by the agents.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from controller.store.canonical import JSONText, content_hash, to_document
from controller.store.changes import ChangeDraft
from controller.store.errors import InvalidInput, NotFound
from controller.store.records import ObservedHost
from controller.store.tables import observed
from controller.store.upsert import upsert


def _row(conn: Connection, host: str) -> Any:
    return conn.execute(select(observed).where(observed.c.host == host)).first()


def _head(conn: Connection, host: str) -> Any:
    """Return the row's reachability, error and state hash, without decoding its state."""
    columns = (observed.c.reachable, observed.c.last_error, observed.c.state_hash)
    return conn.execute(select(*columns).where(observed.c.host == host)).first()


def to_observed(row: Any, state: Any = None) -> ObservedHost:
    """Return the record of an observed row (`state` given when the row was read without it)."""
    return ObservedHost(
        host=row.host,
        reachable=row.reachable,
        state=state if state is not None else getattr(row, "state", None),
        last_seen=row.last_seen,
        last_error=row.last_error,
        power_fenced_at=row.power_fenced_at,
        updated_at=row.updated_at,
        state_hash=row.state_hash,
    )


def _ensure_row(conn: Connection, host: str, now: datetime) -> Any:
    """Create the host's row when missing; return its head (see `_head`)."""
    if not host:
        raise InvalidInput("host", "a host name is required")
    head = _head(conn, host)
    if head is None:
        upsert(
            conn,
            observed,
            {"host": host, "reachable": False, "updated_at": now},
            keys=["host"],
            update_columns=["updated_at"],
        )
        head = _head(conn, host)
    return head


VOLATILE_FIELDS = frozenset({"free_memory_mib", "events_seq"})
"""HostState fields that move on every read without anything a plan or a status depends
on having changed: the host's free memory and the agent's event counter (and, below,
the lease's countdown). Left out of the state's hash, they do not count as a change."""


def material_hash(doc: Mapping[str, Any]) -> str:
    """Return the hash of a state document without its volatile fields: VOLATILE_FIELDS,
    the lease's expires_in_s, and per domain when its guest information was read and
    how full the guest's filesystems are. An observation is a change only when this moves."""
    material = {k: v for k, v in doc.items() if k not in VOLATILE_FIELDS}
    lease = material.get("lease")
    if isinstance(lease, Mapping):
        material["lease"] = _without(lease, "expires_in_s")
    domains = material.get("domains")
    if isinstance(domains, list):
        material["domains"] = [_steady_domain(d) for d in domains]
    return content_hash(material)


MATERIAL_EXCLUDE: dict[str, Any] = {
    **{name: True for name in VOLATILE_FIELDS},
    "lease": {"expires_in_s": True},
    "domains": {"__all__": {"guest": {"at": True, "filesystems": {"__all__": {"used_bytes"}}}}},
}
"""The fields material_hash leaves out, as a pydantic `exclude` of a HostState model."""


def model_material_hash(state: BaseModel) -> str:
    """Return the hash of a state model's material fields (those material_hash keeps),
    serialised by pydantic: no intermediate dicts for a host's whole state."""
    text = state.model_dump_json(exclude=MATERIAL_EXCLUDE)  # type: ignore[arg-type]
    return hashlib.sha256(text.encode()).hexdigest()


def _without(doc: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in keys}


def _steady_domain(domain: Any) -> Any:
    guest = domain.get("guest") if isinstance(domain, Mapping) else None
    if not isinstance(guest, Mapping):
        return domain
    steady = _without(guest, "at")
    if isinstance(steady.get("filesystems"), list):
        steady["filesystems"] = [
            _without(f, "used_bytes") if isinstance(f, Mapping) else f
            for f in steady["filesystems"]
        ]
    return {**domain, "guest": steady}


def put_observed(
    conn: Connection,
    host: str,
    reachable: bool,
    now: datetime,
    state: Mapping[str, Any] | Any | None = None,
    error: str | None = None,
) -> list[ChangeDraft]:
    """Record one observation of a host; return a change when state, reachability or error moved.

    A reachable observation stores `state` (when given) and stamps last_seen = now; an
    unreachable one keeps the last state and records `error`. A state that differs only
    in volatile fields (see material_hash) is not written: the stored one keeps their
    values as of the last real change, and the store's revision does not move, so a
    controller's quiet passes stay quiet on a host whose free memory moves.
    """
    current = _ensure_row(conn, host, now)
    values: dict[str, Any] = {"reachable": reachable, "last_error": error, "updated_at": now}
    moved = current.reachable != reachable or current.last_error != error
    if reachable:
        values["last_seen"] = now
        if isinstance(state, BaseModel):
            digest = model_material_hash(state)
            if digest != current.state_hash:
                values.update(state=JSONText(state.model_dump_json()), state_hash=digest)
                moved = True
        elif state is not None:
            doc = to_document(state, "state")
            digest = material_hash(doc)
            if digest != current.state_hash:
                values.update(state=doc, state_hash=digest)
                moved = True
    conn.execute(update(observed).where(observed.c.host == host).values(**values))
    return [ChangeDraft("observed", "updated", "Host", host)] if moved else []


def record_power_fenced(conn: Connection, host: str, at: datetime | None) -> None:
    """Record when the host was confirmed powered off by its fence (None clears it)."""
    if (
        conn.execute(
            update(observed).where(observed.c.host == host).values(power_fenced_at=at)
        ).rowcount
        != 1
    ):
        raise NotFound("Host", host)


def get_observed(conn: Connection, host: str) -> ObservedHost:
    """Return the host's observation; raise NotFound when it was never observed."""
    row = _row(conn, host)
    if row is None:
        raise NotFound("Host", host)
    return to_observed(row)


def list_observed(
    conn: Connection,
    states: dict[str, tuple[str, Any]] | None = None,
    decode: Callable[[dict[str, Any]], Any] | None = None,
) -> list[ObservedHost]:
    """Return every host's observation, by host name.

    With `states` (host -> (state hash, state) of an earlier listing, updated in place),
    a state document is read and decoded only when its hash moved: the same value comes
    back for an unchanged state, so views derived from it can be reused by identity.
    With `decode` too, `states` keeps and each record's `state` holds `decode(document)`
    in place of the document, which is then not kept.
    """
    if states is None:
        return [to_observed(r) for r in conn.execute(select(observed).order_by(observed.c.host))]
    columns = [c for c in observed.c if c.key != "state"]
    rows = conn.execute(select(*columns).order_by(observed.c.host)).all()
    stale = [
        r.host
        for r in rows
        if r.state_hash is not None and states.get(r.host, ("",))[0] != r.state_hash
    ]
    for start in range(0, len(stale), 200):
        chunk = stale[start : start + 200]
        query = select(observed.c.host, observed.c.state_hash, observed.c.state)
        for r in conn.execute(query.where(observed.c.host.in_(chunk))):
            states[r.host] = (r.state_hash, r.state if decode is None else decode(r.state))
    for host in set(states) - {r.host for r in rows}:
        del states[host]
    return [to_observed(r, states[r.host][1] if r.state_hash is not None else None) for r in rows]


def delete_observed(conn: Connection, host: str) -> bool:
    """Forget a host's observation; return whether there was one."""
    return conn.execute(delete(observed).where(observed.c.host == host)).rowcount == 1
