"""Reading desired objects: get one, list with label selectors and continue tokens."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql import Select

from controller.store.canonical import decode_object
from controller.store.errors import InvalidInput, NotFound
from controller.store.records import Page, StoredObject
from controller.store.tables import objects, statuses
from schemas.meta import LabelSelector

SCAN_BATCH = 500


def _object_query() -> Select[Any]:
    return select(
        objects,
        statuses.c.status,
        statuses.c.resource_version.label("status_version"),
    ).select_from(objects.outerjoin(statuses, statuses.c.object_id == objects.c.id))


def decode_row(row: Row[Any]) -> StoredObject:
    """Return the StoredObject of a row of `_object_query()`."""
    obj = decode_object(row.kind, row.manifest, row.generation, row.resource_version, row.status)
    return StoredObject(
        obj=obj,
        source=row.source,
        revision=row.revision,
        generation=row.generation,
        resource_version=row.resource_version,
        status_version=row.status_version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
    )


class DecodedRows:
    """StoredObjects decoded earlier, by row id, with the row versions they were decoded from.

    A pass lists every object; at 10,000 objects decoding and validating unchanged rows
    costs seconds, and new objects for unchanged rows defeat the planner's identity
    memos. Records are frozen, so handing the same one out again is safe.
    """

    def __init__(self) -> None:
        self.entries: dict[int, tuple[tuple[Any, ...], StoredObject]] = {}


_VERSION_COLUMNS = (
    objects.c.id,
    objects.c.resource_version,
    objects.c.generation,
    objects.c.revision,
    objects.c.source,
    objects.c.updated_at,
    objects.c.deleted_at,
    statuses.c.resource_version,
)


def _list_cached(conn: Connection, query: Select[Any], cache: DecodedRows) -> list[StoredObject]:
    """Return the objects `query` selects, decoding only rows whose versions moved."""
    versions = query.with_only_columns(*_VERSION_COLUMNS, maintain_column_froms=True)
    rows = conn.execute(versions).all()
    fresh: dict[int, tuple[tuple[Any, ...], StoredObject]] = {}
    missing: dict[int, tuple[Any, ...]] = {}
    for row in rows:
        row_id, *version = row
        cached = cache.entries.get(row_id)
        if cached is not None and cached[0] == tuple(version):
            fresh[row_id] = cached
        else:
            missing[row_id] = tuple(version)
    ids = list(missing)
    for start in range(0, len(ids), SCAN_BATCH):
        chunk = ids[start : start + SCAN_BATCH]
        for row in conn.execute(_object_query().where(objects.c.id.in_(chunk))):
            fresh[row.id] = (missing[row.id], decode_row(row))
    cache.entries = fresh
    return [fresh[row[0]][1] for row in rows if row[0] in fresh]


def get_object(
    conn: Connection, kind: str, name: str, include_deleted: bool = False
) -> StoredObject:
    """Return the stored object; raise NotFound when absent (or a tombstone, unless asked)."""
    query = _object_query().where(objects.c.kind == kind, objects.c.name == name)
    row = conn.execute(query).first()
    if row is None or (row.deleted_at is not None and not include_deleted):
        raise NotFound(kind, name)
    return decode_row(row)


def to_selector(selector: LabelSelector | Mapping[str, str] | str | None) -> LabelSelector | None:
    """Return a LabelSelector from a selector, a {key: value} dict or "k=v,k2=v2" text."""
    if selector is None or isinstance(selector, LabelSelector):
        return selector
    if isinstance(selector, str):
        pairs: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in selector.split(","))):
            key, sep, value = part.partition("=")
            if not sep or not key:
                raise InvalidInput("label_selector", f"expected key=value, got {part!r}")
            pairs[key.strip()] = value.strip()
        selector = pairs
    return LabelSelector(match_labels=dict(selector))


def encode_token(kind: str, name: str) -> str:
    """Return an opaque continue token that resumes a listing after (kind, name)."""
    return base64.urlsafe_b64encode(json.dumps([kind, name]).encode()).decode()


def decode_token(token: str) -> tuple[str, str]:
    """Return the (kind, name) a continue token resumes after; raise InvalidInput if malformed."""
    try:
        kind, name = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidInput("continue_token", f"not a token this store issued: {token!r}") from exc
    return str(kind), str(name)


def list_objects(
    conn: Connection,
    kind: str | None = None,
    label_selector: LabelSelector | Mapping[str, str] | str | None = None,
    source: str | None = None,
    limit: int | None = None,
    continue_token: str | None = None,
    deleted: bool | None = False,
    cache: DecodedRows | None = None,
) -> Page:
    """Return objects ordered by (kind, name), one page of at most `limit` when given.

    `deleted` False lists live objects, True only tombstones, None both. With `cache`, a
    whole listing (no selector, no page) decodes only rows changed since it was filled. A selector's
    matchLabels are filtered in SQL, its expressions on the fetched rows; the page is
    filled across batches so a selective selector still returns `limit` items.
    """
    if limit is not None and limit < 1:
        raise InvalidInput("limit", f"expected a positive number, got {limit}")
    selector = to_selector(label_selector)
    query = _object_query().order_by(objects.c.kind, objects.c.name)
    if kind is not None:
        query = query.where(objects.c.kind == kind)
    if source is not None:
        query = query.where(objects.c.source == source)
    if deleted is not None:
        query = query.where(
            objects.c.deleted_at.is_not(None) if deleted else objects.c.deleted_at.is_(None)
        )
    if selector is not None:
        for key, value in selector.match_labels.items():
            label = objects.c.manifest[("metadata", "labels", key)].as_string()
            query = query.where(label == value)
    after = decode_token(continue_token) if continue_token else None
    if limit is None and selector is None and after is None:
        if cache is not None:
            return Page(_list_cached(conn, query, cache))
        return Page([decode_row(r) for r in conn.execute(query)])

    items: list[StoredObject] = []
    want = None if limit is None else limit + 1
    while want is None or len(items) < want:
        batch_query = query.limit(SCAN_BATCH)
        if after is not None:
            batch_query = batch_query.where(
                or_(
                    objects.c.kind > after[0],
                    and_(objects.c.kind == after[0], objects.c.name > after[1]),
                )
            )
        rows = conn.execute(batch_query).all()
        for row in rows:
            labels = row.manifest.get("metadata", {}).get("labels") or {}
            if selector is None or selector.matches(labels):
                items.append(decode_row(row))
                if want is not None and len(items) >= want:
                    break
        if len(rows) < SCAN_BATCH:
            break
        after = (rows[-1].kind, rows[-1].name)
    if limit is not None and len(items) > limit:
        last = items[limit - 1]
        return Page(items[:limit], encode_token(last.kind, last.name))
    return Page(items)
