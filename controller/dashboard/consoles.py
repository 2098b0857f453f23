"""Web consoles on the dashboard: a serial terminal (xterm.js) and a display (noVNC).

GET  /ui/vms/{name}/console            the terminal page (operators)
WS   /ui/vms/{name}/console/ws?csrf=   the serial console, entered with the session cookie
GET  /ui/vms/{name}/display            the display page (operators)
POST /ui/vms/{name}/display/ticket     a one-time display ticket (header X-CSRF-Token)

Browsers cannot put a bearer token on a websocket, so the terminal's websocket lives
under /ui where the session cookie is sent. A cookie alone would let another site's
page open it (websockets are not bound by the same-origin policy), so the handshake
must also come from this origin and carry the session's anti-forgery token. The
display's websocket is the API's own, entered with a ticket the page gets here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote, urlsplit

import httpx
from fastapi import APIRouter, Depends, Request, WebSocket
from fastapi.responses import JSONResponse, Response

from controller.api.console import CLOSE_POLICY, ConsoleRefused, serve_serial
from controller.api.errors import ApiError
from controller.api.rbac import Identity, Verb
from controller.dashboard.session import COOKIE, csrf_ok, identify, session_identity

CSRF_HEADER = "x-csrf-token"

Session = Annotated[Identity, Depends(session_identity)]


def same_origin(origin: str | None, host: str | None, secure: bool) -> bool:
    """Return whether a handshake's Origin header names the site it was sent to (`host`)."""
    if not origin or not host:
        return False
    parts = urlsplit(origin)
    return parts.scheme == ("https" if secure else "http") and parts.netloc == host.lower()


async def session_caller(websocket: WebSocket) -> Identity:
    """Return the identity of a dashboard websocket's session cookie.

    Raises ConsoleRefused when the handshake comes from another origin, lacks the
    session's anti-forgery token, or carries no valid session.
    """
    secure = websocket.url.scheme == "wss"
    if not same_origin(websocket.headers.get("origin"), websocket.headers.get("host"), secure):
        raise ConsoleRefused(CLOSE_POLICY, "the console must be opened from the dashboard's origin")
    session = websocket.cookies.get(COOKIE, "")
    if not session:
        raise ConsoleRefused(CLOSE_POLICY, "a dashboard session is required")
    if not csrf_ok(session, websocket.query_params.get("csrf")):
        raise ConsoleRefused(CLOSE_POLICY, "the anti-forgery token is missing or stale")
    identity = await identify(websocket, session)  # type: ignore[arg-type]
    if identity is None:
        raise ConsoleRefused(CLOSE_POLICY, "the session is not valid (or was revoked)")
    return identity


def _operator_page(request: Request, identity: Identity, name: str) -> None:
    """Raise ApiError unless `identity` sees VM `name` (404) and may open consoles (403)."""
    request.app.state.objects.get(identity, "VirtualMachine", name)
    if not identity.may(Verb.ACTION):
        raise ApiError(
            403,
            "Forbidden",
            f"{identity.name} ({identity.role.value}) may not open consoles: "
            "that needs the operator role",
        )


def console_pages(render: Callable[..., Response]) -> APIRouter:
    """Return the console routes; `render(request, template, **context)` draws a page."""
    router = APIRouter()

    @router.get("/vms/{name}/console")
    def console_page(name: str, request: Request, identity: Session) -> Response:
        _operator_page(request, identity, name)
        return render(request, "console.html", name=name)

    @router.websocket("/vms/{name}/console/ws")
    async def console_socket(websocket: WebSocket, name: str, force: bool = False) -> None:
        await serve_serial(websocket, name, force, session_caller)

    @router.get("/vms/{name}/display")
    def display_page(name: str, request: Request, identity: Session) -> Response:
        _operator_page(request, identity, name)
        return render(request, "display.html", name=name)

    @router.post("/vms/{name}/display/ticket")
    async def display_ticket(name: str, request: Request, identity: Session) -> Response:
        session = request.cookies.get(COOKIE, "")
        if not csrf_ok(session, request.headers.get(CSRF_HEADER)):
            raise ApiError(403, "Forbidden", "the anti-forgery token is missing or stale")
        transport = httpx.ASGITransport(app=request.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://corral.internal") as api:
            answer = await api.post(
                f"/api/v1/virtualmachines/{quote(name, safe='')}/graphics-tickets",
                json={"kind": "vnc"},
                headers={"Authorization": f"Bearer {session}"},
            )
        try:
            body = answer.json()
        except ValueError:
            body = {"message": answer.text}
        return JSONResponse(body, status_code=answer.status_code)

    return router
