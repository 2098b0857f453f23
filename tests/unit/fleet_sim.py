"""An in-memory fleet that carries out plan actions the way node agents would.

A working fake at the agent edge for convergence tests: each action changes the host
states as the agent's ensure verb would on libvirt (define sets the persistent spec with
the values libvirt fills in, start makes the live config equal to it, a running VM takes
memory and vCPU changes live only within its maxima, undefine refuses a running domain,
start refuses missing networks and volumes, migration moves the domain, a shared pool
shows the same volumes on every host).

Each agent keeps its own etcd lease alive, whether the controller reaches it or not; the
controller's picture of the lease keys is `HostObservation.lease`. A killed host stops
answering and stops its keepalives: etcd lets its key go LEASE_TTL later. A cut host
only stops answering the controller and keeps its key. A revived host comes back with its
HA domains self-fenced if its lease lapsed meanwhile, as the agent's watchdog does. A
fleet built with `etcd=False` is the single-host default: the controller has no arbiter
and the agents report arbiter "none".
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from agentapi import (
    DomainSpec,
    DomainState,
    HostState,
    LeaseState,
    MigrationJob,
    NetworkSpec,
    NetworkState,
    PoolSpec,
    PoolState,
    VolumeState,
)
from controller.plan.model import (
    Action,
    ActionType,
    Desired,
    HostObservation,
    LeaseObservation,
    Observed,
    Plan,
    PolicyContext,
)
from schemas.kinds import KINDS, AnyResource

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
MACHINE = "pc-i440fx-8.0"
"""What libvirt fills in for a domain that leaves the machine type open."""
LEASE_TTL = timedelta(seconds=10)
"""The etcd lease TTL of every simulated host: its key goes this long after its last keepalive."""
AGENT_FENCE_MARGIN = timedelta(seconds=2)
"""An agent destroys its HA domains this long before etcd lets its lease expire."""


class SimError(RuntimeError):
    """An action the fake agent refuses, as the real one would (conflict, not found)."""


def host_state(
    name: str, cpus: int = 8, memory_mib: int = 16384, arbiter: str = "etcd"
) -> HostState:
    """Return an empty HostState of a host with `cpus` and `memory_mib`, whose agent holds its
    etcd lease (arbiter "none": an agent without etcd)."""
    return HostState(
        hostname=name,
        agent_version="sim",
        libvirt_uri="qemu:///system",
        libvirt_version="9.0.0",
        migration_uri=f"qemu+tcp://{name}/system",
        arch="x86_64",
        cpus=cpus,
        memory_mib=memory_mib,
        free_memory_mib=memory_mib,
        domains=[],
        networks=[],
        pools=[],
        hooks={},
        lease=LeaseState(
            held=arbiter == "etcd",
            granted=arbiter == "etcd",
            arbiter=arbiter,
            ttl_s=LEASE_TTL.total_seconds(),
            expires_in_s=8 if arbiter == "etcd" else None,
        ),
        events_seq=0,
    )


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "sim:" + ":".join(parts)))


@dataclass
class SimHost:
    """One fake host: its state, whether its agent answers, its lease, fence bookkeeping."""

    state: HostState
    reachable: bool = True
    last_known: HostState | None = None
    """What the controller last read, kept while the host does not answer."""
    last_seen: datetime | None = None
    lease_gone_at: datetime | None = None
    """When etcd lets the host's key go (its agent stopped its keepalives); None: kept alive."""
    power_fenced_at: datetime | None = None


@dataclass
class FleetSim:
    """Hosts by name, shared-pool volumes, a clock, and a log of what was applied."""

    hosts: dict[str, SimHost]
    shared_pools: set[str] = field(default_factory=set)
    now: datetime = T0
    step: timedelta = timedelta(seconds=5)
    applied: list[Action] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    shared_volumes: dict[str, dict[str, VolumeState]] = field(default_factory=dict)
    etcd: bool = True
    """Whether the controller has an arbiter (etcd); False: `HostObservation.lease` is None."""
    etcd_synced: bool = True
    """Whether the controller's watch of etcd is in sync (False: every lease is unknown)."""

    @classmethod
    def of(
        cls, *names: str, cpus: int = 8, memory_mib: int = 16384, etcd: bool = True, **kw: object
    ) -> FleetSim:
        """Return a fleet of empty hosts with these names (`etcd` False: no arbiter at all)."""
        arbiter = "etcd" if etcd else "none"
        hosts = {n: SimHost(host_state(n, cpus, memory_mib, arbiter)) for n in names}
        sim = cls(hosts, etcd=etcd, **kw)
        for host in sim.hosts.values():
            host.last_seen = sim.now
        return sim

    # --- the observed picture -------------------------------------------------------------

    def observed(self) -> Observed:
        """Return what the controller would observe now."""
        out = {}
        for name, host in self.hosts.items():
            self._sync_shared(host.state)
            seen = host.state if host.reachable else host.last_known or host.state
            out[name] = HostObservation(
                name=name,
                reachable=host.reachable,
                state=seen.model_copy(deep=True),
                last_seen=host.last_seen,
                lease=self.lease_of(host),
                power_fenced_at=host.power_fenced_at,
            )
        return Observed(hosts=out, now=self.now)

    def lease_of(self, host: SimHost) -> LeaseObservation | None:
        """Return the host's etcd lease as the controller's watch sees it now."""
        if not self.etcd:
            return None
        if not self.etcd_synced:
            return LeaseObservation(alive=None)
        if host.lease_gone_at is None or self.now < host.lease_gone_at:
            return LeaseObservation(alive=True)
        return LeaseObservation(alive=False, gone_since=host.lease_gone_at)

    def tick(self) -> None:
        """Advance the clock one step; reachable hosts are seen."""
        self.now += self.step
        for host in self.hosts.values():
            if host.reachable:
                host.last_seen = self.now

    def kill(self, name: str) -> None:
        """Make a host stop answering and stop keeping its lease alive: etcd lets its key go
        LEASE_TTL later (its guests keep running until its agent self-fences)."""
        host = self.hosts[name]
        self.cut(name)
        if self.etcd and host.lease_gone_at is None:
            host.lease_gone_at = self.now + LEASE_TTL

    def cut(self, name: str) -> None:
        """Make a host stop answering the controller only: its agent keeps its lease alive."""
        host = self.hosts[name]
        if host.reachable:
            host.last_known = host.state.model_copy(deep=True)
        host.reachable = False

    def revive(self, name: str) -> None:
        """Bring a host back with a lease again; if its lease lapsed meanwhile, its agent
        destroyed its HA guests (before etcd let the key go)."""
        host = self.hosts[name]
        host.reachable = True
        host.last_seen = self.now
        lapsed = host.lease_gone_at is not None and (
            self.now >= host.lease_gone_at - AGENT_FENCE_MARGIN
        )
        host.lease_gone_at = None
        if not lapsed:
            return
        for i, dom in enumerate(host.state.domains):
            if dom.ha and dom.state == "running":
                host.state.domains[i] = dom.model_copy(
                    update={"state": "shutoff", "reason": "destroyed", "live": None}
                )

    # --- applying a plan ------------------------------------------------------------------

    def apply(self, plan: Plan) -> None:
        """Carry out every action in plan order; refused actions are recorded in `errors`."""
        for action in plan.actions:
            try:
                self.apply_action(action)
                self.applied.append(action)
            except SimError as exc:
                self.errors.append(f"{action.type} {action.ref} on {action.host}: {exc}")

    def apply_action(self, action: Action) -> None:
        """Carry out one action like the agent verb it maps to; SimError when refused."""
        if action.type is ActionType.FENCE_HOST:
            self._fence(action.target[1])
            return
        if action.host not in self.hosts:
            raise SimError(f"unknown host {action.host}")
        host = self.hosts[action.host]
        if not host.reachable:
            raise SimError("agent unreachable")
        handler = getattr(self, "_" + action.type.name.lower())
        handler(host.state, action)

    # networks

    def _define_network(self, state: HostState, action: Action) -> None:
        spec = NetworkSpec.model_validate(action.payload)
        name = action.target[1]
        current = self._network(state, name)
        uid = current.uuid if current else _uuid(state.hostname, "net", name)
        stored = spec.model_copy(update={"uuid": uid})
        if current is None:
            state.networks.append(
                NetworkState(
                    name=name,
                    uuid=uid,
                    active=False,
                    persistent=True,
                    autostart=spec.autostart,
                    spec=stored,
                )
            )
        else:
            self._replace(state.networks, current.model_copy(update={"spec": stored}))

    def _start_network(self, state: HostState, action: Action) -> None:
        current = self._network(state, action.target[1])
        if current is None:
            raise SimError("network not defined")
        self._replace(state.networks, current.model_copy(update={"active": True}))

    def _delete_network(self, state: HostState, action: Action) -> None:
        name = action.target[1]
        users = [
            d.name
            for d in state.domains
            if d.state == "running" and d.live and any(n.network == name for n in d.live.nics)
        ]
        if users:
            raise SimError(f"network {name} is used by running domains {users}")
        state.networks = [n for n in state.networks if n.name != name]

    # pools and volumes

    def _define_pool(self, state: HostState, action: Action) -> None:
        spec = PoolSpec.model_validate(action.payload)
        name = action.target[1]
        current = self._pool(state, name)
        uid = current.uuid if current else _uuid(state.hostname, "pool", name)
        pool = PoolState(
            name=name,
            uuid=uid,
            active=True,
            persistent=True,
            autostart=spec.autostart,
            capacity_bytes=2**40,
            allocation_bytes=0,
            available_bytes=2**40,
            spec=spec.model_copy(update={"uuid": uid}),
            volumes=current.volumes if current else [],
        )
        if current is None:
            state.pools.append(pool)
        else:
            self._replace(state.pools, pool)
        self._sync_shared(state)

    def _delete_pool(self, state: HostState, action: Action) -> None:
        state.pools = [p for p in state.pools if p.name != action.target[1]]

    def _create_volume(self, state: HostState, action: Action) -> None:
        pool = self._active_pool(state, action.params["pool"])
        name = action.target[1]
        existing = next((v for v in pool.volumes if v.name == name), None)
        payload = action.payload
        if existing is not None:
            if existing.capacity_bytes > payload["capacity_bytes"]:
                raise SimError("shrinking is invalid_spec")
            return
        if payload.get("backing_path") and not self._path_exists(payload["backing_path"]):
            raise SimError(f"backing file {payload['backing_path']} does not exist")
        volume = VolumeState(
            name=name,
            path=f"{pool.spec.target_path}/{name}" if pool.spec else f"/pool/{name}",
            capacity_bytes=payload["capacity_bytes"],
            allocation_bytes=0,
            format=payload.get("format"),
            backing_path=payload.get("backing_path"),
            backing_format=payload.get("backing_format"),
        )
        pool.volumes.append(volume)
        if pool.name in self.shared_pools:
            self.shared_volumes.setdefault(pool.name, {})[name] = volume

    def _resize_volume(self, state: HostState, action: Action) -> None:
        pool = self._active_pool(state, action.params["pool"])
        for i, vol in enumerate(pool.volumes):
            if vol.name == action.target[1]:
                size = action.payload["capacity_bytes"]
                if size < vol.capacity_bytes:
                    raise SimError("shrinking is invalid_spec")
                pool.volumes[i] = vol.model_copy(update={"capacity_bytes": size})
                if pool.name in self.shared_pools:
                    self.shared_volumes[pool.name][vol.name] = pool.volumes[i]
                return
        raise SimError("volume not found")

    def _delete_volume(self, state: HostState, action: Action) -> None:
        pool = self._pool(state, action.params["pool"])
        if pool is None:
            return
        name = action.target[1]
        for host in self.hosts.values():
            for dom in host.state.domains:
                if (
                    dom.state == "running"
                    and dom.live
                    and any(d.volume == name and d.pool == pool.name for d in dom.live.disks)
                ):
                    raise SimError(f"volume {name} is in use by running {dom.name}")
        pool.volumes = [v for v in pool.volumes if v.name != name]
        if pool.name in self.shared_pools:
            self.shared_volumes.get(pool.name, {}).pop(name, None)

    # domains

    def _define_vm(self, state: HostState, action: Action) -> None:
        spec = DomainSpec.model_validate(action.payload)
        if spec.machine is None:
            spec = spec.model_copy(update={"machine": MACHINE})
        current = self._domain(state, spec.name)
        if current is None:
            state.domains.append(
                DomainState(
                    name=spec.name,
                    uuid=spec.uuid,
                    state="shutoff",
                    reason="unknown",
                    persistent=True,
                    autostart=False,
                    ha=spec.ha,
                    spec=spec,
                    metadata=dict(spec.labels),
                )
            )
            return
        live = current.live
        if current.state == "running" and live is not None:
            update = {}
            if spec.memory_mib <= (live.max_memory_mib or live.memory_mib):
                update["memory_mib"] = spec.memory_mib
            if spec.vcpus <= (live.max_vcpus or live.vcpus):
                update["vcpus"] = spec.vcpus
            live = live.model_copy(update=update)
        self._replace(
            state.domains,
            current.model_copy(update={"spec": spec, "live": live, "ha": spec.ha}),
        )

    def _start_vm(self, state: HostState, action: Action) -> None:
        dom = self._domain(state, action.target[1])
        if dom is None or dom.spec is None:
            raise SimError("domain not defined")
        if dom.state == "running":
            return
        for nic in dom.spec.nics:
            net = self._network(state, nic.network or "")
            if net is None or not net.active:
                raise SimError(f"network {nic.network} is not active")
        for disk in dom.spec.disks:
            if disk.volume and not self._volume(state, disk.pool or "", disk.volume):
                raise SimError(f"volume {disk.pool}/{disk.volume} not found")
        self._replace(
            state.domains,
            dom.model_copy(update={"state": "running", "reason": "booted", "live": dom.spec}),
        )

    def _stop_vm(self, state: HostState, action: Action) -> None:
        self._set_off(state, action.target[1], "shutdown")

    def _destroy_vm(self, state: HostState, action: Action) -> None:
        self._set_off(state, action.target[1], "destroyed")

    def _undefine_vm(self, state: HostState, action: Action) -> None:
        dom = self._domain(state, action.target[1])
        if dom is None:
            return
        if dom.state in ("running", "paused"):
            raise SimError("conflict: domain is running; stop it first")
        state.domains = [d for d in state.domains if d.name != dom.name]

    def _migrate_vm(self, state: HostState, action: Action) -> None:
        dom = self._domain(state, action.target[1])
        dest_name = action.params["destination"]
        dest = self.hosts[dest_name]
        if dom is None or dom.state != "running":
            raise SimError("only a running domain migrates live")
        if action.payload["destination_uri"] != dest.state.migration_uri:
            raise SimError("destination uri does not match the destination host")
        for nic in dom.spec.nics if dom.spec else []:
            net = self._network(dest.state, nic.network or "")
            if net is None or not net.active:
                raise SimError(f"network {nic.network} is not active on {dest_name}")
        for disk in dom.spec.disks if dom.spec else []:
            if disk.volume and not self._volume(dest.state, disk.pool or "", disk.volume):
                raise SimError(f"volume {disk.volume} is not on {dest_name}")
        state.domains = [d for d in state.domains if d.name != dom.name]
        dest.state.domains.append(dom.model_copy(update={"reason": "migrated", "migration": None}))

    def _cancel_migration(self, state: HostState, action: Action) -> None:
        dom = self._domain(state, action.target[1])
        if dom is None or dom.migration is None:
            return
        job = dom.migration.model_copy(update={"state": "cancelled"})
        self._replace(state.domains, dom.model_copy(update={"migration": job}))

    def _fence(self, name: str) -> None:
        host = self.hosts[name]
        if host.reachable:
            host.last_known = host.state.model_copy(deep=True)
        host.power_fenced_at = self.now
        host.reachable = False
        if self.etcd and host.lease_gone_at is None:
            host.lease_gone_at = self.now + LEASE_TTL  # switched off: no more keepalives
        for i, dom in enumerate(host.state.domains):
            host.state.domains[i] = dom.model_copy(
                update={"state": "shutoff", "reason": "destroyed", "live": None}
            )

    # helpers for tests

    def start_migration_job(self, host: str, vm: str, dest: str, elapsed_s: float) -> None:
        """Mark a domain as migrating (a job the agent reports) for `elapsed_s` seconds."""
        state = self.hosts[host].state
        dom = self._domain(state, vm)
        assert dom is not None
        job = MigrationJob(
            state="running",
            destination_uri=self.hosts[dest].state.migration_uri or "",
            started_at=self.now.timestamp() - elapsed_s,
            elapsed_s=elapsed_s,
            data_total_bytes=1000,
            data_processed_bytes=400,
            data_remaining_bytes=600,
        )
        self._replace(state.domains, dom.model_copy(update={"migration": job}))

    def set_domain(self, host: str, vm: str, **update: object) -> None:
        """Change fields of an observed domain (a guest shutting down, a crash)."""
        state = self.hosts[host].state
        dom = self._domain(state, vm)
        assert dom is not None
        self._replace(state.domains, dom.model_copy(update=update))

    def running(self) -> dict[str, list[str]]:
        """Return VM name -> hosts where it is running (for split-brain checks)."""
        out: dict[str, list[str]] = {}
        for name, host in sorted(self.hosts.items()):
            for dom in host.state.domains:
                if dom.state == "running":
                    out.setdefault(dom.name, []).append(name)
        return out

    def domains(self, host: str) -> dict[str, str]:
        """Return domain name -> state on one host."""
        return {d.name: d.state for d in self.hosts[host].state.domains}

    # internals

    def _sync_shared(self, state: HostState) -> None:
        for pool in state.pools:
            if pool.name in self.shared_pools:
                pool.volumes = sorted(
                    self.shared_volumes.get(pool.name, {}).values(), key=lambda v: v.name
                )

    def _path_exists(self, path: str) -> bool:
        return any(
            vol.path == path
            for host in self.hosts.values()
            for pool in host.state.pools
            for vol in pool.volumes
        ) or any(v.path == path for vols in self.shared_volumes.values() for v in vols.values())

    def _set_off(self, state: HostState, name: str, reason: str) -> None:
        dom = self._domain(state, name)
        if dom is None:
            raise SimError("domain not found")
        if dom.state == "shutoff":
            return
        self._replace(
            state.domains,
            dom.model_copy(update={"state": "shutoff", "reason": reason, "live": None}),
        )

    def _active_pool(self, state: HostState, name: str) -> PoolState:
        pool = self._pool(state, name)
        if pool is None or not pool.active:
            raise SimError(f"pool {name} is not active")
        return pool

    @staticmethod
    def _network(state: HostState, name: str) -> NetworkState | None:
        return next((n for n in state.networks if n.name == name), None)

    @staticmethod
    def _pool(state: HostState, name: str) -> PoolState | None:
        return next((p for p in state.pools if p.name == name), None)

    @staticmethod
    def _domain(state: HostState, name: str) -> DomainState | None:
        return next((d for d in state.domains if d.name == name), None)

    def _volume(self, state: HostState, pool: str, name: str) -> VolumeState | None:
        self._sync_shared(state)
        found = self._pool(state, pool)
        return next((v for v in found.volumes if v.name == name), None) if found else None

    @staticmethod
    def _replace(items: list, new: object) -> None:
        for i, item in enumerate(items):
            if item.name == new.name:  # type: ignore[attr-defined]
                items[i] = new
                return
        items.append(new)


# --- building desired state and running passes ---------------------------------------------


def manifest(
    kind: str, name: str, spec: dict[str, Any], labels: dict[str, str] | None = None, **kw: Any
) -> AnyResource:
    """Return a validated object of `kind` from a manifest-shaped spec (camelCase allowed)."""
    body: dict[str, Any] = {
        "kind": kind,
        "metadata": {"name": name, "labels": labels or {}},
        "spec": spec,
    }
    body.update(kw)
    return KINDS[kind].model_validate(body)


def desired_of(
    *objects: AnyResource,
    deleted: tuple[AnyResource | tuple[str, str], ...] = (),
    requests: dict[tuple[str, str], str] | None = None,
) -> Desired:
    """Return a Desired of these objects; `deleted` objects are tombstones (kept as objects)."""
    index: dict[tuple[str, str], AnyResource] = {(o.kind, o.name): o for o in objects}
    gone: set[tuple[str, str]] = set()
    for item in deleted:
        if isinstance(item, tuple):
            gone.add(item)
        else:
            index[(item.kind, item.name)] = item
            gone.add((item.kind, item.name))
    return Desired(index, revision="r1", deleted=frozenset(gone), requests=requests or {})


def summary(plan: Plan) -> list[tuple[str, str, str | None, str]]:
    """Return (type, Kind/name, host, reason) of every action, in plan order."""
    return [(a.type.value, a.ref, a.host, a.reason) for a in plan.actions]


def converge(
    sim: FleetSim,
    desired: Desired,
    policy: PolicyContext | None = None,
    passes: int = 8,
) -> list[Plan]:
    """Plan, apply and tick until a plan is empty (or `passes` ran); return every plan."""
    from controller.plan import plan as make_plan

    policy = policy or PolicyContext(by_host={})
    plans = []
    for _ in range(passes):
        current = make_plan(desired, sim.observed(), policy)
        plans.append(current)
        if current.empty:
            break
        sim.apply(current)
        sim.tick()
    return plans
