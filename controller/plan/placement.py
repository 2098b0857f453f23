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

from dataclasses import dataclass, field, replace

from controller.ha import NOT_HIGHLY_AVAILABLE, find_stale_copies, plan_ha_restarts
from controller.plan import reasons
from controller.plan.builder import PlanBuilder
from controller.plan.expand import DesiredVM
from controller.plan.health import fence_action_needed
from controller.plan.model import ActionType
from controller.plan.observe import ACTIVE_STATES, Copy
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
    move_verdicts: set[str] = field(default_factory=set)
    """VMs whose verdict the move step set (moving, or why they cannot move)."""
    empty_hosts: list[str] = field(default_factory=list)
    """Hosts the power-saving balancer left empty (they could be powered off)."""
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
        elsewhere = world.observed.undesired_copies.get(name)
        if elsewhere is not None and not any(
            c.domain.state in ACTIVE_STATES for c in world.observed.copies.get(name, ())
        ):
            out.verdict(
                ("VirtualMachine", name),
                False,
                reasons.RUNS_ON_REMOVED_HOST,
                f"VirtualMachine {name} may still run on {elsewhere}, a host no longer in "
                f"the manifests; it is not started elsewhere (never two copies): put "
                f"{elsewhere} back and drain it, or stop the VM there",
                stalled=True,
                phase=VMPhase.UNKNOWN.value,
                host=elsewhere,
            )
            continue
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
    _lost(world, out, dec, lost, views, labels)
    for request in placement_order([dec.requests[n] for n in unplaced]):
        _placed(world, out, dec, session.place(request))
    _stale_copies(world, out, dec)
    return dec


def _keep(
    world: World,
    out: PlanBuilder,
    vm: DesiredVM,
    copies: tuple[Copy, ...] | list[Copy],
    dec: Decisions,
) -> Copy | None:
    """Return the copy the VM keeps (None: place it); the others are removed later as stale."""
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
        if keeper is not None:
            return keeper
        out.verdict(
            ("VirtualMachine", vm.name),
            False,
            reasons.DUPLICATE_RUNNING,
            f"VirtualMachine {vm.name} runs on {', '.join(c.host for c in active)} at once "
            "and no record says which copy is the real one; stop the wrong copy by hand "
            "(nothing was destroyed)",
            stalled=True,
            phase=VMPhase.RUNNING.value,
            host=None,
            copies=[c.host for c in active],
        )
        dec.held.add(vm.name)
        return active[0]
    if active:
        return active[0]
    last_active = [c for c in unknown if c.active]
    if last_active:
        return last_active[0]
    if known:
        return next((c for c in known if c.host == status_host), known[0])
    return unknown[0]


def _stale_copies(world: World, out: PlanBuilder, dec: Decisions) -> None:
    """Destroy (if running) and undefine copies of VMs on hosts they are not placed on.

    VMs migrating (their incoming copy is the migration's) and VMs held for a person
    are left out; controller.ha.find_stale_copies makes the decision.
    """
    placements = {
        vm: host for vm, host in dec.hosts.items() if vm not in dec.migrating and vm not in dec.held
    }
    by_host: dict[str, dict[str, bool]] = {}
    for vm in placements:
        for copy in world.observed.copies.get(vm, ()):
            if world.observed.reachable(copy.host) and copy.host != placements[vm]:
                by_host.setdefault(copy.host, {})[vm] = copy.active
    for host in sorted(by_host):
        for stale in find_stale_copies(host, by_host[host], placements):
            key = ("VirtualMachine", stale.vm)
            if stale.destroy:
                out.add(
                    ActionType.DESTROY_VM,
                    key,
                    host,
                    reasons.STALE_COPY,
                    stale.message,
                    disruptive=True,
                )
            out.add(ActionType.UNDEFINE_VM, key, host, reasons.STALE_COPY, stale.message)


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


def _lost(
    world: World,
    out: PlanBuilder,
    dec: Decisions,
    lost: dict[str, Copy],
    views: list,
    labels: dict,
) -> None:
    """Decide for VMs on hosts that do not answer: HA restarts (controller.ha), or wait."""
    by_host: dict[str, list[VMRequest]] = {}
    pinned_local: dict[str, list[str]] = {}
    for name, copy in lost.items():
        vm = world.desired.vms[name]
        dec.down.setdefault(copy.host, []).append(name)
        should_run = copy.active and wants_running(
            vm, copy.domain, world.requests.get(("VirtualMachine", name))
        )
        request = dec.requests[name]
        if not should_run:
            request = replace(request, ha=False)
        elif request.ha and world.local_volumes(vm.spec.disks):
            # Its disks live on the failed host: a restart elsewhere would boot from new,
            # empty volumes and lose the data. It waits for its host.
            request = replace(request, ha=False)
            pinned_local[name] = world.local_volumes(vm.spec.disks)
        by_host.setdefault(copy.host, []).append(request)
    if not by_host:
        return
    health = {host: world.health[host].health for host in world.desired.hosts}
    decisions = plan_ha_restarts(
        health, by_host, views, world.policy, world.desired.affinity, dec.hosts, labels
    )
    decided: set[str] = set()
    fence_hosts: set[str] = set()
    session = dec.session
    assert session is not None
    for decision in decisions.decisions:
        decided.add(decision.vm)
        key = ("VirtualMachine", decision.vm)
        if decision.target is not None:
            session.commit(dec.requests[decision.vm], decision.target)
            dec.hosts[decision.vm] = decision.target
            dec.targets[decision.vm] = Target(
                decision.target, None, reasons.HA_RESTART, decision.message
            )
        elif decision.placement is not None:
            out.verdict(
                key,
                False,
                reasons.HA_RESTART_IMPOSSIBLE,
                decision.message,
                stalled=True,
                phase=VMPhase.UNKNOWN.value,
                host=decision.host,
                scheduling=list(decision.placement.verdicts),
            )
        elif decision.vm in pinned_local:
            out.verdict(
                key,
                False,
                reasons.HA_RESTART_IMPOSSIBLE,
                f"VirtualMachine {decision.vm} cannot restart elsewhere: its volumes "
                f"{', '.join(pinned_local[decision.vm])} are on host-local pools of "
                f"{decision.host} ({world.health[decision.host].message})",
                stalled=True,
                phase=VMPhase.UNKNOWN.value,
                host=decision.host,
            )
        elif decision.reason == NOT_HIGHLY_AVAILABLE:
            out.verdict(
                key,
                False,
                reasons.NOT_HA,
                f"{decision.message} ({world.health[decision.host].message})",
                phase=VMPhase.UNKNOWN.value,
                host=decision.host,
            )
        else:
            if fence_action_needed(world, decision.host):
                fence_hosts.add(decision.host)
            out.verdict(
                key,
                False,
                reasons.WAITING_FOR_FENCE,
                decision.message,
                phase=VMPhase.UNKNOWN.value,
                host=decision.host,
            )
    for name, copy in lost.items():
        if name not in decided:
            out.verdict(
                ("VirtualMachine", name),
                False,
                reasons.AGENT_UNREACHABLE,
                f"VirtualMachine {name} is on {copy.host}, which does not answer: "
                f"{world.health[copy.host].message}",
                phase=VMPhase.UNKNOWN.value,
                host=copy.host,
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


def _placed(world: World, out: PlanBuilder, dec: Decisions, placement: Placement) -> None:
    name = placement.vm
    if placement.host is None:
        out.verdict(
            ("VirtualMachine", name),
            False,
            reasons.NO_HOST_FITS,
            placement.message,
            stalled=True,
            phase=VMPhase.PENDING.value,
            host=None,
            scheduling=list(placement.verdicts),
        )
        return
    dec.hosts[name] = placement.host
    dec.targets[name] = Target(placement.host, None, reasons.CREATING, placement.message)
