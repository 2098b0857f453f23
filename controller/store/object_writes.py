"""Single-object writes for the API: put, delete (to a tombstone) and purge.

Every write is a compare-and-swap: UPDATE ... WHERE resource_version = <the version
read>. A caller passing `expected_version` gets Conflict when the stored version
differs; 0 means "create only: the object must not exist".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from controller.store.canonical import prepare_object
from controller.store.changes import ChangeDraft
from controller.store.errors import Conflict, InvalidInput, NotFound, OwnedElsewhere
from controller.store.tables import objects, statuses
from schemas.kinds import AnyResource


def _current(conn: Connection, kind: str, name: str) -> Any:
    return conn.execute(
        select(
            objects.c.id,
            objects.c.source,
            objects.c.generation,
            objects.c.resource_version,
            objects.c.manifest_hash,
            objects.c.spec_hash,
            objects.c.deleted_at,
        ).where(objects.c.kind == kind, objects.c.name == name)
    ).first()


def _actual_version(conn: Connection, kind: str, name: str) -> int | None:
    row = _current(conn, kind, name)
    return None if row is None or row.deleted_at is not None else row.resource_version


def _check_version(kind: str, name: str, expected: int | None, actual: int | None) -> None:
    if expected is None:
        return
    if actual is None and expected > 0:
        raise NotFound(kind, name)
    if expected != (actual or 0):
        raise Conflict(kind, name, expected, actual)


def put_object(
    conn: Connection,
    obj: AnyResource,
    source: str,
    expected_version: int | None,
    now: datetime,
    revision: str | None = None,
    take_ownership: bool = False,
) -> list[ChangeDraft]:
    """Create or update one object; return the changes written (none when unchanged).

    Raises Conflict or NotFound when `expected_version` does not hold, OwnedElsewhere
    when another source owns the object and `take_ownership` is False.
    """
    if expected_version is not None and expected_version < 0:
        raise InvalidInput("expected_version", f"expected 0 or more, got {expected_version}")
    item = prepare_object(obj)
    kind, name = item.kind, item.name
    row = _current(conn, kind, name)
    live = row is not None and row.deleted_at is None
    _check_version(kind, name, expected_version, row.resource_version if live else None)
    if row is None:
        try:
            conn.execute(
                insert(objects).values(
                    kind=kind,
                    name=name,
                    source=source,
                    revision=revision,
                    generation=1,
                    resource_version=1,
                    manifest_hash=item.manifest_hash,
                    spec_hash=item.spec_hash,
                    protected=item.protected,
                    manifest=item.manifest,
                    created_at=now,
                    updated_at=now,
                )
            )
        except sa_exc.IntegrityError as exc:
            raise Conflict(kind, name, expected_version or 0, None) from exc
        return [ChangeDraft("object", "created", kind, name, 1)]
    if live and row.source != source and not take_ownership:
        raise OwnedElsewhere(kind, name, row.source, source)
    if live and row.source == source and row.manifest_hash == item.manifest_hash:
        return []
    values: dict[str, Any] = {
        "source": source,
        "revision": revision,
        "generation": row.generation + (1 if not live or row.spec_hash != item.spec_hash else 0),
        "resource_version": row.resource_version + 1,
        "manifest_hash": item.manifest_hash,
        "spec_hash": item.spec_hash,
        "protected": item.protected,
        "manifest": item.manifest,
        "updated_at": now,
    }
    if not live:
        values.update(created_at=now, deleted_at=None)
    written = conn.execute(
        update(objects)
        .where(objects.c.id == row.id, objects.c.resource_version == row.resource_version)
        .values(**values)
    ).rowcount
    if written != 1:
        raise Conflict(
            kind, name, expected_version or row.resource_version, _actual_version(conn, kind, name)
        )
    if not live:
        conn.execute(delete(statuses).where(statuses.c.object_id == row.id))
    op = "updated" if live else "created"
    return [ChangeDraft("object", op, kind, name, row.resource_version + 1)]


def delete_object(
    conn: Connection, kind: str, name: str, expected_version: int | None, now: datetime
) -> list[ChangeDraft]:
    """Turn a live object into a tombstone; raise NotFound or Conflict."""
    row = _current(conn, kind, name)
    if row is None or row.deleted_at is not None:
        raise NotFound(kind, name)
    _check_version(kind, name, expected_version, row.resource_version)
    written = conn.execute(
        update(objects)
        .where(objects.c.id == row.id, objects.c.resource_version == row.resource_version)
        .values(resource_version=row.resource_version + 1, deleted_at=now, updated_at=now)
    ).rowcount
    if written != 1:
        raise Conflict(
            kind, name, expected_version or row.resource_version, _actual_version(conn, kind, name)
        )
    return [ChangeDraft("object", "deleted", kind, name, row.resource_version + 1)]


def purge_object(conn: Connection, kind: str, name: str) -> list[ChangeDraft]:
    """Remove a tombstone for good, with its status; a live or absent object is left alone.

    Returns the change written, or nothing when there was no tombstone to purge (the
    object was purged already, or revived meanwhile).
    """
    row = _current(conn, kind, name)
    if row is None or row.deleted_at is None:
        return []
    written = conn.execute(
        delete(objects).where(
            objects.c.id == row.id,
            objects.c.resource_version == row.resource_version,
            objects.c.deleted_at.is_not(None),
        )
    ).rowcount
    if written != 1:
        return []
    return [ChangeDraft("object", "purged", kind, name, row.resource_version)]
