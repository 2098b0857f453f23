"""Where each VM is: the observed copy it keeps, a host the scheduler picks, or an HA restart.

Rules, in order, for a VM's copies on desired hosts:
- a copy with a live migration job running: the VM stays on that source host; the
  migration step watches the job;
- one running copy on a host that answers: the VM is there; its other copies on
  answering hosts are stale and are undefined (never started);
- two or more running copies (never created by Corral: the HA step waits for fencing):
  the copy on the host the VM's status last named, else on its pinned host, is kept and
  every other copy is destroyed and undefined. With neither, nothing is destroyed: it is
  reported (DuplicateRunning, Stalled) for a person to decide which copy holds the data;
- no running copy on an answering host, but one on a host that does not answer (or
  only copies there): the VM is where that host is; when the host has failed and it is
  safe (controller.ha), an HA VM is restarted elsewhere through the scheduler;
- only stopped copies: the one on the status host (else the first by name) is kept;
- no copy at all: the scheduler places it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.plan import reasons
from controller.plan.builder import PlanBuilder
from controller.plan.expand import DesiredVM
from controller.plan.health import fence_action_needed
from controller.plan.model import ActionType
from controller.plan.observe import Copy
from controller.plan.requests import host_views, vm_request
from controller.plan.vms import Target, wants_running
from controller.plan.world import World
from controller.scheduler import SchedulingPass, placement_order
from controller.scheduler.model import Placement, VMRequest
from schemas.vm import VMPhase


@dataclass
class Decisions:
    """The outcome of placement: targets to plan on, where every VM is, pending moves."""

    targets: dict[str, Target] = field(default_factory=dict)
    """VM -> host and copy the VM is planned on in this pass."""
    hosts: dict[str, str] = field(default_factory=dict)
    """VM -> its host after this plan (placed, scheduled, restarted or unreachable)."""
    migrating: dict[str, Copy] = field(default_factory=dict)
    """VM -> the source copy of a live migration in progress."""
    requests: dict[str, VMRequest] = field(default_factory=dict)
    session: SchedulingPass | None = None
    down: dict[str, list[str]] = field(default_factory=dict)
    """Host that does not answer -> the VMs that were there."""
    live_moves: set[str] = field(default_factory=set)
    """VMs given a MigrateVM in this plan (their verdict says Migrating)."""
    held: set[str] = field(default_factory=set)
    """VMs left as they are for a person to decide (their verdict says why)."""


def decide_placements(world: World, out: PlanBuilder) -> Decisions:
    """Return where every desired VM is; add stale-copy and fence actions and their verdicts."""
    dec = Decisions()
    volumes = world.desired.volumes
    unplaced: list[str] = []
    lost: dict[str, Copy] = {}
    for name, vm in world.desired.vms.items():
        if ("VirtualMachine", name) in world.desired.problems:
            continue
        dec.requests[name] = vm_request(vm, volumes)
        kept = _keep(world, out, vm, world.observed.copies.get(name, ()), dec)
        if kept is None:
            unplaced.append(name)
        elif not world.observed.reachable(kept.host):
            lost[name] = kept
            dec.hosts[name] = kept.host
        else:
            dec.hosts[name] = kept.host
            if name not in dec.migrating and name not in dec.held:
                dec.targets[name] = Target(kept.host, kept)
    migrations = _migrations_in_flight(world, dec)
    views = host_views(world, dec.hosts, dec.requests, migrations)
    labels = {name: vm.labels for name, vm in world.desired.vms.items()}
    session = SchedulingPass(views, world.policy, world.desired.affinity, dec.hosts, labels)
    dec.session = session
    restarts = _lost(world, out, dec, lost)
    to_place = [dec.requests[n] for n in unplaced] + [dec.requests[n] for n in restarts]
    for request in placement_order(to_place):
        placement = session.place(request)
        _placed(world, out, dec, placement, request.name in restarts)
    return dec


def _keep(
    world: World,
    out: PlanBuilder,
    vm: DesiredVM,
    copies: tuple[Copy, ...] | list[Copy],
    dec: Decisions,
) -> Copy | None:
    """Return the copy the VM keeps (None: place it); add stale-copy actions for the rest."""
    if not copies:
        return None
    known = [c for c in copies if world.observed.reachable(c.host)]
    unknown = [c for c in copies if not world.observed.reachable(c.host)]
    for copy in known:
        job = copy.domain.migration
        if job is not None and job.state == "running" and copy.active:
            dec.migrating[vm.name] = copy
            return copy
    active = [c for c in known if c.active]
    status_host = vm.resource.status.host if vm.resource.status else None
    if len(active) >= 2:
        pinned = vm.spec.placement.host if vm.spec.placement else None
        keeper = next((c for c in active if c.host == status_host), None) or next(
            (c for c in active if c.host == pinned), None
        )
        hosts = ", ".join(c.host for c in active)
        if keeper is None:
            out.verdict(
                ("VirtualMachine", vm.name),
                False,
                reasons.DUPLICATE_RUNNING,
                f"VirtualMachine {vm.name} runs on {hosts} at once and no record says which "
                "copy is the real one; stop the wrong copy by hand (nothing was destroyed)",
                stalled=True,
                phase=VMPhase.RUNNING.value,
                host=None,
                copies=[c.host for c in active],
            )
            dec.held.add(vm.name)
            return active[0]
        for copy in known:
            if copy is not keeper:
                _remove_copy(out, vm.name, copy, keeper.host, duplicate=copy.active)
        return keeper
    if len(active) == 1:
        keeper = active[0]
    else:
        last_active = [c for c in unknown if c.active]
        if last_active:
            return last_active[0]
        if known:
            keeper = next((c for c in known if c.host == status_host), known[0])
        else:
            return unknown[0]
    for copy in known:
        if copy is not keeper:
            _remove_copy(out, vm.name, copy, keeper.host, duplicate=False)
    return keeper


def _remove_copy(out: PlanBuilder, vm: str, copy: Copy, keeper: str, duplicate: bool) -> None:
    """Destroy (if running) and undefine a copy that is not the VM's kept one."""
    key = ("VirtualMachine", vm)
    reason = reasons.DUPLICATE_RUNNING if duplicate else reasons.STALE_COPY
    if copy.active:
        out.add(
            ActionType.DESTROY_VM,
            key,
            copy.host,
            reason,
            f"VirtualMachine {vm} also runs on {copy.host} but belongs on {keeper}; "
            f"destroying the copy on {copy.host}",
            disruptive=True,
        )
    out.add(
        ActionType.UNDEFINE_VM,
        key,
        copy.host,
        reason,
        f"VirtualMachine {vm} is on {keeper}; removing its stale copy on {copy.host} "
        "(never started)",
    )


def _migrations_in_flight(world: World, dec: Decisions) -> dict[str, int]:
    """Return host -> live migrations running to or from it."""
    by_uri = {
        state.migration_uri: host
        for host, state in world.observed.states.items()
        if state.migration_uri
    }
    counts: dict[str, int] = {}
    for copy in dec.migrating.values():
        job = copy.domain.migration
        if job is None or job.state != "running":
            continue
        counts[copy.host] = counts.get(copy.host, 0) + 1
        dest = by_uri.get(job.destination_uri)
        if dest:
            counts[dest] = counts.get(dest, 0) + 1
    return counts


def _lost(world: World, out: PlanBuilder, dec: Decisions, lost: dict[str, Copy]) -> set[str]:
    """Decide for VMs on hosts that do not answer; return the VMs to restart elsewhere."""
    restarts: set[str] = set()
    fence_hosts: set[str] = set()
    for name, copy in lost.items():
        vm = world.desired.vms[name]
        host = copy.host
        dec.down.setdefault(host, []).append(name)
        health = world.health[host]
        key = ("VirtualMachine", name)
        ha = bool(vm.spec.ha and vm.spec.ha.enabled)
        should_run = wants_running(vm, copy.domain, world.requests.get(key)) and copy.active
        if not ha or not should_run:
            why = "HA is off" if not ha else "it was not running"
            out.verdict(
                key,
                False,
                reasons.NOT_HA if not ha else reasons.AGENT_UNREACHABLE,
                f"VirtualMachine {name} is on {host}, which does not answer "
                f"({health.message}); it waits for the host because {why}",
                phase=VMPhase.UNKNOWN.value,
                host=host,
            )
            continue
        if health.safe_to_restart:
            restarts.add(name)
            dec.hosts.pop(name, None)
            continue
        if fence_action_needed(world, host):
            fence_hosts.add(host)
        out.verdict(
            key,
            False,
            reasons.WAITING_FOR_FENCE,
            f"VirtualMachine {name} is on {host}, which does not answer; it restarts "
            f"elsewhere once that is safe: {health.message}",
            phase=VMPhase.UNKNOWN.value,
            host=host,
        )
    for host in sorted(fence_hosts):
        method = world.desired.hosts[host].spec.fencing.method.value
        out.add(
            ActionType.FENCE_HOST,
            ("Host", host),
            None,
            reasons.FENCING,
            f"Host {host} failed with HA VMs on it; switching it off through its {method} "
            "fence before restarting them elsewhere",
        )
    return restarts


def _placed(
    world: World, out: PlanBuilder, dec: Decisions, placement: Placement, restart: bool
) -> None:
    name = placement.vm
    key = ("VirtualMachine", name)
    if placement.host is None:
        verdicts = list(placement.verdicts)
        out.verdict(
            key,
            False,
            reasons.HA_RESTART_IMPOSSIBLE if restart else reasons.NO_HOST_FITS,
            placement.message,
            stalled=True,
            phase=VMPhase.UNKNOWN.value if restart else VMPhase.PENDING.value,
            host=None,
            scheduling=verdicts,
        )
        return
    dec.hosts[name] = placement.host
    if restart:
        failed = next(h for h, vms in dec.down.items() if name in vms)
        dec.targets[name] = Target(
            placement.host,
            None,
            reasons.HA_RESTARTING,
            f"HA restart: {failed} failed; {placement.message}",
        )
    else:
        dec.targets[name] = Target(placement.host, None, reasons.CREATING, placement.message)
