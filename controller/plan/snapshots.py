"""Snapshots: take the ones declared, delete the ones removed from the source (prune).

A Snapshot names a VM; it is taken on the host where the VM's domain is defined (its
running copy first) once the VM has settled (no other action for it in this plan).
Snapshots are internal qcow2 snapshots, so the VM needs a writable qcow2 disk; one
without memory (`memory: false`) is taken only while the VM is stopped, because QEMU
saves a running guest's memory with every internal snapshot. Snapshots that no
Snapshot object names (taken by hand) are left alone; a removed Snapshot object is a
tombstone whose snapshot is deleted from every answering host that has it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from agentapi import SnapshotState
from controller.plan import reasons
from controller.plan.builder import PlanBuilder
from controller.plan.model import ActionType
from controller.plan.observe import Copy
from controller.plan.world import World
from controller.scheduler.text import human_bytes
from schemas.snapshot import Snapshot


def plan_snapshots(world: World, out: PlanBuilder) -> None:
    """Add CreateSnapshot / DeleteSnapshot actions and every Snapshot's verdict."""
    busy = {a.target[1] for a in out.actions if a.target[0] == "VirtualMachine"}
    for name, snapshot in world.desired.snapshots.items():
        _plan_one(world, out, name, snapshot, busy)
    for name, tomb in sorted(world.desired.deleted.get("Snapshot", {}).items()):
        if name not in world.desired.snapshots:
            _delete_one(world, out, name, tomb if isinstance(tomb, Snapshot) else None)


def find_snapshot(copies: list[Copy], name: str) -> tuple[Copy, SnapshotState] | None:
    """Return the first copy of a VM (by host) holding snapshot `name`, with it, or None."""
    for copy in copies:
        for snap in copy.domain.snapshots:
            if snap.name == name:
                return copy, snap
    return None


def _home(world: World, copies: list[Copy]) -> Copy | None:
    """Return the copy a snapshot is taken on: the active one, else one defined on an
    answering host, else the first."""
    active = [c for c in copies if c.active]
    if active:
        return active[0]
    answering = [c for c in copies if world.actionable(c.host) and c.domain.persistent]
    return answering[0] if answering else (copies[0] if copies else None)


def _plan_one(
    world: World, out: PlanBuilder, name: str, snapshot: Snapshot, busy: set[str]
) -> None:
    key = ("Snapshot", name)
    vm = snapshot.spec.vm
    copies = world.observed.copies.get(vm, [])
    found = find_snapshot(copies, name)
    if found is not None:
        copy, state = found
        out.verdict(key, True, reasons.CONVERGED, _exists_message(name, vm, copy.host, state),
                    **snapshot_fields(copy.host, state))  # fmt: skip
        return
    if vm not in world.desired.vms:
        problem = world.desired.problems.get(("VirtualMachine", vm))
        why = (
            f"VirtualMachine {vm} cannot be expanded: {problem[1]}"
            if problem
            else f"VirtualMachine {vm} is not defined; define it or remove the Snapshot"
        )
        out.verdict(key, False, reasons.DEPENDENCY_MISSING, why, stalled=True)
        return
    home = _home(world, copies)
    if home is None:
        out.verdict(
            key,
            False,
            reasons.DEPENDENCY_NOT_READY,
            f"Snapshot {name} waits: VirtualMachine {vm} is not defined on any host yet",
        )
        return
    if not world.actionable(home.host):
        out.verdict(
            key,
            False,
            reasons.AGENT_UNREACHABLE,
            f"Snapshot {name} waits: VirtualMachine {vm} is on {home.host}, which does not answer",
        )
        return
    domain = home.domain
    spec = domain.live if home.active and domain.live is not None else domain.spec
    if spec is not None and not any(
        d.format == "qcow2" and not d.readonly and d.device == "disk" for d in spec.disks
    ):
        out.verdict(
            key,
            False,
            reasons.INVALID_SPEC,
            f"Snapshot {name} cannot be taken: VirtualMachine {vm} has no writable qcow2 disk "
            "to hold an internal snapshot (raw disks and CD-ROMs cannot)",
            stalled=True,
        )
        return
    if vm in busy or (domain.migration is not None and domain.migration.state == "running"):
        out.verdict(
            key,
            False,
            reasons.DEPENDENCY_NOT_READY,
            f"Snapshot {name} waits for VirtualMachine {vm} to settle on {home.host} "
            "(it is being changed, started, stopped or moved)",
        )
        return
    if not snapshot.spec.memory and home.active:
        out.verdict(
            key,
            False,
            reasons.SNAPSHOT_NEEDS_STOP,
            f"Snapshot {name} is without memory, which QEMU takes only of a stopped VM; "
            f"VirtualMachine {vm} runs on {home.host}: stop it (runStrategy Halted or Manual) "
            "or set spec.memory: true",
            stalled=True,
        )
        return
    payload = {
        "description": snapshot.spec.description,
        "memory": None if snapshot.spec.memory else False,
    }
    what = "with its memory" if home.active else "of its disks (the VM is stopped)"
    out.add(
        ActionType.CREATE_SNAPSHOT,
        key,
        home.host,
        reasons.CREATING,
        f"Taking Snapshot {name} of VirtualMachine {vm} on {home.host} {what}",
        payload=payload,
        params={"vm": vm, "snapshot": name},
    )
    out.verdict(
        key,
        False,
        reasons.CREATING,
        f"Taking Snapshot {name} of VirtualMachine {vm} on {home.host} {what}",
        host=home.host,
    )


def _delete_one(world: World, out: PlanBuilder, name: str, tomb: Snapshot | None) -> None:
    key = ("Snapshot", name)
    vms = [tomb.spec.vm] if tomb is not None else sorted(world.observed.copies)
    acted: list[str] = []
    unreachable: list[str] = []
    for vm in vms:
        for copy in world.observed.copies.get(vm, []):
            if not any(s.name == name for s in copy.domain.snapshots):
                continue
            if not world.actionable(copy.host):
                unreachable.append(copy.host)
                continue
            out.add(
                ActionType.DELETE_SNAPSHOT,
                key,
                copy.host,
                reasons.DELETING,
                f"Snapshot {name} was removed; deleting it from VirtualMachine {vm} on {copy.host}",
                params={"vm": vm, "snapshot": name},
            )
            acted.append(copy.host)
    if acted:
        out.verdict(key, False, reasons.DELETING, f"Deleting Snapshot {name} on {', '.join(acted)}")
    elif unreachable:
        out.verdict(
            key,
            False,
            reasons.AGENT_UNREACHABLE,
            f"Snapshot {name} is still on {', '.join(unreachable)}, which does not answer; "
            "it is deleted when the host is back",
        )
    else:
        out.verdict(key, True, reasons.DELETED, f"Snapshot {name} is gone from every host")


def snapshot_fields(host: str, state: SnapshotState) -> dict[str, object]:
    """Return the Snapshot status fields of an observed snapshot: created, size, host."""
    return {
        "created": datetime.fromtimestamp(state.created_at, UTC),
        "size": state.size_bytes,
        "host": host,
    }


def _exists_message(name: str, vm: str, host: str, state: SnapshotState) -> str:
    taken = datetime.fromtimestamp(state.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if state.memory:
        size = f"memory state {human_bytes(state.size_bytes)}" if state.size_bytes else "memory"
        what = f"with {size}"
    else:
        what = "of its disks only"
    return f"Snapshot {name} of VirtualMachine {vm} exists on {host}, taken {taken} {what}"
