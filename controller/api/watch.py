"""GET /api/v1/watch: the store's change log as server-sent events.

Each change is one SSE message: `id` is its sequence number (a reconnecting client
sends it back as Last-Event-ID and misses nothing), `event` its topic, `data` the
change as JSON with the object itself for object and status changes. When the log
no longer holds the changes after `since`, the stream sends one `expired` event and
ends: the client must list again and watch from the list's resourceVersion.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from controller.api.auth import require
from controller.api.errors import BAD_REQUEST, NOT_FOUND, ApiError
from controller.api.objects import ObjectService
from controller.api.rbac import Identity, Verb
from controller.api.routes import API_PREFIX, ERRORS, service
from controller.api.serialize import object_json
from controller.store import Change, NotFound, Store
from schemas.kinds import resolve_kind

Reader = Annotated[Identity, Depends(require(Verb.READ))]
Service = Annotated[ObjectService, Depends(service)]
POLL_S = 0.2
HEARTBEAT_S = 10.0
TOPICS = frozenset({"object", "status", "event", "observed", "source"})


def change_json(change: Change, obj: dict[str, Any] | None) -> dict[str, Any]:
    """Return a change as the watch stream sends it."""
    data: dict[str, Any] = {
        "seq": change.seq,
        "topic": change.topic,
        "op": change.op,
        "kind": change.kind,
        "name": change.name,
        "resourceVersion": change.resource_version,
        "at": change.at.isoformat(),
    }
    if obj is not None:
        data["object"] = obj
    return data


def sse(event: str, data: Any, id_: int | None = None) -> bytes:
    """Return one server-sent event."""
    head = f"id: {id_}\n" if id_ is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _visible(
    store: Store, identity: Identity, change: Change
) -> tuple[bool, dict[str, Any] | None]:
    """Return whether the caller may see the change, and the object to send with it."""
    if change.topic not in ("object", "status"):
        return identity.scope is None, None
    try:
        stored = store.get(change.kind, change.name, include_deleted=True)
    except NotFound:
        return identity.scope is None, None
    if not identity.sees(stored.obj.metadata.labels):
        return False, None
    return True, object_json(stored)


def watch_router() -> APIRouter:
    router = APIRouter(prefix=API_PREFIX, tags=["watch"])

    @router.get(
        "/watch",
        operation_id="watch",
        summary="Stream changes as server-sent events",
        responses={
            200: {"description": "An event stream", "content": {"text/event-stream": {}}},
            **ERRORS,
        },
    )
    def watch(
        identity: Reader,
        objects: Service,
        since: Annotated[
            int | None, Query(ge=0, description="Send changes after this sequence number")
        ] = None,
        kind: Annotated[str | None, Query(description="Only this kind")] = None,
        name: Annotated[str | None, Query(description="Only objects of this name")] = None,
        topics: Annotated[
            str | None, Query(description="Comma-separated: object,status,event,observed,source")
        ] = None,
        timeout_s: Annotated[float, Query(alias="timeoutSeconds", gt=0, le=3600)] = 300.0,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ) -> StreamingResponse:
        store = objects.store
        resolved = None
        if kind is not None:
            resolved = resolve_kind(kind)
            if resolved is None:
                raise ApiError(404, NOT_FOUND, f"no kind is called {kind!r}")
        wanted = TOPICS
        if topics:
            wanted = frozenset(t.strip() for t in topics.split(",") if t.strip())
            if not wanted <= TOPICS:
                raise ApiError(
                    400,
                    BAD_REQUEST,
                    f"unknown topics {sorted(wanted - TOPICS)}; use {sorted(TOPICS)}",
                )
        if last_event_id and last_event_id.isdigit():
            since = int(last_event_id)
        start = store.revision() if since is None else since

        def matches(change: Change) -> bool:
            return (
                change.topic in wanted
                and (resolved is None or change.kind == resolved)
                and (name is None or change.name == name)
            )

        async def stream() -> AsyncIterator[bytes]:
            seen = start
            deadline = time.monotonic() + timeout_s
            beat = time.monotonic() + HEARTBEAT_S
            yield f": watching from {seen}\n\n".encode()
            oldest = await run_in_threadpool(store.oldest_change)
            if oldest is not None and seen < oldest - 1:
                yield sse("expired", {"since": seen, "oldest": oldest, "message": "list again"})
                return
            while time.monotonic() < deadline:
                batch = await run_in_threadpool(store.changes_since, seen, 500)
                for change in batch:
                    seen = change.seq
                    if not matches(change):
                        continue
                    ok, obj = await run_in_threadpool(_visible, store, identity, change)
                    if ok:
                        yield sse(change.topic, change_json(change, obj), change.seq)
                if len(batch) == 500:
                    continue
                if time.monotonic() >= beat:
                    beat = time.monotonic() + HEARTBEAT_S
                    yield b": keep-alive\n\n"
                await anyio.sleep(POLL_S)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Corral-Revision": str(start)},
        )

    return router
