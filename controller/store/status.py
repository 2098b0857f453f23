"""Object status: written only when it changed, versioned apart from the spec."""

from __future__ import annotations

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


def get_status(conn: Connection, kind: str, name: str) -> StoredStatus | None:
    """Return the object's stored status (None if never written); raise NotFound."""
    object_id = _object_id(conn, kind, name)
    row = conn.execute(select(statuses).where(statuses.c.object_id == object_id)).first()
    if row is None:
        return None
    return StoredStatus(row.status, row.resource_version, row.updated_at)
