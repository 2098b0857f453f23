"""Wire model of the agent's event stream (server-sent events, `id` = seq)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from agentapi.common import WireModel


class AgentEvent(WireModel):
    """One event of the agent's stream: libvirt lifecycle, fence or resync."""

    seq: int
    at: float
    kind: str
    object: Literal["domain", "network", "pool", "host"]
    name: str
    event: str
    detail: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
