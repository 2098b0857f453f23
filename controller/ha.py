"""High availability: host liveness, fencing decisions and HA restarts (pure).

Never two copies. An HA VM is restarted elsewhere only when its old host provably
cannot run it any more: the host's agent has self-fenced because its lease expired,
or a power fence switched the host off and said so. Everything here is a function of
observations and `now`; the loop and the executor do the acting.
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
    SUSPECT = "Suspect"  # no answer, but for less than a lease TTL since the last contact
    FAILED = "Failed"  # no answer for a lease TTL or more: declared failed
    FENCED = "Fenced"  # a power fence switched it off, confirmed
    UNKNOWN = "Unknown"  # never reached and never leased: nothing known, nothing to restart


# Reasons (CamelCase constants) carried by HostHealth and HADecision.
AGENT_ANSWERING = "AgentAnswering"
"""The agent answered the latest call."""
AGENT_UNREACHABLE = "AgentUnreachable"
"""The agent stopped answering recently; it may be a blip."""
NEVER_REACHED = "NeverReached"
"""The controller has never reached the agent."""
LEASE_EXPIRED = "LeaseExpired"
"""The host's lease has expired with margin: its agent has killed its HA VMs."""
WAITING_FOR_LEASE = "WaitingForLeaseExpiry"
"""The host failed; its VMs may still run until its lease expires (with margin)."""
WAITING_FOR_FENCE = "WaitingForFence"
"""The host failed and only a confirmed power fence can make it safe."""
NOT_PROVABLY_OFF = "NotProvablyOff"
"""The host failed, was never leased and has no power fence: nothing proves it off."""
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

    Why `safe_at` is lease_sent_at + request_timeout_s + ttl_s + margin_s, and why
    nothing earlier is safe:

    - The agent computes its lease expiry from when the latest renewal ARRIVED,
      stamped before any queue on its own monotonic clock, and kills its HA VMs when
      the lease expires. How long the renewal then waits to be granted does not move
      the expiry; one that cannot be granted within its `request_timeout_s` after
      arriving is refused and extends nothing (nodeagent.lease).
    - A renewal sent at S arrives at most request_timeout_s after S (the client
      bounds its connect and its send by half of it each, then abandons the request),
      so the agent's expiry is at most S + request_timeout_s + ttl_s.
    - S is the send time of the newest renewal that may have reached the agent, not
      of the newest acknowledged one: a renewal whose acknowledgement was lost may
      still have been received, and then it extended the lease.
    - margin_s covers the difference in clock rates between the two machines and
      the time the agent takes to kill its domains.
    - A host that was never leased has no watchdog armed: nothing proves it off.
      Only a confirmed power fence (power_fenced_at) makes its VMs safe to restart.
    - With a power fence method, a confirmed fence makes the host safe at once; an
      expired lease also suffices when the host was leased too (both mechanisms).

    `safe_at` is None when no time is known at which it becomes safe (never leased
    and not fenced) or the host is up.
    """

    host: str
    state: HostState
    safe_to_restart: bool
    reason: str
    message: str
    safe_at: datetime | None = None
    failed_at: datetime | None = None


def _last_contact(obs: HostObservation) -> datetime | None:
    times = [t for t in (obs.last_seen, obs.lease_acked_at) if t is not None]
    return max(times) if times else None


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def assess_host(
    obs: HostObservation,
    ttl_s: float,
    margin_s: float,
    request_timeout_s: float,
    now: datetime,
    fencing_method: FenceMethod = FenceMethod.LEASE,
) -> HostHealth:
    """Return the host's state and whether its VMs may run elsewhere now (see HostHealth).

    A host is Up while its agent answers; Suspect when it stopped answering less
    than `ttl_s` after the last contact; Failed after that; Fenced once a power
    fence is confirmed. Restarting is safe exactly from `safe_at` on (inclusive).
    """
    name = obs.name
    if obs.reachable:
        return HostHealth(name, HostState.UP, False, AGENT_ANSWERING, f"Host {name} answers")
    power = fencing_method in POWER_FENCE_METHODS
    contact = _last_contact(obs)
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
    sent = obs.lease_sent_at
    if contact is None and sent is None:
        return HostHealth(
            name,
            HostState.UNKNOWN,
            False,
            NEVER_REACHED,
            f"Host {name} has never answered and holds no lease",
        )
    safe_at = (
        sent + timedelta(seconds=request_timeout_s + ttl_s + margin_s) if sent is not None else None
    )
    failed_at = (contact or sent) + timedelta(seconds=ttl_s)  # type: ignore[operator]
    if now < failed_at:
        return HostHealth(
            name,
            HostState.SUSPECT,
            False,
            AGENT_UNREACHABLE,
            f"Host {name} has not answered since {_stamp(contact or sent)}"  # type: ignore[arg-type]
            f"; declared failed at {_stamp(failed_at)} if it stays silent",
            safe_at=safe_at,
            failed_at=failed_at,
        )
    if safe_at is not None and now >= safe_at:
        return HostHealth(
            name,
            HostState.FAILED,
            True,
            LEASE_EXPIRED,
            f"Host {name} failed; its lease expired at {_stamp(safe_at)} (TTL {ttl_s:g}s, "
            f"request timeout {request_timeout_s:g}s and margin {margin_s:g}s after the last "
            "renewal sent): its HA VMs may restart elsewhere",
            safe_at=safe_at,
            failed_at=failed_at,
        )
    if power:
        until = f" or until its lease expires at {_stamp(safe_at)}" if safe_at else ""
        return HostHealth(
            name,
            HostState.FAILED,
            False,
            WAITING_FOR_FENCE,
            f"Host {name} failed; waiting for its {fencing_method.value} power fence to switch it "
            f"off{until} before restarting its VMs elsewhere",
            safe_at=safe_at,
            failed_at=failed_at,
        )
    if safe_at is None:
        return HostHealth(
            name,
            HostState.FAILED,
            False,
            NOT_PROVABLY_OFF,
            f"Host {name} failed and was never leased: nothing proves its VMs stopped; they "
            "restart elsewhere only after the host returns or is fenced",
            failed_at=failed_at,
        )
    return HostHealth(
        name,
        HostState.FAILED,
        False,
        WAITING_FOR_LEASE,
        f"Host {name} failed; its VMs may still run until its lease expires at {_stamp(safe_at)}",
        safe_at=safe_at,
        failed_at=failed_at,
    )


def lease_renewal_due(acked_at: datetime | None, ttl_s: float, now: datetime) -> bool:
    """Return True when a host's lease should be renewed now: every ttl/3 since the last
    acknowledged renewal (`acked_at`, None if never).

    Counting from the last acknowledged renewal (not the last sent) renews again at
    once after a renewal whose answer was lost, so one lost reply never costs the lease.
    """
    if acked_at is None:
        return True
    return now >= acked_at + timedelta(seconds=ttl_s / 3)


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
