"""Storage: pools on every healthy host their selector picks; volumes where they are used.

A shared pool's volume is created once (on the first healthy host by name) and seen
by every host; a local pool's volume is created on the host of the VM that uses it
(and on each host where a thin clone of it is needed). A thin clone waits until its
base volume is observed, because its backing path is the base's observed path.
Volumes only grow: a smaller spec is refused and reported, never applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from agentapi import PoolSpec, VolumeState
from agentapi import VolumeSpec as AgentVolumeSpec
from controller.plan import reasons
from controller.plan.builder import PlanBuilder
from controller.plan.diff import make_diff
from controller.plan.memo import IdentityMemo
from controller.plan.model import ActionType
from controller.plan.world import World
from schemas.meta import format_bytes
from schemas.storagepool import PoolType, StoragePool
from schemas.volume import VolumeSpec

_POOL_SPECS: IdentityMemo[PoolSpec | str] = IdentityMemo()


def pool_spec(pool: StoragePool) -> PoolSpec | str:
    """Return the agent PoolSpec of a desired pool, or why the agent cannot make it."""
    return _POOL_SPECS.get((pool,), None, lambda: _build_pool_spec(pool))


def _build_pool_spec(pool: StoragePool) -> PoolSpec | str:
    spec = pool.spec
    src = spec.source
    if spec.type is PoolType.ISCSI:
        return "iSCSI pools are not supported by the node agent (dir, netfs and logical are)"
    if src is not None and len(src.devices) > 1:
        return (
            f"the node agent builds a logical pool on one device; "
            f"spec.source.devices lists {len(src.devices)}"
        )
    return PoolSpec(
        name=pool.name,
        type=spec.type.value,
        target_path=spec.path,
        source_host=src.host if src else None,
        source_path=src.path if src else None,
        source_device=src.devices[0] if src and src.devices else None,
        source_name=src.volume_group if src else None,
    )


def pool_drift(desired: PoolSpec, observed: PoolSpec | None) -> list[str]:
    """Return the fields where the observed pool differs (uuid and autostart aside)."""
    if observed is None:
        return ["*"]
    want, have = desired.model_dump(), observed.model_dump()
    return [
        key
        for key, value in want.items()
        if key != "autostart"
        and not (key in ("uuid", "source_name") and value is None)
        and value != have.get(key)
    ]


def plan_pools(world: World, out: PlanBuilder) -> None:
    """Add DefinePool where a pool is missing, different or inactive on a healthy host."""
    for name, pool in world.desired.pools.items():
        key = ("StoragePool", name)
        spec = pool_spec(pool)
        if isinstance(spec, str):
            out.verdict(key, False, reasons.UNSUPPORTED, spec, stalled=True, hosts=[])
            continue
        payload = spec.model_dump(mode="json")
        hosts = world.matching_hosts(pool.spec.host_selector)
        active: list[str] = []
        pending: list[str] = []
        unreachable: list[str] = []
        for host in hosts:
            if not world.actionable(host):
                unreachable.append(host)
                continue
            state = world.observed.pools.get((host, name))
            drift = pool_drift(spec, state.spec if state else None)
            if drift or not (state and state.active):
                observed_dump = state.spec.model_dump(mode="json") if state and state.spec else None
                what = (
                    "missing"
                    if state is None
                    else f"differs in {', '.join(drift)}"
                    if drift
                    else "inactive"
                )
                out.add(
                    ActionType.DEFINE_POOL,
                    key,
                    host,
                    reasons.CREATING if state is None else reasons.UPDATING,
                    f"StoragePool {name} is {what} on {host}; defining and starting it",
                    payload=payload,
                    diff=make_diff(_without_open(observed_dump, payload), payload),
                )
                pending.append(host)
            else:
                active.append(host)
            out.pools_ready.add((host, name))
        _spread_verdict(out, key, "StoragePool", hosts, active, pending, unreachable)


def _without_open(observed: dict | None, desired: dict) -> dict | None:
    """Return the observed dump with values the desired spec leaves to libvirt left open."""
    if observed is None:
        return None
    return {
        k: None if k in ("uuid", "source_name") and desired.get(k) is None else v
        for k, v in observed.items()
    }


def _spread_verdict(
    out: PlanBuilder,
    key: tuple[str, str],
    kind: str,
    hosts: list[str],
    active: list[str],
    pending: list[str],
    unreachable: list[str],
) -> None:
    name = key[1]
    note = f"; not answering: {', '.join(unreachable)}" if unreachable else ""
    if not hosts:
        out.verdict(
            key,
            False,
            reasons.NO_HOSTS,
            f"No desired host matches the host selector of {kind} {name}",
            stalled=True,
            hosts=[],
        )
    elif pending:
        out.verdict(
            key,
            False,
            reasons.CREATING,
            f"Defining {kind} {name} on {', '.join(pending)}{note}",
            hosts=active,
        )
    elif not active:
        out.verdict(
            key,
            False,
            reasons.AGENT_UNREACHABLE,
            f"No host of {kind} {name} answers ({', '.join(unreachable)})",
            hosts=[],
        )
    else:
        out.verdict(
            key,
            True,
            reasons.CONVERGED,
            f"{kind} {name} is active on {len(active)} host(s){note}",
            hosts=active,
        )


# --- volumes -------------------------------------------------------------------------------


@dataclass
class VolumeNeeds:
    """Where each volume is needed: VM hosts, migration targets, hosts of its clones."""

    users: dict[str, list[str]] = field(default_factory=dict)
    """Volume -> the desired VMs whose disks use it."""
    clones: dict[str, list[str]] = field(default_factory=dict)
    """Base volume -> the volumes that are thin clones of it."""
    extra_hosts: dict[str, set[str]] = field(default_factory=dict)
    """Volume -> further hosts (a migration target that copies storage)."""


def volume_needs(world: World) -> VolumeNeeds:
    """Return which VMs use which volume and which volumes clone which."""
    needs = VolumeNeeds()
    for vm in world.desired.vms.values():
        for disk in vm.spec.disks:
            if disk.volume:
                needs.users.setdefault(disk.volume, []).append(vm.name)
    for name, spec in world.desired.volumes.items():
        if spec.source and spec.source.volume:
            needs.clones.setdefault(spec.source.volume, []).append(name)
    return needs


def plan_volumes(
    world: World, out: PlanBuilder, needs: VolumeNeeds, vm_hosts: Mapping[str, str]
) -> None:
    """Add CreateVolume/ResizeVolume for every desired volume where it is needed.

    `vm_hosts` maps each placed VM to its host (observed or chosen in this pass).
    Clones are planned after their bases so that a base planned now is known.
    """
    for name in _bases_first(world.desired.volumes):
        spec = world.desired.volumes[name]
        key = ("Volume", name)
        pool = world.desired.pools.get(spec.pool)
        if pool is None:
            out.verdict(
                key,
                False,
                reasons.DEPENDENCY_MISSING,
                f"StoragePool {spec.pool} is not defined",
                stalled=True,
            )
            out.volumes_waiting[name] = f"its StoragePool {spec.pool} is not defined"
            continue
        if isinstance(pool_spec(pool), str):
            out.verdict(
                key,
                False,
                reasons.DEPENDENCY_NOT_READY,
                f"StoragePool {spec.pool} cannot be made: {pool_spec(pool)}",
                stalled=True,
            )
            out.volumes_waiting[name] = f"its StoragePool {spec.pool} cannot be made"
            continue
        if spec.source and spec.source.path:
            _plan_import(world, out, name, spec)
        elif pool.spec.shared:
            _plan_shared(world, out, name, spec)
        else:
            _plan_local(world, out, name, spec, _local_hosts(world, needs, vm_hosts, name))


def _bases_first(volumes: Mapping[str, VolumeSpec]) -> list[str]:
    """Return volume names with every clone after its base (names in order otherwise)."""
    done: dict[str, None] = {}

    def visit(name: str, depth: int) -> None:
        if name in done or depth > len(volumes):
            return
        spec = volumes[name]
        base = spec.source.volume if spec.source else None
        if base in volumes:
            visit(base, depth + 1)
        done[name] = None

    for name in volumes:
        visit(name, 0)
    return list(done)


def _local_hosts(
    world: World, needs: VolumeNeeds, vm_hosts: Mapping[str, str], name: str
) -> list[str]:
    """Return the hosts a local-pool volume must be on (sorted), clones' hosts included."""
    hosts: set[str] = set()
    stack, seen = [name], set()
    while stack:
        vol = stack.pop()
        if vol in seen:
            continue
        seen.add(vol)
        hosts.update(vm_hosts[vm] for vm in needs.users.get(vol, ()) if vm in vm_hosts)
        hosts.update(needs.extra_hosts.get(vol, ()))
        stack.extend(needs.clones.get(vol, ()))
    return sorted(hosts)


def _plan_import(world: World, out: PlanBuilder, name: str, spec: VolumeSpec) -> None:
    key = ("Volume", name)
    seen = world.observed.volume_hosts.get((spec.pool, name), [])
    if seen:
        _mark_ready(world, out, spec, name, seen)
        _check_existing(world, out, name, spec, seen, seen)
        return
    out.verdict(
        key,
        False,
        reasons.UNSUPPORTED,
        f"Volume {name} copies {spec.source.path if spec.source else ''}: the node agent "
        "cannot import a host path; upload the image into the volume instead",
        stalled=True,
    )
    out.volumes_waiting[name] = "it must be imported from a path, which the agent cannot do"


def _plan_shared(world: World, out: PlanBuilder, name: str, spec: VolumeSpec) -> None:
    key = ("Volume", name)
    seen = world.observed.volume_hosts.get((spec.pool, name), [])
    if seen:
        _mark_ready(world, out, spec, name, seen)
        _check_existing(world, out, name, spec, seen[:1], seen)
        return
    candidates = _first_pool_host(world, out, spec.pool)
    if not candidates:
        why = f"StoragePool {spec.pool} is active on no healthy host"
        out.verdict(key, False, reasons.DEPENDENCY_NOT_READY, f"Volume {name} waits: {why}")
        out.volumes_waiting[name] = why
        return
    host = candidates[0]
    if _create(world, out, name, spec, host):
        _mark_ready(world, out, spec, name, [host])
        out.verdict(
            key,
            False,
            reasons.CREATING,
            f"Creating Volume {name} ({format_bytes(spec.size)}) in shared pool "
            f"{spec.pool} on {host}",
            hosts=[host],
        )


def _plan_local(
    world: World, out: PlanBuilder, name: str, spec: VolumeSpec, hosts: list[str]
) -> None:
    key = ("Volume", name)
    seen = world.observed.volume_hosts.get((spec.pool, name), [])
    if not hosts:
        if seen:
            _mark_ready(world, out, spec, name, seen)
            _check_existing(world, out, name, spec, seen, seen)
            return
        hosts = _first_pool_host(world, out, spec.pool)
        if not hosts:
            why = f"StoragePool {spec.pool} is active on no healthy host"
            out.verdict(key, False, reasons.DEPENDENCY_NOT_READY, f"Volume {name} waits: {why}")
            out.volumes_waiting[name] = why
            return
    present = [h for h in hosts if h in seen]
    creating: list[str] = []
    waiting: list[str] = []
    unreachable: list[str] = []
    for host in hosts:
        if host in seen:
            continue
        if not world.actionable(host):
            unreachable.append(host)
        elif (host, spec.pool) not in out.pools_ready:
            waiting.append(f"StoragePool {spec.pool} is not active on {host}")
        elif _create(world, out, name, spec, host):
            creating.append(host)
        else:
            waiting.append(out.volumes_waiting.get(name, "its base volume is not ready"))
    _mark_ready(world, out, spec, name, present + creating)
    if waiting:
        out.volumes_waiting[name] = "; ".join(waiting)
    if present and not creating and not waiting:
        _check_existing(world, out, name, spec, present, seen, unreachable)
    elif creating:
        out.verdict(
            key,
            False,
            reasons.CREATING,
            f"Creating Volume {name} ({format_bytes(spec.size)}) in pool {spec.pool} "
            f"on {', '.join(creating)}",
            hosts=present + creating,
        )
    elif waiting:
        out.verdict(
            key, False, reasons.DEPENDENCY_NOT_READY, f"Volume {name} waits: {'; '.join(waiting)}"
        )
    else:
        out.verdict(
            key,
            False,
            reasons.AGENT_UNREACHABLE,
            f"Volume {name} belongs on {', '.join(unreachable)}, which does not answer",
        )


def _first_pool_host(world: World, out: PlanBuilder, pool: str) -> list[str]:
    """Return [the first healthy host, by name, where the pool is ready] or []; cached."""
    cached = out.first_pool_host.get(pool)
    if cached is None:
        selector = world.desired.pools[pool].spec.host_selector
        cached = next(
            (
                [h]
                for h in world.matching_hosts(selector)
                if world.actionable(h) and (h, pool) in out.pools_ready
            ),
            [],
        )
        out.first_pool_host[pool] = cached
    return cached


def _mark_ready(
    world: World, out: PlanBuilder, spec: VolumeSpec, name: str, hosts: Iterable[str]
) -> None:
    """Record where a VM can use the volume (every host with the pool, for a shared pool)."""
    if world.desired.pools[spec.pool].spec.shared:
        out.shared_volumes_ready[name] = spec.pool
    else:
        out.volumes_ready.update((host, name) for host in hosts)


def _base_path(world: World, spec: VolumeSpec, host: str) -> VolumeState | None:
    """Return the observed base volume of a clone as seen from `host`, or None."""
    base = spec.source.volume if spec.source else None
    base_spec = world.desired.volumes.get(base or "")
    if base is None or base_spec is None:
        return None
    pool = world.desired.pools.get(base_spec.pool)
    if pool is not None and pool.spec.shared:
        for h in world.observed.volume_hosts.get((base_spec.pool, base), []):
            return world.observed.volumes[(h, base_spec.pool, base)]
        return None
    return world.observed.volumes.get((host, base_spec.pool, base))


def _create(world: World, out: PlanBuilder, name: str, spec: VolumeSpec, host: str) -> bool:
    """Add a CreateVolume on `host`; False (and a waiting note) when a base is missing."""
    backing: VolumeState | None = None
    if spec.source and spec.source.volume:
        backing = _base_path(world, spec, host)
        if backing is None:
            out.volumes_waiting[name] = f"waiting for base volume {spec.source.volume}"
            return False
    agent = AgentVolumeSpec(
        name=name,
        capacity_bytes=spec.size,
        format=spec.format.value,
        backing_path=backing.path if backing else None,
        backing_format=_format(backing.format) if backing else None,
    )
    payload = agent.model_dump(mode="json")
    what = f" as a thin clone of {backing.path}" if backing else ""
    out.add(
        ActionType.CREATE_VOLUME,
        ("Volume", name),
        host,
        reasons.CREATING,
        f"Creating Volume {name} ({format_bytes(spec.size)}) in pool {spec.pool} on {host}{what}",
        payload=payload,
        diff=make_diff(None, payload),
        params={"pool": spec.pool},
    )
    return True


def _format(value: str | None) -> str:
    return value if value in ("qcow2", "raw") else "qcow2"


def _check_existing(
    world: World,
    out: PlanBuilder,
    name: str,
    spec: VolumeSpec,
    hosts: list[str],
    seen: list[str],
    unreachable: list[str] | None = None,
) -> None:
    """Verdict (and ResizeVolume) for a volume observed on `hosts`."""
    key = ("Volume", name)
    resizing: list[str] = []
    for host in hosts:
        state = world.observed.volumes[(host, spec.pool, name)]
        if state.format is not None and state.format != spec.format.value:
            out.verdict(
                key,
                False,
                reasons.FORMAT_MISMATCH,
                f"Volume {name} on {host} is {state.format}, the spec says "
                f"{spec.format.value}; volumes are never converted: restore the format "
                "in the spec or delete the volume",
                stalled=True,
                hosts=seen,
                path=state.path,
            )
            return
        if spec.size < state.capacity_bytes:
            out.verdict(
                key,
                False,
                reasons.SHRINK_REFUSED,
                f"Volume {name} on {host} is {format_bytes(state.capacity_bytes)}; the spec "
                f"asks for {format_bytes(spec.size)} and volumes never shrink: set size to "
                f"at least {format_bytes(state.capacity_bytes)}",
                stalled=True,
                hosts=seen,
                path=state.path,
            )
            return
        if spec.size > state.capacity_bytes and world.actionable(host):
            agent = AgentVolumeSpec(
                name=name,
                capacity_bytes=spec.size,
                format=spec.format.value,
                backing_path=state.backing_path,
                backing_format=_format(state.backing_format) if state.backing_path else None,
            )
            out.add(
                ActionType.RESIZE_VOLUME,
                key,
                host,
                reasons.RESIZING,
                f"Growing Volume {name} on {host} from {format_bytes(state.capacity_bytes)} "
                f"to {format_bytes(spec.size)}",
                payload=agent.model_dump(mode="json"),
                diff=({"op": "replace", "path": "/capacity_bytes", "value": spec.size},),
                params={"pool": spec.pool},
            )
            resizing.append(host)
    state = world.observed.volumes[(hosts[0], spec.pool, name)]
    if resizing:
        out.verdict(
            key,
            False,
            reasons.RESIZING,
            f"Growing Volume {name} to {format_bytes(spec.size)} on {', '.join(resizing)}",
            hosts=seen,
            path=state.path,
        )
    elif unreachable:
        out.verdict(
            key,
            False,
            reasons.AGENT_UNREACHABLE,
            f"Volume {name} is also needed on {', '.join(unreachable)}, which does not answer",
            hosts=seen,
            path=state.path,
        )
    else:
        out.verdict(
            key,
            True,
            reasons.CONVERGED,
            f"Volume {name} exists ({format_bytes(state.capacity_bytes)}) on {', '.join(seen)}",
            hosts=seen,
            path=state.path,
            capacity=state.capacity_bytes,
        )
