"""Deletion of objects removed from their source, in the safe order.

A VM is stopped (gracefully) before it is undefined, then its implicit clone volumes
are deleted. A volume, pool or network is deleted only when no desired object still
uses it; while one does, it is kept and its verdict says who. Only answering hosts are
acted on; a host that does not answer keeps the object until it comes back.
"""

from __future__ import annotations

from controller.plan import reasons
from controller.plan.builder import PlanBuilder
from controller.plan.expand import expand_vm_volumes
from controller.plan.model import ActionType
from controller.plan.storage import VolumeNeeds
from controller.plan.world import World
from schemas.vm import VirtualMachine


def plan_deletions(world: World, out: PlanBuilder, needs: VolumeNeeds) -> None:
    """Add the actions removing deleted objects from hosts, and their verdicts."""
    deleted = world.desired.deleted
    implicit: dict[str, None] = {}
    for name, obj in sorted(deleted.get("VirtualMachine", {}).items()):
        _delete_vm(world, out, name)
        if isinstance(obj, VirtualMachine):
            for vol in expand_vm_volumes(obj, world.desired.templates):
                implicit.setdefault(vol, None)
    volumes = dict.fromkeys(sorted(deleted.get("Volume", {})))
    volumes.update(implicit)
    for name in volumes:
        _delete_volume(world, out, needs, name, explicit=name in deleted.get("Volume", {}))
    for name in sorted(deleted.get("StoragePool", {})):
        _delete_pool(world, out, name)
    for name in sorted(deleted.get("Network", {})):
        _delete_network(world, out, name)
    for kind in sorted(deleted):
        if kind in ("VirtualMachine", "Volume", "StoragePool", "Network", "Snapshot"):
            continue
        for name in sorted(deleted[kind]):
            out.verdict((kind, name), True, reasons.DELETED, f"{kind} {name} was removed")


def _done_or_pending(
    out: PlanBuilder, key: tuple[str, str], acted: list[str], unreachable: list[str]
) -> None:
    kind, name = key
    if acted:
        out.verdict(key, False, reasons.DELETING, f"Removing {kind} {name} from {', '.join(acted)}")
    elif unreachable:
        out.verdict(
            key,
            False,
            reasons.AGENT_UNREACHABLE,
            f"{kind} {name} is still on {', '.join(unreachable)}, which does not answer; "
            "it is removed when the host is back",
        )
    else:
        out.verdict(key, True, reasons.DELETED, f"{kind} {name} is gone from every host")


def _delete_vm(world: World, out: PlanBuilder, name: str) -> None:
    key = ("VirtualMachine", name)
    acted: list[str] = []
    unreachable: list[str] = []
    for copy in world.observed.copies.get(name, []):
        if not world.observed.reachable(copy.host):
            unreachable.append(copy.host)
            continue
        if copy.domain.state in ("running", "paused", "blocked", "pmsuspended", "shutdown"):
            out.add(
                ActionType.STOP_VM,
                key,
                copy.host,
                reasons.DELETING,
                f"VirtualMachine {name} was removed; stopping it on {copy.host} gracefully "
                "before undefining it",
                payload={"timeout_s": 60.0},
            )
        out.add(
            ActionType.UNDEFINE_VM,
            key,
            copy.host,
            reasons.DELETING,
            f"VirtualMachine {name} was removed; undefining it on {copy.host} "
            "(its volumes stay unless they were made for it)",
        )
        acted.append(copy.host)
    _done_or_pending(out, key, acted, unreachable)


def _delete_volume(
    world: World, out: PlanBuilder, needs: VolumeNeeds, name: str, explicit: bool
) -> None:
    key = ("Volume", name)
    if name in world.desired.volumes:
        if explicit:
            out.verdict(key, True, reasons.DELETED, f"Volume {name} is desired again")
        return
    users = [vm for vm in needs.users.get(name, []) if vm in world.desired.vms]
    clones = [c for c in needs.clones.get(name, []) if c in world.desired.volumes]
    if users or clones:
        who = ", ".join([f"VirtualMachine {u}" for u in users] + [f"Volume {c}" for c in clones])
        out.verdict(
            key,
            False,
            reasons.IN_USE,
            f"Volume {name} was removed but {who} still use it; it is kept until they stop "
            "using it",
        )
        return
    acted: list[str] = []
    unreachable: list[str] = []
    shared_done: set[str] = set()
    for host, pool, vol in sorted(world.observed.volumes):
        if vol != name:
            continue
        if not world.observed.reachable(host):
            unreachable.append(host)
            continue
        pool_obj = world.desired.pools.get(pool)
        if pool_obj is not None and pool_obj.spec.shared:
            if pool in shared_done:
                continue
            shared_done.add(pool)
        out.add(
            ActionType.DELETE_VOLUME,
            key,
            host,
            reasons.DELETING,
            f"Volume {name} was removed; deleting it from pool {pool} on {host} "
            "(its data is deleted)",
            params={"pool": pool},
        )
        acted.append(host)
    _done_or_pending(out, key, acted, unreachable)


def _delete_pool(world: World, out: PlanBuilder, name: str) -> None:
    key = ("StoragePool", name)
    users = sorted(v for v, spec in world.desired.volumes.items() if spec.pool == name)
    if users:
        out.verdict(
            key,
            False,
            reasons.IN_USE,
            f"StoragePool {name} was removed but Volume {', '.join(users[:5])} "
            f"{'is' if len(users) == 1 else 'are'} still in it; it is kept",
        )
        return
    acted, unreachable = [], []
    for host in world.host_names:
        if (host, name) not in world.observed.pools:
            continue
        if not world.observed.reachable(host):
            unreachable.append(host)
            continue
        out.add(
            ActionType.DELETE_POOL,
            key,
            host,
            reasons.DELETING,
            f"StoragePool {name} was removed; undefining it on {host} (files stay on disk)",
        )
        acted.append(host)
    _done_or_pending(out, key, acted, unreachable)


def _delete_network(world: World, out: PlanBuilder, name: str) -> None:
    key = ("Network", name)
    users = sorted(
        vm.name for vm in world.desired.vms.values() if any(n.network == name for n in vm.spec.nics)
    )
    if users:
        out.verdict(
            key,
            False,
            reasons.IN_USE,
            f"Network {name} was removed but VirtualMachine {', '.join(users[:5])} still "
            "use it; it is kept",
        )
        return
    acted, unreachable = [], []
    for host in world.host_names:
        if (host, name) not in world.observed.networks:
            continue
        if not world.observed.reachable(host):
            unreachable.append(host)
            continue
        out.add(
            ActionType.DELETE_NETWORK,
            key,
            host,
            reasons.DELETING,
            f"Network {name} was removed; stopping and undefining it on {host}",
        )
        acted.append(host)
    _done_or_pending(out, key, acted, unreachable)
