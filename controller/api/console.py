"""Console routes of the REST API: a VM's serial console and its graphical display.

WS   /api/v1/virtualmachines/{name}/console?force=   serial console (operator role)
POST /api/v1/virtualmachines/{name}/graphics-tickets   a one-time display ticket (operator)
WS   /api/v1/virtualmachines/{name}/graphics?ticket=   the display (noVNC speaks to this)

The serial console needs a bearer token of the operator role whose scope covers
the VM (a VM outside the scope is "not found"). The graphics websocket is entered
with the ticket alone, because browsers cannot set headers on a websocket: the
ticket is what an operator got, valid once and for seconds, and the agent checks
it. Every session is recorded as an event on the VM, with the caller's identity.
Refusals happen before the websocket opens (the client gets HTTP 403/404/503).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request, WebSocket
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocketDisconnect

from agentapi import GraphicsTicket, GraphicsTicketRequest
from controller.agents import AgentClient, AgentClientError, ConsoleUnavailable
from controller.api.auth import require
from controller.api.errors import FORBIDDEN, NOT_FOUND, ApiError, status_body
from controller.api.rbac import Identity, Role, Verb
from controller.api.routes import API_PREFIX, ERRORS, _json, _ref
from controller.console import ConsoleTarget, NoConsole, find_console_target, relay
from controller.store import NotFound

log = logging.getLogger(__name__)

CONSOLE_OPENED = "ConsoleOpened"
"""A user attached to a VM's console."""
CONSOLE_CLOSED = "ConsoleClosed"
"""A console session ended."""
CONSOLE_REFUSED = "ConsoleRefused"
"""A console request was refused (role, scope, VM not running, agent unreachable)."""
GRAPHICS_TICKET_ISSUED = "GraphicsTicketIssued"
"""A one-time display ticket was handed out."""

_TICKET_HOLDER = Identity(name="graphics-ticket", role=Role.OPERATOR)
"""Who enters the graphics websocket: whoever holds a ticket an operator was issued."""
CLOSE_POLICY = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_UNAVAILABLE = 4503
_HTTP = {CLOSE_POLICY: (403, FORBIDDEN), CLOSE_NOT_FOUND: (404, NOT_FOUND)}


class ConsoleRefused(Exception):
    """A console request that is refused, with the websocket close code to use."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _agent_client(app: Any, target: ConsoleTarget) -> AgentClient:
    """Return the agent client of the target's host (from the controller's pool)."""
    pool = getattr(app.state, "agent_pool", None)
    controller = getattr(app.state, "controller", None)
    if pool is None and controller is not None:
        pool = getattr(controller, "pool", None)
    if pool is None:
        raise ConsoleRefused(
            CLOSE_UNAVAILABLE,
            "this API server has no agent access; serve it with the loop (`corral up --api`)",
        )
    try:
        return pool.client(target.host, target.address)
    except AgentClientError as exc:
        raise ConsoleRefused(CLOSE_UNAVAILABLE, str(exc)) from exc


def locate(app: Any, identity: Identity, vm: str) -> ConsoleTarget:
    """Return where VM `vm` runs, for `identity`; ConsoleRefused if it may not or cannot."""
    store = app.state.store
    try:
        stored = store.get("VirtualMachine", vm)
    except NotFound as exc:
        raise ConsoleRefused(CLOSE_NOT_FOUND, f"VirtualMachine {vm} not found") from exc
    if not identity.sees(stored.obj.metadata.labels):
        raise ConsoleRefused(CLOSE_NOT_FOUND, f"VirtualMachine {vm} not found")
    if not identity.may(Verb.ACTION):
        raise ConsoleRefused(
            CLOSE_POLICY,
            f"{identity.name} ({identity.role.value}) may not open consoles: "
            "that needs the operator role",
        )
    hosts = {s.obj.metadata.name: s.obj.spec.address for s in store.list(kind="Host").items}
    observed = {o.host: o.state for o in store.list_observed() if o.reachable}
    try:
        return find_console_target(vm, observed, hosts)
    except NoConsole as exc:
        raise ConsoleRefused(CLOSE_NOT_FOUND, str(exc)) from exc


async def _identity(websocket: WebSocket) -> Identity:
    header = websocket.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    identity = None
    if scheme.lower() == "bearer" and token.strip():
        identity = websocket.app.state.tokens.authenticate(token.strip())
    if identity is None:
        raise ConsoleRefused(CLOSE_POLICY, "a valid bearer token is required")
    return identity


def _event(app: Any, vm: str, reason: str, message: str, identity: str | None) -> None:
    try:
        app.state.store.record_event(
            "VirtualMachine",
            vm,
            "Warning" if reason == CONSOLE_REFUSED else "Normal",
            reason,
            message,
            component="api",
            identity=identity,
        )
    except Exception:  # an audit write must not break the session; it is logged
        log.exception("recording console event %s for %s failed", reason, vm)


async def refuse(websocket: WebSocket, code: int, message: str) -> None:
    """Refuse the websocket before it opens: an HTTP error with a Status body where the
    server can send one (uvicorn can), else a close with `code`."""
    status, reason = _HTTP.get(code, (503, "Unavailable"))
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        body = status_body(status, reason, message)
        await websocket.send_denial_response(JSONResponse(body, status_code=status))
    else:
        await websocket.close(code=code, reason=message[:120])


async def _user_frames(websocket: WebSocket) -> bytes | str | None:
    try:
        message = await websocket.receive()
    except WebSocketDisconnect:
        return None
    if message["type"] == "websocket.disconnect":
        return None
    return message.get("bytes") if message.get("bytes") is not None else message.get("text")


async def _send_user(websocket: WebSocket, frame: bytes | str) -> None:
    if isinstance(frame, bytes):
        await websocket.send_bytes(frame)
    else:
        await websocket.send_text(frame)


async def serve_serial(
    websocket: WebSocket,
    name: str,
    force: bool,
    authenticate: Callable[[WebSocket], Awaitable[Identity]],
) -> None:
    """Relay VM `name`'s serial console to `websocket` for the caller `authenticate` returns
    (it raises ConsoleRefused); refusals answer before the websocket opens; all audited."""
    app = websocket.app
    who: str | None = None
    try:
        identity = await authenticate(websocket)
        who = identity.name
        target = locate(app, identity, name)
        client = _agent_client(app, target)
        agent = await client.open_console(target.domain, force)
    except (ConsoleRefused, ConsoleUnavailable) as exc:
        code = exc.code if isinstance(exc, ConsoleRefused) else CLOSE_UNAVAILABLE
        _event(app, name, CONSOLE_REFUSED, f"serial console refused: {exc}", who)
        await refuse(websocket, code, str(exc))
        return
    await websocket.accept()
    _event(
        app,
        name,
        CONSOLE_OPENED,
        f"serial console on {target.host} opened by {who}" + (" (forced)" if force else ""),
        who,
    )
    result = await relay(agent, lambda: _user_frames(websocket), lambda f: _send_user(websocket, f))
    _event(
        app,
        name,
        CONSOLE_CLOSED,
        f"serial console on {target.host} closed by the {result.ended_by} "
        f"({result.to_agent_bytes} bytes typed, {result.from_agent_bytes} shown)",
        who,
    )
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close()


def console_router() -> APIRouter:
    """Return the console routes (serial websocket, graphics tickets and websocket)."""
    router = APIRouter(prefix=API_PREFIX, tags=["console"])

    @router.websocket("/virtualmachines/{name}/console")
    async def vm_console(websocket: WebSocket, name: str, force: bool = False) -> None:
        await serve_serial(websocket, name, force, _identity)

    @router.post(
        "/virtualmachines/{name}/graphics-tickets",
        response_model=GraphicsTicket,
        operation_id="issueGraphicsTicket",
        summary="A one-time ticket for the VM's display (operator)",
        responses={
            **ERRORS,
            503: _json(_ref("Status"), "No agent access, or the VM's agent is unreachable"),
        },
    )
    def issue_ticket(
        request: Request,
        name: str,
        body: GraphicsTicketRequest | None = None,
        identity: Identity = Depends(require(Verb.ACTION)),
    ) -> GraphicsTicket:
        body = body or GraphicsTicketRequest()
        try:
            target = locate(request.app, identity, name)
            client = _agent_client(request.app, target)
            ticket = client.issue_graphics_ticket(target.domain, body.kind, body.ttl_s)
        except ConsoleRefused as exc:
            status = {CLOSE_NOT_FOUND: 404, CLOSE_POLICY: 403}.get(exc.code, 503)
            raise ApiError(status, NOT_FOUND if status == 404 else "Unavailable", str(exc)) from exc
        except AgentClientError as exc:
            raise ApiError(503, "AgentUnavailable", str(exc)) from exc
        _event(
            request.app,
            name,
            GRAPHICS_TICKET_ISSUED,
            f"{body.kind} ticket for {ticket.ttl_s:g} s issued to {identity.name}",
            identity.name,
        )
        return ticket.model_copy(update={"domain": name})

    @router.websocket("/virtualmachines/{name}/graphics")
    async def vm_graphics(
        websocket: WebSocket, name: str, ticket: str | None = None, kind: str = "vnc"
    ) -> None:
        app = websocket.app
        offered = websocket.scope.get("subprotocols") or []
        try:
            if not ticket:
                raise ConsoleRefused(CLOSE_POLICY, "a ticket is required")
            target = locate(app, _TICKET_HOLDER, name)
            client = _agent_client(app, target)
            agent = await client.open_graphics(
                target.domain,
                ticket,
                kind,
                subprotocols=["binary"] if "binary" in offered else None,
            )
        except (ConsoleRefused, ConsoleUnavailable) as exc:
            code = exc.code if isinstance(exc, ConsoleRefused) else CLOSE_POLICY
            _event(app, name, CONSOLE_REFUSED, f"{kind} display refused: {exc}", None)
            await refuse(websocket, code, str(exc))
            return
        await websocket.accept(subprotocol="binary" if "binary" in offered else None)
        _event(app, name, CONSOLE_OPENED, f"{kind} display on {target.host} opened", None)
        result = await relay(
            agent, lambda: _user_frames(websocket), lambda f: _send_user(websocket, f)
        )
        _event(
            app,
            name,
            CONSOLE_CLOSED,
            f"{kind} display on {target.host} closed by the {result.ended_by}",
            None,
        )

    return router
