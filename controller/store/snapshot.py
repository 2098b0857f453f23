"""Apply a source's snapshot: make that source's stored objects equal it, in one transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from controller.store.canonical import PreparedObject, prepare_object
from controller.store.changes import ChangeDraft
from controller.store.errors import InvalidInput, StoreBusy
from controller.store.records import ApplyResult, ObjectRef, OwnershipConflict
from controller.store.tables import objects, sources, statuses
from schemas.kinds import AnyResource

NAME_CHUNK = 500

_STATE_COLUMNS = (
    objects.c.id,
    objects.c.kind,
    objects.c.name,
    objects.c.source,
    objects.c.generation,
    objects.c.resource_version,
    objects.c.manifest_hash,
    objects.c.spec_hash,
    objects.c.protected,
    objects.c.deleted_at,
)


def apply_lock_key(source: str) -> int:
    """Return the PostgreSQL advisory lock key that serialises applies of one source."""
    digest = hashlib.sha256(f"corral.store.apply:{source}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def prepare_snapshot(objs: Iterable[AnyResource]) -> dict[ObjectRef, PreparedObject]:
    """Return the snapshot keyed by (kind, name); raise InvalidInput on a duplicate."""
    prepared: dict[ObjectRef, PreparedObject] = {}
    for obj in objs:
        item = prepare_object(obj)
        ref = ObjectRef(item.kind, item.name)
        if ref in prepared:
            raise InvalidInput("objects", f"{ref} appears twice in the snapshot")
        prepared[ref] = item
    return prepared


def _load_existing(
    conn: Connection, source: str, refs: Iterable[ObjectRef]
) -> tuple[dict[ObjectRef, Any], dict[ObjectRef, Any]]:
    """Return (rows this source owns, rows of other sources the snapshot names).

    Nothing is locked: a no-op apply stays read-only, and every write that follows is a
    compare-and-swap on the version read here.
    """
    own_query = select(*_STATE_COLUMNS).where(objects.c.source == source)
    own = {ObjectRef(r.kind, r.name): r for r in conn.execute(own_query)}
    names_by_kind: dict[str, list[str]] = {}
    for ref in refs:
        if ref not in own:
            names_by_kind.setdefault(ref.kind, []).append(ref.name)
    foreign: dict[ObjectRef, Any] = {}
    for kind, names in names_by_kind.items():
        for start in range(0, len(names), NAME_CHUNK):
            chunk = names[start : start + NAME_CHUNK]
            query = select(*_STATE_COLUMNS).where(
                objects.c.kind == kind, objects.c.name.in_(chunk), objects.c.source != source
            )
            foreign.update({ObjectRef(r.kind, r.name): r for r in conn.execute(query)})
    return own, foreign


def apply_snapshot(
    conn: Connection,
    source: str,
    revision: str | None,
    objs: Iterable[AnyResource],
    prune: bool,
    now: datetime,
) -> tuple[ApplyResult, list[ChangeDraft]]:
    """Make the stored objects of `source` equal the snapshot; return what was done.

    Applies of one source take turns (an advisory lock on PostgreSQL, the write lock
    on SQLite); writes racing with other writers fail their compare-and-swap and
    raise StoreBusy, rolling the whole apply back.

    Objects another source owns are left alone and reported as conflicts; tombstones
    of any source are revived by the snapshot. With `prune`, objects of this source
    missing from the snapshot become tombstones, except protected ones. Unchanged
    objects are not written: their `revision` stays the one they last changed at.
    """
    if not source:
        raise InvalidInput("source", "a source key like 'git:origin' is required")
    snapshot = prepare_snapshot(objs)
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(apply_lock_key(source))))
    own, foreign = _load_existing(conn, source, snapshot)
    result = ApplyResult()
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    revivals: list[dict[str, Any]] = []
    drafts: list[ChangeDraft] = []

    for ref, item in snapshot.items():
        row = own.get(ref) or foreign.get(ref)
        if row is None:
            inserts.append(_new_row(item, source, revision, now))
            result.created.append(ref)
            drafts.append(ChangeDraft("object", "created", ref.kind, ref.name, 1))
            continue
        live = row.deleted_at is None
        if live and row.source != source:
            result.conflicts.append(OwnershipConflict(ref.kind, ref.name, row.source))
            continue
        if live and row.manifest_hash == item.manifest_hash:
            result.unchanged.append(ref)
            continue
        bump = 1 if (not live or row.spec_hash != item.spec_hash) else 0
        values = {
            "b_id": row.id,
            "b_rv": row.resource_version,
            "source": source,
            "revision": revision,
            "generation": row.generation + bump,
            "resource_version": row.resource_version + 1,
            "manifest_hash": item.manifest_hash,
            "spec_hash": item.spec_hash,
            "protected": item.protected,
            "manifest": item.manifest,
            "updated_at": now,
        }
        if live:
            updates.append(values)
            result.updated.append(ref)
        else:
            revivals.append({**values, "created_at": now, "deleted_at": None})
            result.created.append(ref)
        op = "updated" if live else "created"
        drafts.append(ChangeDraft("object", op, ref.kind, ref.name, row.resource_version + 1))

    tombstones: list[dict[str, Any]] = []
    if prune:
        for ref, row in own.items():
            if ref in snapshot or row.deleted_at is not None:
                continue
            if row.protected:
                result.skipped_protected.append(ref)
                continue
            tombstones.append(
                {
                    "b_id": row.id,
                    "b_rv": row.resource_version,
                    "resource_version": row.resource_version + 1,
                    "deleted_at": now,
                    "updated_at": now,
                }
            )
            result.deleted.append(ref)
            version = row.resource_version + 1
            drafts.append(ChangeDraft("object", "deleted", ref.kind, ref.name, version))

    _write(conn, inserts, updates + tombstones, revivals)
    _record_source_revision(conn, source, revision, now)
    return result, drafts


def _new_row(
    item: PreparedObject, source: str, revision: str | None, now: datetime
) -> dict[str, Any]:
    return {
        "kind": item.kind,
        "name": item.name,
        "source": source,
        "revision": revision,
        "generation": 1,
        "resource_version": 1,
        "manifest_hash": item.manifest_hash,
        "spec_hash": item.spec_hash,
        "protected": item.protected,
        "manifest": item.manifest,
        "created_at": now,
        "updated_at": now,
        "deleted_at": None,
    }


def _write(
    conn: Connection,
    inserts: list[dict[str, Any]],
    updates: list[dict[str, Any]],
    revivals: list[dict[str, Any]],
) -> None:
    """Write the planned rows; a row changed meanwhile by another writer raises StoreBusy.

    Each update is a compare-and-swap on the resource version read before.
    """
    if inserts:
        try:
            conn.execute(insert(objects), inserts)
        except sa_exc.IntegrityError as exc:
            cause = f"an object of the snapshot was created concurrently: {exc.orig}"
            raise StoreBusy(cause) from exc
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in updates + revivals:
        by_shape.setdefault(tuple(row), []).append(row)
    for rows in by_shape.values():
        if conn.execute(_CAS_UPDATE, rows).rowcount != len(rows):
            raise StoreBusy("objects of the snapshot were written concurrently; retry")
    revived_ids = [row["b_id"] for row in revivals]
    for start in range(0, len(revived_ids), NAME_CHUNK):
        chunk = revived_ids[start : start + NAME_CHUNK]
        conn.execute(delete(statuses).where(statuses.c.object_id.in_(chunk)))


_CAS_UPDATE = update(objects).where(
    objects.c.id == bindparam("b_id"), objects.c.resource_version == bindparam("b_rv")
)


def _record_source_revision(
    conn: Connection, source: str, revision: str | None, now: datetime
) -> None:
    """Stamp the applied revision on the configured source this key names, if any."""
    type_, sep, name = source.partition(":")
    if not sep or revision is None:
        return
    conn.execute(
        update(sources)
        .where(
            sources.c.name == name,
            sources.c.type == type_,
            or_(
                sources.c.last_applied_revision.is_(None),
                sources.c.last_applied_revision != revision,
                sources.c.last_attempted_revision.is_(None),
                sources.c.last_attempted_revision != revision,
            ),
        )
        .values(last_applied_revision=revision, last_attempted_revision=revision, updated_at=now)
    )
