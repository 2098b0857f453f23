"""Configured sources (git repositories, directories): settings, progress and status."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from controller.store.canonical import content_hash, to_document
from controller.store.changes import ChangeDraft
from controller.store.errors import InvalidInput, NotFound
from controller.store.records import SourceRecord
from controller.store.tables import sources
from controller.store.upsert import upsert
from schemas.meta import check_dns_label

SOURCE_TYPES = ("git", "dir")


def to_source(row: Any) -> SourceRecord:
    """Return the record of a sources row."""
    return SourceRecord(
        name=row.name,
        type=row.type,
        settings=row.settings,
        last_applied_revision=row.last_applied_revision,
        last_attempted_revision=row.last_attempted_revision,
        status=row.status,
        updated_at=row.updated_at,
    )


def put_source(
    conn: Connection, name: str, type_: str, settings: Mapping[str, Any], now: datetime
) -> list[ChangeDraft]:
    """Create the source or replace its type and settings; revisions and status are kept."""
    try:
        check_dns_label(name)
    except ValueError as exc:
        raise InvalidInput("name", str(exc)) from exc
    if type_ not in SOURCE_TYPES:
        raise InvalidInput("type", f"expected one of {', '.join(SOURCE_TYPES)}, got {type_!r}")
    doc = to_document(dict(settings), "settings")
    upsert(
        conn,
        sources,
        {"name": name, "type": type_, "settings": doc, "updated_at": now},
        keys=["name"],
        update_columns=["type", "settings", "updated_at"],
    )
    return [ChangeDraft("source", "updated", "Source", name)]


def get_source(conn: Connection, name: str) -> SourceRecord:
    """Return the source; raise NotFound."""
    row = conn.execute(select(sources).where(sources.c.name == name)).first()
    if row is None:
        raise NotFound("Source", name)
    return to_source(row)


def list_sources(conn: Connection) -> list[SourceRecord]:
    """Return every source by name."""
    return [to_source(r) for r in conn.execute(select(sources).order_by(sources.c.name))]


def delete_source(conn: Connection, name: str) -> list[ChangeDraft]:
    """Remove the source (its objects stay, owned by its key); raise NotFound."""
    if conn.execute(delete(sources).where(sources.c.name == name)).rowcount != 1:
        raise NotFound("Source", name)
    return [ChangeDraft("source", "deleted", "Source", name)]


def record_attempt(
    conn: Connection, name: str, revision: str | None, status: Any, now: datetime
) -> list[ChangeDraft]:
    """Record the revision last tried and, when given, the source's status (if it changed).

    A failed attempt (a bad commit) leaves last_applied_revision as it was.
    """
    current = get_source(conn, name)
    values: dict[str, Any] = {}
    if revision != current.last_attempted_revision:
        values["last_attempted_revision"] = revision
    if status is not None:
        doc = to_document(status, "status")
        digest = content_hash(doc)
        if (
            digest
            != conn.execute(
                select(sources.c.status_hash).where(sources.c.name == name)
            ).scalar_one()
        ):
            values.update(status=doc, status_hash=digest)
    if not values:
        return []
    conn.execute(update(sources).where(sources.c.name == name).values(updated_at=now, **values))
    return [ChangeDraft("source", "updated", "Source", name)]
