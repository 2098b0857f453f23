"""The agent's console endpoints: the serial console and graphics proxy websockets, tickets.

open_console (?force=)            the serial console websocket (see agentapi.consoles)
issue_graphics_ticket             a one-time ticket for the display
open_graphics (?ticket=&kind=)    the display's byte stream (noVNC-ready)

Like every agent route these sit behind mutual TLS with the controller's
certificate (nodeagent.tls.RequireController). Every session opening, ending or
being refused is published on the agent's event stream (kind `console`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Any

import libvirt
from fastapi import APIRouter, FastAPI, Request, WebSocket
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect, WebSocketState

from agentapi import (
    CLOSE_ERROR_BASE,
    CLOSE_NORMAL,
    VERBS,
    ConsoleMessage,
    GraphicsKind,
    GraphicsTicket,
    GraphicsTicketRequest,
)
from nodeagent.agent import Agent
from nodeagent.console import ConsoleSessions, ConsoleStream, open_console
from nodeagent.domains import lookup_domain
from nodeagent.errors import AgentFailure, conflict, libvirt_errors, not_found
from nodeagent.verbroute import verb_route
from nodeagent.vncproxy import (
    DisplayEndpoint,
    NoDisplay,
    TicketBook,
    TicketRefused,
    connect_display,
    display_endpoint,
)

log = logging.getLogger(__name__)

PROXY_CHUNK_BYTES = 64 * 1024
router = APIRouter()


def install_console_routes(app: FastAPI, tickets: TicketBook | None = None) -> None:
    """Add the console routes to the agent app, with its session registry and ticket book."""
    app.state.consoles = ConsoleSessions()
    app.state.graphics_tickets = tickets or TicketBook()
    app.include_router(router)


def _agent_of(app: Any) -> Agent:
    agent = app.state.agent
    if agent is None:
        raise AgentFailure("unavailable", "agent is starting", retryable=True)
    return agent


def _audit(agent: Agent | None, name: str, event: str, detail: str, **data: Any) -> None:
    if agent is not None:
        agent.events.publish("console", "domain", name, event, detail, data)


# --- serial console --------------------------------------------------------------------------


@verb_route(router, VERBS.open_console)
async def serial_console(websocket: WebSocket, name: str, force: bool = False) -> None:
    """Bridge the websocket to the domain's serial console until either side ends."""
    await websocket.accept()
    agent: Agent | None = websocket.app.state.agent
    sessions: ConsoleSessions = websocket.app.state.consoles
    loop = asyncio.get_running_loop()
    try:
        agent = _agent_of(websocket.app)
        sessions.claim(name, force)
        conn = await run_in_threadpool(agent.ctx.connection.get)
        stream = await run_in_threadpool(open_console, conn, name, loop, force)
    except AgentFailure as exc:
        _audit(agent, name, "console_refused", exc.error.message, kind="serial")
        await _close_with_error(websocket, name, exc)
        return
    sessions.add(stream)
    _audit(agent, name, "console_opened", "serial console attached", kind="serial", force=force)
    counts = {"in": 0, "out": 0}
    ending = "the client detached"
    try:
        await websocket.send_text(
            ConsoleMessage(type="attached", domain=name, message="serial console").model_dump_json()
        )
        ending = await _first_to_finish(
            _guest_to_client(websocket, stream, counts), _client_to_guest(websocket, stream, counts)
        )
    finally:
        sessions.remove(stream)
        _audit(
            agent,
            name,
            "console_closed",
            ending,
            kind="serial",
            bytes_in=counts["in"],
            bytes_out=counts["out"],
        )
        closed = ConsoleMessage(
            type="closed",
            domain=name,
            message=ending,
            bytes_in=counts["in"],
            bytes_out=counts["out"],
        )
        await _close(websocket, CLOSE_NORMAL, closed.model_dump_json())


async def _guest_to_client(websocket: WebSocket, stream: ConsoleStream, counts: dict) -> str:
    while (data := await stream.output.get()) is not None:
        await websocket.send_bytes(data)
        counts["out"] += len(data)
    return "the console stream ended (guest stopped, or another session took over)"


async def _client_to_guest(websocket: WebSocket, stream: ConsoleStream, counts: dict) -> str:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return "the client detached"
        data = message.get("bytes") or (message.get("text") or "").encode()
        if data:
            await run_in_threadpool(stream.send, data)
            counts["in"] += len(data)


async def _first_to_finish(*jobs: Awaitable[str]) -> str:
    """Run the pumps until one ends; return why it ended (cancelling the others)."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    task = next(iter(done))
    exc = task.exception()
    if exc is None:
        return task.result()
    if isinstance(exc, WebSocketDisconnect):
        return "the client detached"
    if isinstance(exc, AgentFailure):
        return exc.error.message
    log.warning("console bridge failed: %r", exc)
    return f"the bridge failed: {type(exc).__name__}: {exc}"


async def _close_with_error(websocket: WebSocket, name: str, exc: AgentFailure) -> None:
    message = ConsoleMessage(type="error", domain=name, message=exc.error.message, error=exc.error)
    await _close(websocket, CLOSE_ERROR_BASE + exc.status_code, message.model_dump_json())


async def _close(websocket: WebSocket, code: int, text: str | None = None) -> None:
    if websocket.client_state != WebSocketState.CONNECTED:
        return
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        if text is not None:
            await websocket.send_text(text)
        await websocket.close(code=code)


# --- graphics --------------------------------------------------------------------------------


def _endpoint(agent: Agent, name: str, kind: str) -> DisplayEndpoint:
    """Return where the display of running domain `name` listens (AgentFailure if nowhere)."""
    conn = agent.ctx.connection.get()
    with libvirt_errors(f"reading the display of {name}"):
        dom = lookup_domain(conn, name)
        if not dom.isActive():
            raise conflict(f"domain {name!r} is not running: it has no display")
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE)
    try:
        return display_endpoint(xml, kind)
    except NoDisplay as exc:
        raise not_found("display", f"{kind} of {name}") from exc


@verb_route(router, VERBS.issue_graphics_ticket)
def issue_graphics_ticket(
    request: Request, name: str, body: GraphicsTicketRequest | None = None
) -> GraphicsTicket:
    """Issue a one-time ticket for the display of running domain `name` (not idempotent)."""
    body = body or GraphicsTicketRequest()
    agent = _agent_of(request.app)
    _endpoint(agent, name, body.kind)
    book: TicketBook = request.app.state.graphics_tickets
    ticket = book.issue(name, body.kind, body.ttl_s)
    _audit(agent, name, "graphics_ticket_issued", f"{body.kind} ticket for {ticket.ttl_s:g} s")
    return ticket


@verb_route(router, VERBS.open_graphics)
async def graphics_proxy(
    websocket: WebSocket, name: str, ticket: str | None = None, kind: GraphicsKind = "vnc"
) -> None:
    """Proxy the websocket to the domain's display after redeeming `ticket`.

    Refused before the websocket opens (HTTP 403 to the client) for a missing,
    used, expired or foreign ticket, and when the display cannot be reached.
    """
    agent: Agent | None = websocket.app.state.agent
    book: TicketBook = websocket.app.state.graphics_tickets
    try:
        book.redeem(ticket, name, kind)
        agent = _agent_of(websocket.app)
        endpoint = await run_in_threadpool(_endpoint, agent, name, kind)
        reader, writer = await connect_display(endpoint)
    except (TicketRefused, AgentFailure, OSError, TimeoutError) as exc:
        reason = exc.error.message if isinstance(exc, AgentFailure) else str(exc) or repr(exc)
        _audit(agent, name, "graphics_refused", reason, kind=kind)
        await websocket.close(code=4403 if isinstance(exc, TicketRefused) else 4503)
        return
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol="binary" if "binary" in offered else None)
    _audit(agent, name, "graphics_opened", f"{kind} display attached", kind=kind)
    counts = {"in": 0, "out": 0}
    try:
        ending = await _first_to_finish(
            _display_to_client(websocket, reader, counts),
            _client_to_display(websocket, writer, counts),
        )
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        _audit(
            agent,
            name,
            "graphics_closed",
            "",
            kind=kind,
            bytes_in=counts["in"],
            bytes_out=counts["out"],
        )
        await _close(websocket, CLOSE_NORMAL)
    log.info("%s display of %s closed: %s", kind, name, ending)


async def _display_to_client(
    websocket: WebSocket, reader: asyncio.StreamReader, counts: dict
) -> str:
    while data := await reader.read(PROXY_CHUNK_BYTES):
        await websocket.send_bytes(data)
        counts["out"] += len(data)
    return "the display closed the connection"


async def _client_to_display(
    websocket: WebSocket, writer: asyncio.StreamWriter, counts: dict
) -> str:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return "the client detached"
        data = message.get("bytes") or (message.get("text") or "").encode()
        if data:
            writer.write(data)
            await writer.drain()
            counts["in"] += len(data)
