"""High availability: host liveness, fencing decisions and HA restarts (pure).

Never two copies. An HA VM is restarted elsewhere only when its old host provably
cannot run it any more: the host's etcd lease expired (its agent fenced itself before
etcd could let it expire), or a power fence switched the host off and said so.
Everything here is a function of observations and `now`; the loop and the executor
do the acting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from controller.scheduler.schedule import Affinity, SchedulingPass, placement_order
from schemas.host import FenceMethod

if TYPE_CHECKING:
    from controller.plan.model import HostObservation, PolicyContext
    from controller.scheduler.model import HostView, Placement, VMRequest

POWER_FENCE_METHODS = frozenset({FenceMethod.IPMI, FenceMethod.REDFISH, FenceMethod.COMMAND})


class HostState(StrEnum):
    """A host's liveness as the controller concludes it."""

    UP = "Up"  # the agent answered the latest call
    SUSPECT = "Suspect"  # no answer, but nothing says the host stopped (its lease is held)
    FAILED = "Failed"  # no answer and its etcd lease is gone (or nothing is known of it)
    FENCED = "Fenced"  # a power fence switched it off, confirmed
    UNKNOWN = "Unknown"  # never reached: nothing known, nothing to restart


# Reasons (CamelCase constants) carried by HostHealth and HADecision.
AGENT_ANSWERING = "AgentAnswering"
"""The agent answered the latest call."""
LEASE_HELD = "LeaseHeld"
"""The agent does not answer the controller but keeps its etcd lease alive: the host runs."""
NEVER_REACHED = "NeverReached"
"""The controller has never reached the agent."""
LEASE_EXPIRED = "LeaseExpired"
"""The host's etcd lease expired (its key is gone) with margin: its agent has fenced."""
WAITING_FOR_LEASE = "WaitingForLeaseExpiry"
"""The host's etcd lease is gone; the margin for clock drift and the kill has not passed."""
ARBITER_UNREACHABLE = "ArbiterUnreachable"
"""The controller's watch of etcd is out of sync: nothing proves the host stopped."""
WAITING_FOR_FENCE = "WaitingForFence"
"""The host failed and only a confirmed power fence can make it safe."""
NO_ARBITER = "NoArbiter"
"""No etcd is configured (single host): HA VMs are not restarted elsewhere."""
NOT_PROVABLY_OFF = "NotProvablyOff"
"""The host failed and its agent runs without etcd: nothing proves its VMs stopped."""
POWER_FENCED = "PowerFenced"
"""A power fence switched the host off and confirmed it."""
HA_RESTART = "HARestart"
"""An HA VM of a failed host is restarted on another host."""
NO_HOST_FOR_RESTART = "NoHostForRestart"
"""An HA VM of a failed host fits on no other host."""
NOT_HIGHLY_AVAILABLE = "NotHighlyAvailable"
"""A VM without HA stays with its failed host (phase Unknown) until the host returns."""
STALE_COPY = "StaleCopy"
"""A returning host holds a copy of a VM that now runs elsewhere: undefine it, never start it."""


@dataclass(frozen=True)
class HostHealth:
    """The liveness of one host and whether its VMs may be restarted elsewhere.

    Why `safe_at` is the time the controller saw the host's etcd key go plus margin_s,
    and why nothing earlier is safe:

    - The agent keeps its lease alive in etcd itself. etcd extends a lease to at least
      the keepalive's send time + TTL when it acknowledges it; the agent destroys its HA
      domains at the newest acknowledged send + TTL - its own margin (nodeagent.lease),
      so before etcd can let the lease expire. The key is bound to the lease: it is
      deleted exactly when etcd expires the lease.
    - margin_s covers the agent's and etcd's clock rates and the time the kill takes
      (the agent's own margin already covers most of that; this is the second belt).
    - A controller that cannot see etcd (out of sync) proves nothing: no restart.
    - An agent reachable by nobody but holding its lease still runs its VMs: a host
      cut from the controller only is never restarted from.
    - An agent that runs without etcd (`arbiter` none in its last state) never fences:
      only a confirmed power fence makes its VMs safe to restart.
    - With a power fence method, a confirmed fence makes the host safe at once; a gone
      lease also suffices (both mechanisms).

    `safe_at` is None when no time is known at which it becomes safe.
    """

    host: str
    state: HostState
    safe_to_restart: bool
    reason: str
    message: str
    safe_at: datetime | None = None
    failed_at: datetime | None = None


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _agent_without_arbiter(obs: HostObservation) -> bool:
    """Return True when the agent's last state says it runs without etcd (never fences)."""
    return obs.state is not None and obs.state.lease.arbiter == "none"


def assess_host(
    obs: HostObservation,
    margin_s: float,
    now: datetime,
    fencing_method: FenceMethod = FenceMethod.LEASE,
) -> HostHealth:
    """Return the host's state and whether its VMs may run elsewhere now (see HostHealth).

    Up while its agent answers; Fenced once a power fence is confirmed; Suspect while it
    does not answer but holds its etcd lease; Failed when its lease is gone (safe from
    gone_since + `margin_s` on, inclusive) or when nothing can prove either way.
    """
    name = obs.name
    if obs.reachable:
        return HostHealth(name, HostState.UP, False, AGENT_ANSWERING, f"Host {name} answers")
    power = fencing_method in POWER_FENCE_METHODS
    contact = obs.last_seen
    # A fence confirmed before the host last answered belongs to an earlier failure: the
    # host came back since, so it says nothing about whether it runs now.
    if obs.power_fenced_at is not None and (contact is None or obs.power_fenced_at >= contact):
        return HostHealth(
            name,
            HostState.FENCED,
            True,
            POWER_FENCED,
            f"Host {name} was switched off by its power fence at {_stamp(obs.power_fenced_at)}",
            safe_at=obs.power_fenced_at,
            failed_at=obs.power_fenced_at,
        )
    lease = obs.lease
    if contact is None and (lease is None or not lease.alive):
        return HostHealth(
            name,
            HostState.UNKNOWN,
            False,
            NEVER_REACHED,
            f"Host {name} has never answered and holds no lease",
        )
    if lease is not None and lease.alive:
        return HostHealth(
            name,
            HostState.SUSPECT,
            False,
            LEASE_HELD,
            f"Host {name} does not answer the controller but keeps its etcd lease alive: it "
            "runs, and its VMs are not restarted elsewhere",
        )
    waiting = (
        f"; waiting for its {fencing_method.value} power fence to switch it off" if power else ""
    )
    if lease is None:
        return HostHealth(
            name,
            HostState.FAILED,
            False,
            WAITING_FOR_FENCE if power else NO_ARBITER,
            f"Host {name} does not answer; no etcd is configured, so nothing proves its VMs "
            f"stopped and HA restarts elsewhere are off{waiting}",
        )
    if lease.alive is None:
        return HostHealth(
            name,
            HostState.FAILED,
            False,
            WAITING_FOR_FENCE if power else ARBITER_UNREACHABLE,
            f"Host {name} does not answer and the controller cannot read etcd: nothing proves "
            f"its VMs stopped{waiting}",
        )
    gone = lease.gone_since or now
    if _agent_without_arbiter(obs):
        return HostHealth(
            name,
            HostState.FAILED,
            False,
            WAITING_FOR_FENCE if power else NOT_PROVABLY_OFF,
            f"Host {name} failed and its agent runs without etcd: nothing proves its VMs "
            f"stopped{waiting}",
            failed_at=gone,
        )
    safe_at = gone + timedelta(seconds=margin_s)
    if now >= safe_at:
        return HostHealth(
            name,
            HostState.FAILED,
            True,
            LEASE_EXPIRED,
            f"Host {name} failed; its etcd lease expired (key gone at {_stamp(gone)}, margin "
            f"{margin_s:g}s): its agent has fenced, and its HA VMs may restart elsewhere",
            safe_at=safe_at,
            failed_at=gone,
        )
    return HostHealth(
        name,
        HostState.FAILED,
        False,
        WAITING_FOR_LEASE,
        f"Host {name} failed; its etcd lease expired at {_stamp(gone)}: its HA VMs restart "
        f"elsewhere at {_stamp(safe_at)}, after a margin of {margin_s:g}s",
        safe_at=safe_at,
        failed_at=gone,
    )


@dataclass(frozen=True)
class HADecision:
    """What happens to one VM of a failed host, and why.

    `target` is set for a restart (reason HARestart). `placement` carries the
    scheduler's verdicts when a restart was attempted.
    """

    vm: str
    host: str
    reason: str
    message: str
    target: str | None = None
    placement: Placement | None = None


@dataclass(frozen=True)
class HARestartPlan:
    """Decisions for every VM of the failed hosts: HA restarts first, in placement order."""

    decisions: tuple[HADecision, ...]

    @property
    def restarts(self) -> tuple[HADecision, ...]:
        return tuple(d for d in self.decisions if d.reason == HA_RESTART)


def plan_ha_restarts(
    health: Mapping[str, HostHealth],
    vms_by_host: Mapping[str, Sequence[VMRequest]],
    hosts: Sequence[HostView],
    policy: PolicyContext,
    affinity: Affinity = (),
    placements: Mapping[str, str] | None = None,
    vm_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> HARestartPlan:
    """Return which VMs of failed hosts restart where, which wait, and which stay.

    Only hosts whose HostHealth state is Failed or Fenced are considered. Their HA
    VMs are restarted when the host is safe_to_restart, in HA priority order then
    name, through the scheduler and within capacity (the failed hosts are never
    targets); those that fit nowhere get the scheduler's reason. HA VMs of a host
    not yet safe wait, with the time it becomes safe. VMs without HA stay.
    """
    failed = {
        name: h
        for name, h in health.items()
        if h.state in (HostState.FAILED, HostState.FENCED) and name in vms_by_host
    }
    decisions: list[HADecision] = []
    to_place: list[VMRequest] = []
    origin: dict[str, str] = {}
    for name in sorted(failed):
        h = failed[name]
        for vm in vms_by_host[name]:
            if not vm.ha:
                decisions.append(
                    HADecision(
                        vm.name,
                        name,
                        NOT_HIGHLY_AVAILABLE,
                        f"VirtualMachine {vm.name} is not highly available: it stays on failed "
                        f"host {name} (phase Unknown) until the host returns",
                    )
                )
            elif not h.safe_to_restart:
                decisions.append(
                    HADecision(vm.name, name, h.reason, f"Not restarting {vm.name}: {h.message}")
                )
            else:
                to_place.append(vm)
                origin[vm.name] = name
    if to_place:
        session = SchedulingPass(hosts, policy, affinity, placements, vm_labels)
        session.index.add_vms((v.name, v.labels) for v in to_place)
        exclude = {name: "failed host" for name in failed}
        restarts: list[HADecision] = []
        for vm in placement_order(to_place):
            placement = session.place(vm, exclude)
            source = origin[vm.name]
            if placement.host is None:
                restarts.append(
                    HADecision(
                        vm.name,
                        source,
                        NO_HOST_FOR_RESTART,
                        f"Cannot restart HA VirtualMachine {vm.name} from failed host {source}: "
                        f"{placement.message}",
                        placement=placement,
                    )
                )
            else:
                restarts.append(
                    HADecision(
                        vm.name,
                        source,
                        HA_RESTART,
                        f"Restarting HA VirtualMachine {vm.name} (priority {vm.ha_priority}) from "
                        f"failed host {source} on {placement.host}: {placement.message}",
                        target=placement.host,
                        placement=placement,
                    )
                )
        decisions = restarts + decisions
    return HARestartPlan(tuple(decisions))


@dataclass(frozen=True)
class StaleCopy:
    """A copy of a VM on a returning host while the VM is placed elsewhere.

    The decision is always the same: never start it; destroy it if it runs (its
    agent should have self-fenced it already), then undefine it.
    """

    vm: str
    host: str
    placed_on: str
    destroy: bool
    undefine: bool = True
    reason: str = STALE_COPY

    @property
    def message(self) -> str:
        verb = "destroying and undefining" if self.destroy else "undefining"
        return (
            f"VirtualMachine {self.vm} runs on {self.placed_on}; {verb} its stale copy on "
            f"{self.host}, never starting it"
        )


def find_stale_copies(
    host: str, copies: Mapping[str, bool], placements: Mapping[str, str]
) -> list[StaleCopy]:
    """Return the stale copies on `host`: VMs (name -> running there?) placed on another host.

    A copy of a VM that is placed nowhere is not stale (the planner may adopt it); a
    copy on the VM's own host is the VM itself.
    """
    found = []
    for vm in sorted(copies):
        placed_on = placements.get(vm)
        if placed_on is not None and placed_on != host:
            found.append(StaleCopy(vm, host, placed_on, destroy=copies[vm]))
    return found
