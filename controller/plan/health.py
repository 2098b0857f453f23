"""Host health for one pass: controller.ha's assessment of every desired host."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from controller.ha import POWER_FENCE_METHODS, HostHealth, HostState, assess_host
from controller.plan.model import HostObservation, PolicyContext
from schemas.host import Host


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
            margin_s=policy.for_host(name).ha_restart_margin_s,
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
