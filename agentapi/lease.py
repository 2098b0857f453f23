"""Wire models of the host's fencing lease as its agent keeps it, with its self-fences."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agentapi.common import WireModel


class FenceRecord(WireModel):
    """One HA domain this agent destroyed itself because its lease expired (unix time)."""

    vm: str
    at: float
    ok: bool
    message: str


class LeaseState(WireModel):
    """This host's fencing lease in etcd as the agent sees it (nodeagent.lease).

    `arbiter` is "none" when the agent runs without etcd (nothing fences). `held`: a
    keepalive was acknowledged less than TTL - margin ago; `expires_in_s` is the time
    left until the self-fence (< 0: past it). `term` is the highest controller term
    seen on a mutating call (calls under a lower one are refused).
    """

    held: bool
    granted: bool
    arbiter: Literal["etcd", "none"] = "none"
    lease_id: str | None = None
    ttl_s: float
    margin_s: float = 0.0
    expires_in_s: float | None = None
    error: str | None = None
    term: int = 0
    fenced: list[FenceRecord] = Field(default_factory=list)
