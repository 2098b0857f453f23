"""Moves: VMs that must leave their host (maintenance, pin, selector, hard affinity).

A running VM moves live (MigrateVM) to a host the scheduler picks, within the
disruption budget (live migrations per host and in the fleet, counting those in
flight); its local-pool volumes are created on the target first and copied by the
migration. A stopped VM is undefined on the old host and defined on the new one. A VM
whose migration policy forbids moving stays and says so; nothing running is stopped
to satisfy a policy. A migration job in flight is watched: past its timeout it is
cancelled; a failed one is retried on a later pass while the reason to move holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from agentapi import MigrateRequest
from controller.plan import reasons
from controller.plan.builder import PlanBuilder
from controller.plan.model import ActionType
from controller.plan.observe import Copy
from controller.plan.placement import Decisions
from controller.plan.requests import host_views
from controller.plan.storage import VolumeNeeds
from controller.plan.vms import Target, settled
from controller.plan.world import World
from controller.scheduler import schedule_vm
from controller.scheduler.balance import (
    MIGRATION_NOT_ALLOWED,
    WAITING_FOR_BUDGET,
    plan_drain,
    plan_rebalance,
)
from controller.scheduler.model import VMRequest
from schemas.policy import BalancerType
from schemas.vm import VMPhase


@dataclass(frozen=True)
class Move:
    """A VM that must leave `source`, and why (the first hard rule it breaks)."""

    vm: str
    source: str
    why: str
    running: bool


def find_moves(world: World, dec: Decisions) -> list[Move]:
    """Return the placed VMs that break a hard rule where they are (by VM name)."""
    moves: list[Move] = []
    session = dec.session
    if session is None:
        return moves
    for name, target in dec.targets.items():
        copy = target.copy
        if copy is None:
            continue
        broken = session.violations(dec.requests[name], target.host)
        if broken:
            moves.append(Move(name, target.host, "; ".join(broken), copy.active))
    return moves


def plan_cold_moves(world: World, out: PlanBuilder, dec: Decisions, moves: list[Move]) -> None:
    """Re-target stopped VMs that must leave their host: undefine there, define elsewhere."""
    session = dec.session
    assert session is not None
    for move in moves:
        if move.running:
            continue
        request = dec.requests[move.vm]
        key = ("VirtualMachine", move.vm)
        local = world.local_volumes(world.desired.vms[move.vm].spec.disks)
        if local:
            # Its disks stay on this host: defining it elsewhere would boot it from new,
            # empty volumes there.
            out.verdict(
                key,
                False,
                reasons.NO_HOST_FITS,
                f"VirtualMachine {move.vm} is stopped and must leave {move.source} ({move.why}),"
                f" but its volumes {', '.join(local)} are on host-local pools; start it to move"
                " it live with its storage, or move the volumes to a shared pool",
                stalled=True,
                phase=VMPhase.STOPPED.value,
                host=move.source,
            )
            dec.targets.pop(move.vm, None)
            continue
        placement = session.evaluate(request, exclude={move.source: move.why})
        if placement.host is None:
            out.verdict(
                key,
                False,
                reasons.NO_HOST_FITS,
                f"VirtualMachine {move.vm} must leave {move.source} ({move.why}) but "
                f"{placement.message[0].lower()}{placement.message[1:]}",
                stalled=True,
                phase=VMPhase.STOPPED.value,
                host=move.source,
                scheduling=list(placement.verdicts),
            )
            dec.targets.pop(move.vm, None)
            continue
        session.commit(request, placement.host)
        out.add(
            ActionType.UNDEFINE_VM,
            key,
            move.source,
            reasons.MOVING,
            f"VirtualMachine {move.vm} is stopped and must leave {move.source} ({move.why}); "
            f"undefining it there to define it on {placement.host}",
        )
        dec.hosts[move.vm] = placement.host
        dec.targets[move.vm] = Target(
            placement.host, None, reasons.MOVING, f"moved from {move.source}: {move.why}"
        )


def plan_live_moves(
    world: World, out: PlanBuilder, dec: Decisions, moves: list[Move], needs: VolumeNeeds
) -> None:
    """Add MigrateVM for running, settled VMs: drains first, other broken rules, then balance.

    Draining hosts go through controller.scheduler.plan_drain, other hard-rule breaks
    through the scheduler with their host excluded, and when nothing else moves and no
    migration is in flight, the policy's balancer (plan_rebalance) may move VMs.
    """
    settled_moves = []
    for move in moves:
        if move.running and settled(world, world.desired.vms[move.vm], dec.targets[move.vm]):
            settled_moves.append(move)
    planned: dict[str, int] = {}
    drained = sorted(
        {m.source for m in settled_moves if world.desired.hosts[m.source].spec.maintenance}
    )
    for host in drained:
        mine = [dec.requests[m.vm] for m in settled_moves if m.source == host]
        _drain(world, out, dec, needs, host, mine, planned)
    for move in settled_moves:
        if not world.desired.hosts[move.source].spec.maintenance:
            _evict(world, out, dec, needs, move, planned)
    if not planned and not dec.migrating:
        _rebalance(world, out, dec, needs, planned)


def _views(world: World, dec: Decisions, planned: dict[str, int]) -> list:
    """Return HostViews of the placements so far, counting planned migrations as in flight."""
    in_flight = dict(planned)
    for host, count in _per_host(world, dec).items():
        in_flight[host] = in_flight.get(host, 0) + count
    return host_views(world, dec.hosts, dec.requests, in_flight)


def _labels(world: World) -> dict[str, dict[str, str]]:
    return world.vm_labels()


def _drain(
    world: World,
    out: PlanBuilder,
    dec: Decisions,
    needs: VolumeNeeds,
    host: str,
    vms: list[VMRequest],
    planned: dict[str, int],
) -> None:
    drain = plan_drain(
        host,
        _views(world, dec, planned),
        vms,
        dec.hosts,
        world.policy,
        world.desired.affinity,
        _labels(world),
    )
    for move in drain.moves:
        _emit(
            world,
            out,
            dec,
            needs,
            move.vm,
            host,
            move.target,
            reasons.DRAINING,
            move.message,
            planned,
        )
    for blocked in drain.blocked:
        waiting = blocked.reason == WAITING_FOR_BUDGET
        dec.move_verdicts.add(blocked.vm)
        out.verdict(
            ("VirtualMachine", blocked.vm),
            False,
            {
                WAITING_FOR_BUDGET: reasons.DISRUPTION_BUDGET,
                MIGRATION_NOT_ALLOWED: reasons.MIGRATION_NOT_ALLOWED,
            }.get(blocked.reason, reasons.NO_HOST_FITS),
            blocked.message + ("" if waiting else "; nothing is stopped for it"),
            stalled=not waiting,
            phase=VMPhase.RUNNING.value,
            host=host,
        )


def _evict(
    world: World,
    out: PlanBuilder,
    dec: Decisions,
    needs: VolumeNeeds,
    move: Move,
    planned: dict[str, int],
) -> None:
    """Move one VM that breaks a hard rule on a host not in maintenance (pin, selector...)."""
    key = ("VirtualMachine", move.vm)
    request = dec.requests[move.vm]
    dec.move_verdicts.add(move.vm)
    if not request.migratable:
        out.verdict(
            key,
            False,
            reasons.MIGRATION_NOT_ALLOWED,
            f"VirtualMachine {move.vm} must leave {move.source} ({move.why}) but its "
            "migration policy forbids live migration; stop it or allow migration "
            "(nothing is stopped for it)",
            stalled=True,
            phase=VMPhase.RUNNING.value,
            host=move.source,
        )
        return
    views = _views(world, dec, planned)
    full = {
        v.name
        for v in views
        if v.migrations_in_flight
        >= world.policy.for_host(v.name).disruption_budget.max_migrations_per_host
    }
    total = sum(v.migrations_in_flight for v in views) // 2
    if total >= world.policy.default.disruption_budget.max_migrations_fleet or move.source in full:
        out.verdict(
            key,
            False,
            reasons.DISRUPTION_BUDGET,
            f"VirtualMachine {move.vm} must leave {move.source} ({move.why}); it waits for "
            f"the migration budget ({total} migrations in flight or planned)",
            phase=VMPhase.RUNNING.value,
            host=move.source,
        )
        return
    exclude = {h: "migration budget reached" for h in full}
    exclude[move.source] = move.why
    placement = schedule_vm(
        request,
        views,
        world.policy,
        world.desired.affinity,
        dec.hosts,
        _labels(world),
        exclude,
    )
    if placement.host is None:
        out.verdict(
            key,
            False,
            reasons.NO_HOST_FITS,
            f"VirtualMachine {move.vm} must leave {move.source} ({move.why}) but "
            f"{placement.message[0].lower()}{placement.message[1:]}; it keeps running "
            f"on {move.source}",
            stalled=True,
            phase=VMPhase.RUNNING.value,
            host=move.source,
            scheduling=list(placement.verdicts),
        )
        return
    _emit(
        world,
        out,
        dec,
        needs,
        move.vm,
        move.source,
        placement.host,
        reasons.MIGRATING,
        f"Moving VirtualMachine {move.vm} live from {move.source} to {placement.host}: {move.why}",
        planned,
    )


def _rebalance(
    world: World, out: PlanBuilder, dec: Decisions, needs: VolumeNeeds, planned: dict[str, int]
) -> None:
    """Let each policy's balancer move settled, running VMs (controller.scheduler)."""
    if all(
        world.policy.for_host(h).balancer.type is BalancerType.NONE for h in world.desired.hosts
    ):
        return
    candidates = [
        dec.requests[name]
        for name, target in dec.targets.items()
        if target.copy is not None
        and dec.requests[name].migratable
        and settled(world, world.desired.vms[name], target)
    ]
    result = plan_rebalance(
        _views(world, dec, planned),
        candidates,
        dec.hosts,
        world.policy,
        world.now,
        world.desired.affinity,
        _labels(world),
    )
    dec.empty_hosts = list(result.empty_hosts)
    for move in result.moves:
        _emit(
            world,
            out,
            dec,
            needs,
            move.vm,
            move.source,
            move.target,
            reasons.REBALANCING,
            move.message,
            planned,
        )


def _emit(
    world: World,
    out: PlanBuilder,
    dec: Decisions,
    needs: VolumeNeeds,
    name: str,
    source: str,
    target: str,
    reason: str,
    message: str,
    planned: dict[str, int],
) -> None:
    """Add one MigrateVM (payload from the VM's migration policy) and its verdict."""
    key = ("VirtualMachine", name)
    dec.move_verdicts.add(name)
    uri = world.observed.migration_uri(target)
    if uri is None:
        out.verdict(
            key,
            False,
            reasons.DEPENDENCY_NOT_READY,
            f"VirtualMachine {name} should move from {source} to {target}, but {target} "
            "reports no migration URI",
            phase=VMPhase.RUNNING.value,
            host=source,
        )
        return
    vm = world.desired.vms[name]
    local = world.local_volumes(vm.spec.disks)
    for volume in local:
        needs.extra_hosts.setdefault(volume, set()).add(target)
    mig = vm.spec.migration
    payload = MigrateRequest(
        destination_uri=uri,
        bandwidth_mibps=mig.bandwidth_mibps if mig else None,
        max_downtime_ms=mig.max_downtime_ms if mig else None,
        timeout_s=float(mig.timeout_s) if mig else 300.0,
        copy_storage=bool(local),
        auto_converge=mig.auto_converge if mig else False,
    ).model_dump(mode="json")
    attempt = _attempt(world.observed.copies.get(name, []), source)
    out.add(
        ActionType.MIGRATE_VM,
        key,
        source,
        reason,
        message
        + (" (copying its local disks)" if local else "")
        + (f" (attempt {attempt})" if attempt > 1 else ""),
        payload=payload,
        params={"destination": target},
    )
    planned[source] = planned.get(source, 0) + 1
    planned[target] = planned.get(target, 0) + 1
    dec.hosts[name] = target
    dec.live_moves.add(name)
    out.verdict(
        key,
        False,
        reasons.MIGRATING,
        message,
        phase=VMPhase.MIGRATING.value,
        host=source,
        migration={
            "source": source,
            "target": target,
            "started": world.now,
            "state": "starting",
            "attempt": attempt,
        },
    )


def watch_migrations(world: World, out: PlanBuilder, dec: Decisions) -> None:
    """Verdicts for migrations in flight; cancel those running past their timeout."""
    by_uri = {s.migration_uri: h for h, s in world.observed.states.items() if s.migration_uri}
    for name, copy in dec.migrating.items():
        job = copy.domain.migration
        if job is None:
            continue
        key = ("VirtualMachine", name)
        vm = world.desired.vms[name]
        timeout = vm.spec.migration.timeout_s if vm.spec.migration else 300
        target = by_uri.get(job.destination_uri, job.destination_uri)
        progress = None
        if job.data_total_bytes:
            progress = round(100.0 * (job.data_processed_bytes or 0) / job.data_total_bytes, 1)
        fields = {
            "source": copy.host,
            "target": target,
            "started": datetime.fromtimestamp(job.started_at, UTC),
            "state": job.state,
            "progress_percent": progress,
        }
        if job.elapsed_s > timeout:
            out.add(
                ActionType.CANCEL_MIGRATION,
                key,
                copy.host,
                reasons.MIGRATION_TIMEOUT,
                f"Live migration of {name} from {copy.host} to {target} has run "
                f"{job.elapsed_s:.0f}s, past its {timeout}s timeout; cancelling it",
            )
            out.verdict(
                key,
                False,
                reasons.MIGRATION_TIMEOUT,
                f"Cancelling the migration of {name} to {target} after {job.elapsed_s:.0f}s "
                f"(timeout {timeout}s); it is retried on a later pass",
                phase=VMPhase.MIGRATING.value,
                host=copy.host,
                migration=fields,
            )
            continue
        pct = f", {progress}% copied" if progress is not None else ""
        out.verdict(
            key,
            False,
            reasons.MIGRATING,
            f"Migrating {name} from {copy.host} to {target} ({job.elapsed_s:.0f}s{pct})",
            phase=VMPhase.MIGRATING.value,
            host=copy.host,
            migration=fields,
        )


def _running_job(copy: Copy) -> bool:
    job = copy.domain.migration
    return job is not None and job.state == "running"


def _per_host(world: World, dec: Decisions) -> dict[str, int]:
    by_uri = {s.migration_uri: h for h, s in world.observed.states.items() if s.migration_uri}
    counts: dict[str, int] = {}
    for copy in dec.migrating.values():
        if not _running_job(copy):
            continue
        counts[copy.host] = counts.get(copy.host, 0) + 1
        dest = by_uri.get(copy.domain.migration.destination_uri)  # type: ignore[union-attr]
        if dest:
            counts[dest] = counts.get(dest, 0) + 1
    return counts


def _attempt(copies: list[Copy], source: str) -> int:
    """Return the attempt number of a new migration: 2 when the last one failed, else 1."""
    for copy in copies:
        job = copy.domain.migration
        if copy.host == source and job is not None and job.state in ("failed", "cancelled"):
            return 2
    return 1
