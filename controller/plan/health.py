"""Host health for one pass: controller.ha's assessment of every desired host."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from controller.ha import POWER_FENCE_METHODS, HostHealth, HostState, assess_host
from controller.plan.model import HostObservation, PolicyContext
from schemas.host import Host

REQUEST_TIMEOUT_S = 2.0
"""The longest a lease renewal may be in flight: one sent may reach the agent this much later.
controller.leases.LeaseKeeper enforces it (connect and send each within half of it)."""


@dataclass(frozen=True)
class HostHealthView:
    """What the planner needs of a host's health: state, can act, may restart its VMs."""

    health: HostHealth
    state: str
    up: bool
    failed: bool
    safe_to_restart: bool
    reason: str
    message: str
    fenced: bool


def assess_hosts(
    hosts: dict[str, Host],
    observations: dict[str, HostObservation],
    policy: PolicyContext,
    now: datetime,
) -> dict[str, HostHealthView]:
    """Return the health of every desired host, assessed by controller.ha.assess_host."""
    out: dict[str, HostHealthView] = {}
    for name, host in hosts.items():
        obs = observations[name]
        fencing = host.spec.fencing
        health = assess_host(
            obs,
            # The agent fences by the TTL it was granted: after the spec's TTL is lowered,
            # a lease granted earlier still runs by the old, longer one.
            ttl_s=max(fencing.lease_ttl_s, obs.lease_ttl_s or 0),
            margin_s=policy.for_host(name).ha_restart_margin_s,
            request_timeout_s=REQUEST_TIMEOUT_S,
            now=now,
            fencing_method=fencing.method,
        )
        out[name] = HostHealthView(
            health=health,
            state=health.state.value,
            up=health.state is HostState.UP,
            failed=health.state in (HostState.FAILED, HostState.FENCED),
            safe_to_restart=health.safe_to_restart,
            reason=health.reason,
            message=health.message,
            fenced=health.state is HostState.FENCED,
        )
    return out


def fence_action_needed(world: object, host: str) -> bool:
    """Return True when a failed host has a power fence and has not been fenced yet."""
    health = world.health[host]  # type: ignore[attr-defined]
    method = world.desired.hosts[host].spec.fencing.method  # type: ignore[attr-defined]
    return health.failed and method in POWER_FENCE_METHODS and not health.fenced
