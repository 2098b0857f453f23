"""Graphical consoles (VNC, SPICE) through the agent, behind one-time short-lived tickets.

Displays listen on the host's loopback (or a unix socket), never on a network
address (see nodeagent.domxml.build_graphics). A client first asks the agent for a
ticket (a random token valid for `ttl_s` seconds, for one domain, usable once),
then opens the proxy websocket with it; the agent connects to the display and
copies bytes both ways. The ticket check is pure: `TicketBook` takes its clock.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass

from agentapi import GraphicsTicket

DEFAULT_TICKET_TTL_S = 30.0
MAX_TICKET_TTL_S = 300.0
CONNECT_TIMEOUT_S = 5.0


class TicketRefused(Exception):
    """A ticket is unknown, already used, expired or for another domain."""


@dataclass(frozen=True)
class _Issued:
    domain: str
    kind: str
    expires_at: float


class TicketBook:
    """The outstanding graphics tickets of this agent (in memory; a restart voids them)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._issued: dict[str, _Issued] = {}
        self._lock = threading.Lock()

    def issue(self, domain: str, kind: str, ttl_s: float = DEFAULT_TICKET_TTL_S) -> GraphicsTicket:
        """Return a new ticket for display `kind` of `domain`, valid once within `ttl_s`."""
        ttl_s = min(max(ttl_s, 1.0), MAX_TICKET_TTL_S)
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._drop_expired(now)
            self._issued[token] = _Issued(domain, kind, now + ttl_s)
        return GraphicsTicket(ticket=token, domain=domain, kind=kind, ttl_s=ttl_s)  # type: ignore[arg-type]

    def redeem(self, token: str | None, domain: str, kind: str) -> None:
        """Use up `token` for display `kind` of `domain`; TicketRefused says why it is not valid.

        A ticket is consumed by its first use, also when that use names another domain.
        """
        if not token:
            raise TicketRefused("a ticket is required (POST .../graphics-tickets first)")
        now = self._clock()
        with self._lock:
            issued = self._issued.pop(token, None)
            self._drop_expired(now)
        if issued is None:
            raise TicketRefused("unknown or already used ticket")
        if now >= issued.expires_at:
            raise TicketRefused("the ticket has expired")
        if (issued.domain, issued.kind) != (domain, kind):
            raise TicketRefused(f"the ticket is for {issued.kind} of {issued.domain!r}")

    def outstanding(self) -> int:
        """Return how many unexpired tickets wait to be used."""
        with self._lock:
            self._drop_expired(self._clock())
            return len(self._issued)

    def _drop_expired(self, now: float) -> None:
        for token in [t for t, issued in self._issued.items() if now >= issued.expires_at]:
            del self._issued[token]


@dataclass(frozen=True)
class DisplayEndpoint:
    """Where a running domain's display listens: TCP host:port, or a unix socket path."""

    host: str | None = None
    port: int | None = None
    socket: str | None = None


class NoDisplay(Exception):
    """The domain has no display of that kind, or it does not listen anywhere reachable."""


def display_endpoint(live_xml: str, kind: str) -> DisplayEndpoint:
    """Return where display `kind` (vnc, spice) of a running domain listens.

    Raises NoDisplay when the live XML has no such display or no port or socket yet.
    """
    root = ET.fromstring(live_xml)
    for graphics in root.iterfind("devices/graphics"):
        if graphics.get("type") != kind:
            continue
        listen = graphics.find("listen")
        socket_path = graphics.get("socket") or (
            listen.get("socket") if listen is not None else None
        )
        if socket_path:
            return DisplayEndpoint(socket=socket_path)
        port = int(graphics.get("port", "-1"))
        if port <= 0:
            raise NoDisplay(f"the {kind} display has no port (is the domain running?)")
        address = graphics.get("listen") or (listen.get("address") if listen is not None else None)
        if not address or address in ("0.0.0.0", "::"):
            address = "127.0.0.1"
        return DisplayEndpoint(host=address, port=port)
    raise NoDisplay(f"the domain has no {kind} display")


async def connect_display(
    endpoint: DisplayEndpoint,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Return a stream connected to the display; OSError/TimeoutError if it cannot be reached."""
    if endpoint.socket is not None:
        opening = asyncio.open_unix_connection(endpoint.socket)
    else:
        opening = asyncio.open_connection(endpoint.host, endpoint.port)
    return await asyncio.wait_for(opening, CONNECT_TIMEOUT_S)
