"""Runs a batch of agent verbs through the agent's own ASGI app, concurrently.

Each call becomes the request it would be alone: same method, path and body, and the
batch request's headers (its controller term, its client), dispatched to the app with
every middleware and dependency in force, so a call is refused or answered exactly as
it would be on its own. A plan wave sends a host its verbs in one request this way,
rather than one HTTP round trip per verb.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import unquote, urlencode

from starlette.types import ASGIApp, Message, Scope

from agentapi import API_PREFIX, BatchAnswer, BatchCall

BATCH_PARALLEL = 16
"""Calls of one batch in flight at once (libvirt verbs run in the app's thread pool)."""

_DROPPED_HEADERS = {b"content-length", b"content-type", b"transfer-encoding"}


async def run_batch(
    app: ASGIApp, scope: Scope, calls: list[BatchCall], parallel: int = BATCH_PARALLEL
) -> list[BatchAnswer]:
    """Return the answer of every call, in order; `scope` is the batch request's."""
    gate = asyncio.Semaphore(parallel)

    async def one(call: BatchCall) -> BatchAnswer:
        async with gate:
            return await _dispatch(app, scope, call)

    return list(await asyncio.gather(*(one(call) for call in calls)))


async def _dispatch(app: ASGIApp, scope: Scope, call: BatchCall) -> BatchAnswer:
    body = b"" if call.body is None else json.dumps(call.body).encode()
    headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _DROPPED_HEADERS]
    headers.append((b"content-length", str(len(body)).encode()))
    if call.body is not None:
        headers.append((b"content-type", b"application/json"))
    raw_path = API_PREFIX + call.path
    sub: Scope = {
        "type": "http",
        "asgi": scope.get("asgi", {"version": "3.0"}),
        "http_version": scope.get("http_version", "1.1"),
        "method": call.method,
        "scheme": scope.get("scheme", "http"),
        "server": scope.get("server"),
        "client": scope.get("client"),
        "root_path": scope.get("root_path", ""),
        "path": unquote(raw_path),
        "raw_path": raw_path.encode(),
        "query_string": urlencode(call.query).encode(),
        "headers": headers,
        "extensions": scope.get("extensions", {}),
        "state": dict(scope.get("state", {})),
    }
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    status = 500
    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(sub, receive, send)
    raw = b"".join(chunks)
    return BatchAnswer(status=status, body=json.loads(raw) if raw else None)
