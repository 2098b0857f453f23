"""Request-size limit for the agent's and the controller API's HTTP servers (ASGI middleware).

Without it a client could make a server hold an arbitrarily large body in memory before
any handler or pydantic model looks at it. A request whose Content-Length is over the
limit is answered 413 without reading a byte of its body; a body without a length
(chunked) is read up to the limit and refused the moment it goes over. A body within
the limit is buffered here and replayed to the app unchanged. Streamed uploads that are
meant to be large (volume content) are exempted by path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MIB = 1 << 20


class BodyTooLarge(Exception):
    """The request body went over the limit while it was read."""


class BodySizeLimit:
    """Answer 413 with `error_body(message)` (JSON) to any HTTP request whose body is over
    `max_bytes`, unless `exempt(method, path)` is true."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        error_body: Callable[[str], dict[str, Any]],
        exempt: Callable[[str, str], bool] = lambda _method, _path: False,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.error_body = error_body
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.max_bytes:
            await self._refuse(send, f"the body is {length} bytes")
            return
        try:
            body = await self._read(receive)
        except BodyTooLarge:
            await self._refuse(send, "the body goes on past the limit")
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes:
        """Return the whole body; raise BodyTooLarge as soon as it exceeds the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _refuse(self, send: Send, what: str) -> None:
        message = f"{what}; the limit is {self.max_bytes} bytes ({self.max_bytes / MIB:g} MiB)"
        payload = json.dumps(self.error_body(message)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _content_length(scope: Scope) -> int | None:
    """Return the Content-Length header as a number (None when absent or not a number)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """Return a receive that yields `body` once, then defers to the real one (disconnects)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
