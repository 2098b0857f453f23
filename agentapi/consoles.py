"""Wire models of the console verbs (see agentapi.verbs: open_console, issue_graphics_ticket,
open_graphics).

The serial console websocket carries the console's bytes in binary frames both
ways; text frames carry `ConsoleMessage` JSON from the agent (attached, error,
closed). A refused console closes with code 4000 + the HTTP status of the error
(4404 no such domain, 4409 busy or not running, 4503 libvirt unreachable).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agentapi.common import AgentError, WireModel

GraphicsKind = Literal["vnc", "spice"]
CLOSE_NORMAL = 1000
CLOSE_ERROR_BASE = 4000


class ConsoleMessage(WireModel):
    """A control message on the console websocket, from the agent (or the controller)."""

    type: Literal["attached", "error", "closed"]
    domain: str
    message: str = ""
    error: AgentError | None = None
    bytes_in: int = 0
    bytes_out: int = 0


class GraphicsTicketRequest(WireModel):
    """A request for a one-time ticket to a domain's display."""

    kind: GraphicsKind = "vnc"
    ttl_s: float = Field(default=30.0, gt=0, le=300)


class GraphicsTicket(WireModel):
    """A one-time ticket: open the graphics websocket with `?ticket=` within `ttl_s` seconds."""

    ticket: str
    domain: str
    kind: GraphicsKind
    ttl_s: float
