"""Object status: written only when it changed, versioned apart from the spec."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from controller.store.canonical import content_hash, to_document
from controller.store.changes import ChangeDraft
from controller.store.errors import Conflict, InvalidInput, NotFound
from controller.store.records import StoredStatus
from controller.store.tables import objects, statuses


def _object_id(conn: Connection, kind: str, name: str) -> int:
    object_id = conn.execute(
        select(objects.c.id).where(objects.c.kind == kind, objects.c.name == name)
    ).scalar_one_or_none()
    if object_id is None:
        raise NotFound(kind, name)
    return object_id


def put_status(
    conn: Connection,
    kind: str,
    name: str,
    status: Any,
    now: datetime,
    expected_version: int | None = None,
) -> list[ChangeDraft]:
    """Store the object's status when it differs from the stored one; return changes written.

    `status` is a schemas status model or a JSON dict. Tombstones may get status too
    (e.g. while their traces are removed). Raises NotFound, or Conflict when
    `expected_version` is given and differs from the status's own version.
    """
    doc = to_document(status, "status")
    if not isinstance(doc, dict):
        raise InvalidInput("status", f"expected an object, got {type(doc).__name__}")
    digest = content_hash(doc)
    object_id = _object_id(conn, kind, name)
    row = conn.execute(
        select(statuses.c.status_hash, statuses.c.resource_version).where(
            statuses.c.object_id == object_id
        )
    ).first()
    actual = None if row is None else row.resource_version
    if expected_version is not None and expected_version != (actual or 0):
        raise Conflict(kind, name, expected_version, actual)
    if row is not None and row.status_hash == digest:
        return []
    if row is None:
        try:
            conn.execute(
                insert(statuses).values(
                    object_id=object_id,
                    status=doc,
                    status_hash=digest,
                    resource_version=1,
                    updated_at=now,
                )
            )
        except sa_exc.IntegrityError as exc:
            raise Conflict(kind, name, expected_version or 0, None) from exc
        return [ChangeDraft("status", "updated", kind, name, 1)]
    written = conn.execute(
        update(statuses)
        .where(
            statuses.c.object_id == object_id,
            statuses.c.resource_version == row.resource_version,
        )
        .values(
            status=doc,
            status_hash=digest,
            resource_version=row.resource_version + 1,
            updated_at=now,
        )
    ).rowcount
    if written != 1:
        raise Conflict(kind, name, expected_version or row.resource_version, None)
    return [ChangeDraft("status", "updated", kind, name, row.resource_version + 1)]


STATUS_CHUNK = 500
"""Statuses read, built and written at a time: the documents of 10,000 statuses never
exist at once, only those of one chunk."""


def put_statuses(
    conn: Connection, items: Mapping[tuple[str, str], Any], now: datetime
) -> list[ChangeDraft]:
    """Store many statuses as `put_status` does each (no expected version), a chunk at a
    time: one read, one bulk insert and the updates per STATUS_CHUNK objects; return the
    changes written.

    Raises NotFound for an object that does not exist, Conflict when another writer
    changed one of these statuses between the read and the write.
    """
    drafts: list[ChangeDraft] = []
    keys = list(items)
    for start in range(0, len(keys), STATUS_CHUNK):
        chunk = {key: items[key] for key in keys[start : start + STATUS_CHUNK]}
        drafts += _put_status_chunk(conn, chunk, now)
    return drafts


def _put_status_chunk(
    conn: Connection, items: Mapping[tuple[str, str], Any], now: datetime
) -> list[ChangeDraft]:
    docs: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
    for key, value in items.items():
        doc = to_document(value, "status")
        if not isinstance(doc, dict):
            raise InvalidInput("status", f"expected an object, got {type(doc).__name__}")
        docs[key] = (doc, content_hash(doc))
    current: dict[tuple[str, str], Any] = {}
    query = (
        select(
            objects.c.kind,
            objects.c.name,
            objects.c.id,
            statuses.c.status_hash,
            statuses.c.resource_version,
        )
        .select_from(objects.outerjoin(statuses, statuses.c.object_id == objects.c.id))
        .where(objects.c.name.in_(sorted({name for _kind, name in docs})))
    )
    for row in conn.execute(query):
        if (row.kind, row.name) in docs:
            current[(row.kind, row.name)] = row
    inserts, updates, drafts = [], [], []
    for key, (doc, digest) in docs.items():
        row = current.get(key)
        if row is None:
            raise NotFound(*key)
        if row.resource_version is None:
            inserts.append(
                {
                    "object_id": row.id,
                    "status": doc,
                    "status_hash": digest,
                    "resource_version": 1,
                    "updated_at": now,
                }
            )
            drafts.append(ChangeDraft("status", "updated", key[0], key[1], 1))
        elif row.status_hash != digest:
            updates.append(
                {
                    "oid": row.id,
                    "seen": row.resource_version,
                    "status": doc,
                    "status_hash": digest,
                    "resource_version": row.resource_version + 1,
                    "updated_at": now,
                }
            )
            drafts.append(
                ChangeDraft("status", "updated", key[0], key[1], row.resource_version + 1)
            )
    if inserts:
        try:
            conn.execute(insert(statuses), inserts)
        except sa_exc.IntegrityError as exc:
            raise Conflict(*next(iter(docs)), 0, None) from exc
    for item in updates:
        written = conn.execute(
            update(statuses)
            .where(
                statuses.c.object_id == item["oid"],
                statuses.c.resource_version == item["seen"],
            )
            .values(
                status=item["status"],
                status_hash=item["status_hash"],
                resource_version=item["resource_version"],
                updated_at=now,
            )
        ).rowcount
        if written != 1:
            kind, name = next(k for k, r in current.items() if r.id == item["oid"])
            raise Conflict(kind, name, item["seen"], None)
    return drafts


def get_status(conn: Connection, kind: str, name: str) -> StoredStatus | None:
    """Return the object's stored status (None if never written); raise NotFound."""
    object_id = _object_id(conn, kind, name)
    row = conn.execute(select(statuses).where(statuses.c.object_id == object_id)).first()
    if row is None:
        return None
    return StoredStatus(row.status, row.resource_version, row.updated_at)
