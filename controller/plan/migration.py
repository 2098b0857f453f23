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

from controller.plan import reasons
from controller.plan.builder import PlanBuilder
from controller.plan.model import ActionType
from controller.plan.observe import Copy
from controller.plan.placement import Decisions
from controller.plan.storage import VolumeNeeds
from controller.plan.vms import Target, settled
from controller.plan.world import World
from nodeagent.models import MigrateRequest
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
        placement = session.evaluate(request, exclude={move.source: move.why})
        key = ("VirtualMachine", move.vm)
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
    """Add MigrateVM for running VMs that must leave their host and are otherwise converged."""
    session = dec.session
    assert session is not None
    budget = world.policy.default.disruption_budget
    fleet_used = sum(1 for c in dec.migrating.values() if _running_job(c))
    per_host = _per_host(world, dec)
    for move in moves:
        if not move.running:
            continue
        key = ("VirtualMachine", move.vm)
        vm = world.desired.vms[move.vm]
        if not settled(world, vm, dec.targets[move.vm]):
            continue
        policy = vm.spec.migration
        if policy is not None and not policy.allowed:
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
            continue
        request = dec.requests[move.vm]
        placement = session.evaluate(request, exclude={move.source: move.why})
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
            continue
        target = placement.host
        src_budget = world.policy.for_host(move.source).disruption_budget
        dst_budget = world.policy.for_host(target).disruption_budget
        if (
            fleet_used >= budget.max_migrations_fleet
            or per_host.get(move.source, 0) >= src_budget.max_migrations_per_host
            or per_host.get(target, 0) >= dst_budget.max_migrations_per_host
        ):
            out.verdict(
                key,
                False,
                reasons.DISRUPTION_BUDGET,
                f"VirtualMachine {move.vm} must leave {move.source} ({move.why}); it waits "
                f"for the migration budget ({fleet_used} of {budget.max_migrations_fleet} in "
                f"the fleet, {per_host.get(move.source, 0)} on {move.source})",
                phase=VMPhase.RUNNING.value,
                host=move.source,
            )
            continue
        uri = world.observed.migration_uri(target)
        if uri is None:
            out.verdict(
                key,
                False,
                reasons.DEPENDENCY_NOT_READY,
                f"VirtualMachine {move.vm} must leave {move.source} ({move.why}); host {target} "
                "reports no migration URI",
                phase=VMPhase.RUNNING.value,
                host=move.source,
            )
            continue
        local = _local_volumes(world, vm.spec.disks)
        for volume in local:
            needs.extra_hosts.setdefault(volume, set()).add(target)
        mig = policy
        payload = MigrateRequest(
            destination_uri=uri,
            bandwidth_mibps=mig.bandwidth_mibps if mig else None,
            max_downtime_ms=mig.max_downtime_ms if mig else None,
            timeout_s=float(mig.timeout_s) if mig else 300.0,
            copy_storage=bool(local),
            auto_converge=mig.auto_converge if mig else False,
        ).model_dump(mode="json")
        session.commit(request, target)
        fleet_used += 1
        per_host[move.source] = per_host.get(move.source, 0) + 1
        per_host[target] = per_host.get(target, 0) + 1
        attempt = _attempt(world.observed.copies.get(move.vm, []), move.source)
        out.add(
            ActionType.MIGRATE_VM,
            key,
            move.source,
            reasons.MIGRATING,
            f"Moving VirtualMachine {move.vm} live from {move.source} to {target}: {move.why}"
            + (" (copying its local disks)" if local else "")
            + (f" (attempt {attempt})" if attempt > 1 else ""),
            payload=payload,
            params={"destination": target},
        )
        dec.hosts[move.vm] = target
        dec.live_moves.add(move.vm)
        out.verdict(
            key,
            False,
            reasons.MIGRATING,
            f"Moving VirtualMachine {move.vm} live from {move.source} to {target}: {move.why}",
            phase=VMPhase.MIGRATING.value,
            host=move.source,
            migration={
                "source": move.source,
                "target": target,
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
            "state": job.state,
            "progress_percent": progress,
            "elapsed_s": job.elapsed_s,
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


def _local_volumes(world: World, disks: list) -> list[str]:
    """Return the VM's volumes on host-local pools (they must be copied by a migration)."""
    out = []
    for disk in disks:
        spec = world.desired.volumes.get(disk.volume or "")
        if spec is None:
            continue
        pool = world.desired.pools.get(spec.pool)
        if pool is not None and not pool.spec.shared:
            out.append(disk.volume)
    return out


def _attempt(copies: list[Copy], source: str) -> int:
    """Return the attempt number of a new migration: 2 when the last one failed, else 1."""
    for copy in copies:
        job = copy.domain.migration
        if copy.host == source and job is not None and job.state in ("failed", "cancelled"):
            return 2
    return 1
