"""One simulated host: the agent's verbs over an in-memory "libvirt" (no CPU spent on XML).

Each verb behaves as the real agent's does on libvirt, as far as the controller can
tell: define fills in what libvirt fills in (machine type, NIC MACs, network and pool
UUIDs), start refuses a missing network or volume, undefine refuses a running domain
unless forced, a volume never shrinks, a netfs pool shows the same volumes on every
host that mounts the same export.
A simulated host runs without etcd, as an agent without `--etcd-endpoints` does: it
never fences, and the controller restarts nothing from it without a power fence.
Failures are `SimFailure`s carrying the agent's error `type`, which the transport
turns into the agent's JSON error body and HTTP status.

A method named after a verb of the contract (agentapi.verbs) serves that verb: the
transport calls it with the call's path parameters in the path's order, then the
request body when the verb has one (controller.sim.transport).
"""

from __future__ import annotations

import threading
import time
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentapi import (
    ApplyResult,
    BalloonRequest,
    DomainSpec,
    DomainState,
    DomainStats,
    FenceRecord,
    GraphicsTicket,
    GraphicsTicketRequest,
    Health,
    HostState,
    HostStats,
    LeaseState,
    MigrateRequest,
    MigrationJob,
    NetworkSpec,
    NetworkState,
    PoolSpec,
    PoolState,
    SnapshotSpec,
    SnapshotState,
    StopRequest,
    VerbResult,
    VolumeApplyResult,
    VolumeSpec,
    VolumeState,
    diff_domain_specs,
)

MACHINE = "pc-i440fx-8.0"
"""The machine type libvirt 9 fills in for a domain that leaves it open."""
AGENT_VERSION = "sim"
POOL_BYTES = 2**44


class SimFailure(Exception):
    """A verb the simulated agent refuses, with the agent's error type (not_found, conflict)."""

    def __init__(
        self, type_: str, message: str, *, retryable: bool = False, field_: str = ""
    ) -> None:
        super().__init__(message)
        self.type = type_
        self.message = message
        self.retryable = retryable
        self.field = field_ or None


def _uid(*parts: str) -> str:
    return str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, "corral-sim:" + ":".join(parts)))


def _mac(*parts: str) -> str:
    digest = uuidlib.uuid5(uuidlib.NAMESPACE_URL, "corral-sim-mac:" + ":".join(parts)).bytes
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def _max_memory_mib(spec: DomainSpec) -> int:
    """Return the memory a balloon may grow to: the boot-time maximum, else the memory."""
    return spec.max_memory_mib or spec.memory_mib


def _not_found(kind: str, name: str) -> SimFailure:
    return SimFailure("not_found", f"{kind} {name!r} not found on this host")


def _renamed(spec_name: str, path_name: str) -> SimFailure:
    return SimFailure(
        "invalid_spec",
        f"spec names {spec_name!r} but the path names {path_name!r}",
        field_="name",
    )


@dataclass
class SharedStorage:
    """Volumes of network pools, keyed by export ("host:/path"): every mounting host sees them."""

    volumes: dict[str, dict[str, VolumeState]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)


class SimHost:
    """The in-memory state of one host and the agent verbs over it (thread-safe).

    `clock` is monotonic seconds. `version` grows with every
    change, so a reader can tell whether anything changed since it last looked.
    """

    def __init__(
        self,
        name: str,
        *,
        cpus: int = 64,
        memory_mib: int = 256 * 1024,
        shared: SharedStorage | None = None,
        clock: Callable[[], float],
    ) -> None:
        self.name = name
        self.cpus = cpus
        self.memory_mib = memory_mib
        self.migration_uri = f"qemu+tcp://{name}/system"
        self.shared = shared or SharedStorage()
        self.clock = clock
        self.domains: dict[str, DomainState] = {}
        self.networks: dict[str, NetworkState] = {}
        self.pools: dict[str, PoolState] = {}
        self.local_volumes: dict[str, dict[str, VolumeState]] = {}
        self.snapshots: dict[str, dict[str, SnapshotState]] = {}
        self.fenced: list[FenceRecord] = []
        self.term = 0
        self.completed_jobs: dict[str, MigrationJob] = {}
        self.version = 0
        self.events_seq = 0
        self.contents: dict[str, bytes] = {}
        """Uploaded volume contents by volume path."""
        self.starts: dict[str, int] = {}
        """How many times each domain was started here (a fault suite counts double starts)."""
        self.lock = threading.RLock()

    # --- reads ---------------------------------------------------------------------------

    def state_document(self, omit_volumes: frozenset[str] = frozenset()) -> dict[str, Any]:
        """Return the host's full observed state as the agent's JSON (HostState shape),
        without the volumes of the pools in `omit_volumes`."""
        with self.lock:
            used = self._used_memory_mib()
            state = HostState(
                hostname=self.name,
                agent_version=AGENT_VERSION,
                libvirt_uri="sim:///system",
                libvirt_version="9.0.0",
                migration_uri=self.migration_uri,
                arch="x86_64",
                cpus=self.cpus,
                memory_mib=self.memory_mib,
                free_memory_mib=max(0, self.memory_mib - used),
                domains=[self._domain_with_snapshots(n) for n in sorted(self.domains)],
                networks=[self.networks[n] for n in sorted(self.networks)],
                pools=[self._pool_state(n, n not in omit_volumes) for n in sorted(self.pools)],
                hooks={},
                lease=self.lease_state(),
                events_seq=self.events_seq,
            )
            return state.model_dump(mode="json")

    def health(self) -> Health:
        """Return a simulated agent's health: always answering, libvirt always reached."""
        return Health(ok=True, libvirt_connected=True, agent_version=AGENT_VERSION)

    def get_stats(self) -> HostStats:
        """Return host memory counters and each domain's balloon (a simulated guest's
        memory is all resident; CPU, disk and network counters are not simulated)."""
        with self.lock:
            domains = [
                DomainStats(
                    name=name,
                    state=dom.state,
                    vcpus=dom.live.vcpus if dom.live else None,
                    balloon_current_kib=dom.live.memory_mib * 1024 if dom.live else None,
                    balloon_maximum_kib=_max_memory_mib(dom.live) * 1024 if dom.live else None,
                    memory_rss_kib=dom.live.memory_mib * 1024 if dom.live else None,
                )
                for name, dom in sorted(self.domains.items())
            ]
            return HostStats(
                at=time.time(),
                cpus=self.cpus,
                memory_total_kib=self.memory_mib * 1024,
                memory_free_kib=max(0, self.memory_mib - self._used_memory_mib()) * 1024,
                domains=domains,
            )

    def lease_state(self) -> LeaseState:
        """Return the fencing lease as an agent without etcd reports it."""
        return LeaseState(
            held=False, granted=False, arbiter="none", ttl_s=0, term=self.term, fenced=self.fenced
        )

    def admit_term(self, raw: str) -> None:
        """Refuse a call under an older controller term than the newest seen (nodeagent.term)."""
        try:
            term = int(raw)
        except ValueError:
            raise SimFailure(
                "invalid_spec", f"X-Corral-Epoch must be an integer, got {raw!r}"
            ) from None
        with self.lock:
            if term < self.term:
                raise SimFailure(
                    "conflict",
                    f"controller term {term} is older than term {self.term} already seen by "
                    "this host: refused (a newer controller leads)",
                )
            self.term = term

    def get_domain(self, name: str) -> DomainState:
        """Return one domain; not_found if it is not defined here."""
        with self.lock:
            if name not in self.domains:
                raise _not_found("domain", name)
            return self._domain_with_snapshots(name)

    # --- domains -------------------------------------------------------------------------

    def ensure_domain_defined(self, name: str, spec: DomainSpec) -> ApplyResult:
        """Make the persistent definition equal `spec`; memory/vCPUs change live within maxima."""
        if spec.name != name:
            raise _renamed(spec.name, name)
        with self.lock:
            current = self.domains.get(name)
            if current is not None and current.uuid != spec.uuid:
                raise SimFailure(
                    "conflict", f"domain {name!r} exists with uuid {current.uuid}, not {spec.uuid}"
                )
            stored = self._filled(spec)
            if current is None:
                self.domains[name] = DomainState(
                    name=name,
                    uuid=spec.uuid,
                    state="shutoff",
                    reason="unknown",
                    persistent=True,
                    autostart=False,
                    ha=spec.ha,
                    spec=stored,
                    metadata=dict(spec.labels),
                )
                self._changed()
                return ApplyResult(name=name, changed=True, created=True)
            changed = current.spec is None or bool(diff_domain_specs(spec, current.spec))
            live = current.live
            applied: list[str] = []
            restart: list[str] = []
            if current.state == "running" and live is not None:
                for key in diff_domain_specs(spec, live):
                    if (
                        key == "memory_mib"
                        and live.max_memory_mib
                        and (spec.memory_mib <= live.max_memory_mib)
                    ):
                        live = live.model_copy(update={"memory_mib": spec.memory_mib})
                        applied.append(key)
                    elif key == "vcpus" and spec.vcpus <= (live.max_vcpus or live.vcpus):
                        live = live.model_copy(update={"vcpus": spec.vcpus})
                        applied.append(key)
                    elif key in ("labels", "hooks", "ha", "ha_priority", "description"):
                        live = live.model_copy(update={key: getattr(stored, key)})
                        applied.append(key)
                    else:
                        restart.append(key)
            if changed or applied:
                self.domains[name] = current.model_copy(
                    update={
                        "spec": stored,
                        "live": live,
                        "ha": spec.ha,
                        "metadata": dict(spec.labels),
                    }
                )
                self._changed()
            return ApplyResult(
                name=name,
                changed=changed or bool(applied),
                applied_live=applied,
                restart_required=restart,
            )

    def ensure_running(self, name: str) -> VerbResult:
        """Start (or resume) the domain; refuse a missing network or volume."""
        with self.lock:
            dom = self._domain(name)
            if dom.state == "paused":
                self.domains[name] = dom.model_copy(
                    update={"state": "running", "reason": "unpaused"}
                )
                self._changed()
                return VerbResult(name=name, changed=True, state="running", message="resumed")
            if dom.state == "running":
                return VerbResult(name=name, changed=False, state="running")
            spec = dom.spec
            assert spec is not None
            for nic in spec.nics:
                net = self.networks.get(nic.network or "")
                if nic.network is not None and (net is None or not net.active):
                    raise SimFailure(
                        "libvirt_error", f"network {nic.network!r} is not active", retryable=False
                    )
            for disk in spec.disks:
                if disk.volume and self.find_volume(disk.pool or "", disk.volume) is None:
                    raise SimFailure(
                        "libvirt_error", f"storage volume {disk.pool}/{disk.volume} not found"
                    )
            self.domains[name] = dom.model_copy(
                update={"state": "running", "reason": "booted", "live": spec}
            )
            self.starts[name] = self.starts.get(name, 0) + 1
            self._changed()
            return VerbResult(name=name, changed=True, state="running")

    def ensure_stopped(self, name: str, request: StopRequest) -> VerbResult:
        """Make the domain shut off (a simulated guest always obeys ACPI shutdown; no
        grace time at all is a power-off)."""
        return self._stop(name, "shut down" if request.timeout_s else "destroyed")

    def ensure_destroyed(self, name: str) -> VerbResult:
        """Make the domain shut off at once (power off)."""
        return self._stop(name, "destroyed")

    def _stop(self, name: str, how: str) -> VerbResult:
        with self.lock:
            dom = self._domain(name)
            if dom.state not in ("running", "paused"):
                return VerbResult(name=name, changed=False, state="shutoff")
            reason = "shutdown" if how == "shut down" else "destroyed"
            self.domains[name] = dom.model_copy(
                update={"state": "shutoff", "reason": reason, "live": None}
            )
            self._changed()
            return VerbResult(name=name, changed=True, state="shutoff", message=how)

    def set_balloon(self, name: str, request: BalloonRequest) -> VerbResult:
        """Make the running domain's live memory the target (up to its boot-time maximum)."""
        target_mib = request.target_mib
        with self.lock:
            dom = self._domain(name)
            if dom.state != "running" or dom.live is None:
                raise SimFailure(
                    "conflict", f"domain {name!r} is not running; a balloon target needs a guest"
                )
            maximum = _max_memory_mib(dom.live)
            if target_mib > maximum:
                raise SimFailure(
                    "invalid_spec",
                    f"target_mib: {target_mib} MiB is above the domain's maximum of {maximum} MiB",
                    field_="target_mib",
                )
            current = dom.live.memory_mib
            if target_mib == current:
                return VerbResult(name=name, changed=False, state="running", message="unchanged")
            live = dom.live.model_copy(update={"memory_mib": target_mib})
            self.domains[name] = dom.model_copy(update={"live": live})
            self._changed()
            return VerbResult(
                name=name,
                changed=True,
                state="running",
                message=f"balloon target {current} -> {target_mib} MiB",
            )

    def ensure_undefined(self, name: str, force: bool) -> VerbResult:
        """Make the domain absent; a running one needs `force` (conflict otherwise)."""
        with self.lock:
            dom = self.domains.get(name)
            if dom is None:
                return VerbResult(name=name, changed=False, state="absent")
            if dom.state in ("running", "paused") and not force:
                raise SimFailure(
                    "conflict", f"domain {name!r} is running; stop it first or pass force=true"
                )
            del self.domains[name]
            self.snapshots.pop(name, None)
            self._changed()
            return VerbResult(name=name, changed=True, state="absent")

    # --- migration -----------------------------------------------------------------------

    def migration_check(self, name: str, request: MigrateRequest) -> DomainState:
        """Return the running domain a migration would move; conflict if it cannot."""
        with self.lock:
            dom = self._domain(name)
            if dom.state != "running":
                raise SimFailure("conflict", f"domain {name!r} is not running: cannot migrate live")
            if dom.migration is not None and dom.migration.state == "running":
                raise SimFailure("conflict", f"domain {name!r} is already migrating")
            return dom

    def set_migration(self, name: str, job: MigrationJob | None) -> None:
        """Record the domain's migration job (None clears it)."""
        with self.lock:
            if name in self.domains:
                self.domains[name] = self.domains[name].model_copy(update={"migration": job})
                self._changed()

    def accept_incoming(self, dom: DomainState) -> None:
        """Take over a domain migrated here (persistent, running)."""
        with self.lock:
            self.domains[dom.name] = dom.model_copy(
                update={"reason": "migrated", "migration": None}
            )
            self.starts.setdefault(dom.name, 0)
            self._changed()

    def drop_outgoing(self, name: str, job: MigrationJob) -> None:
        """Forget a domain that migrated away (undefine-source), keeping its last job."""
        with self.lock:
            self.domains.pop(name, None)
            self.completed_jobs[name] = job
            self._changed()

    def get_migration(self, name: str) -> MigrationJob:
        """Return the domain's last migration job; not_found if it never migrated."""
        with self.lock:
            dom = self.domains.get(name)
            if dom is not None and dom.migration is not None:
                return dom.migration
            job = self.completed_jobs.get(name)
            if job is None:
                raise _not_found("migration job of domain", name)
            return job

    # --- snapshots -----------------------------------------------------------------------

    def ensure_snapshot(self, name: str, snap: str, spec: SnapshotSpec) -> VerbResult:
        """Make the snapshot exist (memory saved when the domain runs)."""
        with self.lock:
            dom = self._domain(name)
            snaps = self.snapshots.setdefault(name, {})
            if snap in snaps:
                return VerbResult(name=snap, changed=False)
            running = dom.state == "running"
            if spec.memory is False and running:
                raise SimFailure(
                    "conflict", "a disks-only internal snapshot needs a stopped domain"
                )
            for other in snaps.values():
                other_current = other.model_copy(update={"current": False})
                snaps[other.name] = other_current
            parent = max(snaps.values(), key=lambda s: s.created_at).name if snaps else None
            snaps[snap] = SnapshotState(
                name=snap,
                domain=name,
                description=spec.description,
                created_at=int(self.clock()),
                domain_state=dom.state,
                parent=parent,
                current=True,
                memory=running,
                size_bytes=0,
            )
            self._changed()
            return VerbResult(name=snap, changed=True)

    def list_snapshots(self, name: str) -> list[SnapshotState]:
        """Return the domain's snapshots, oldest first."""
        with self.lock:
            self._domain(name)
            return sorted(self.snapshots.get(name, {}).values(), key=lambda s: s.created_at)

    def get_snapshot(self, name: str, snap: str) -> SnapshotState:
        """Return one snapshot; not_found if the domain or the snapshot is missing."""
        with self.lock:
            self._domain(name)
            found = self.snapshots.get(name, {}).get(snap)
            if found is None:
                raise _not_found("snapshot", f"{name}/{snap}")
            return found

    def revert_snapshot(self, name: str, snap: str) -> VerbResult:
        """Put the domain back in the state the snapshot saved (running or shut off); the
        snapshot becomes the current one. Repeating it reverts again."""
        with self.lock:
            dom = self._domain(name)
            saved = self.get_snapshot(name, snap)
            running = saved.domain_state in ("running", "paused")
            self.domains[name] = dom.model_copy(
                update={
                    "state": saved.domain_state if running else "shutoff",
                    "reason": "from snapshot",
                    "live": dom.spec if running else None,
                }
            )
            snaps = self.snapshots[name]
            for other in list(snaps.values()):
                snaps[other.name] = other.model_copy(update={"current": other.name == snap})
            self._changed()
            return VerbResult(name=snap, changed=True, state=saved.domain_state)

    def ensure_snapshot_deleted(self, name: str, snap: str) -> VerbResult:
        """Make the snapshot absent."""
        with self.lock:
            self._domain(name)
            if self.snapshots.get(name, {}).pop(snap, None) is None:
                return VerbResult(name=snap, changed=False, state="absent")
            self._changed()
            return VerbResult(name=snap, changed=True, state="absent")

    # --- networks ------------------------------------------------------------------------

    def ensure_network_defined(self, name: str, spec: NetworkSpec) -> ApplyResult:
        """Define the network as `spec` (not started); libvirt picks a UUID and a bridge."""
        if spec.name != name:
            raise _renamed(spec.name, name)
        with self.lock:
            current = self.networks.get(name)
            if current is not None and spec.uuid is not None and current.uuid != spec.uuid:
                raise SimFailure("conflict", f"network {name!r} exists with uuid {current.uuid}")
            uid = current.uuid if current else (spec.uuid or _uid(self.name, "net", name))
            bridge = spec.bridge or (
                current.spec.bridge if current and current.spec else f"virbr{len(self.networks)}"
            )
            stored = spec.model_copy(update={"uuid": uid, "bridge": bridge})
            if current is not None and current.spec == stored:
                return ApplyResult(name=name, changed=False)
            restart = ["*"] if current is not None and current.active else []
            self.networks[name] = NetworkState(
                name=name,
                uuid=uid,
                active=current.active if current else False,
                persistent=True,
                autostart=spec.autostart,
                spec=stored,
            )
            self._changed()
            return ApplyResult(
                name=name, changed=True, created=current is None, restart_required=restart
            )

    def list_networks(self) -> list[NetworkState]:
        """Return every network, by name."""
        with self.lock:
            return [self.networks[n] for n in sorted(self.networks)]

    def get_network(self, name: str) -> NetworkState:
        """Return one network; not_found if it is not defined here."""
        with self.lock:
            if name not in self.networks:
                raise _not_found("network", name)
            return self.networks[name]

    def ensure_network_active(self, name: str) -> VerbResult:
        """Start the network."""
        return self._set_network_active(name, True)

    def ensure_network_inactive(self, name: str) -> VerbResult:
        """Stop the network; a conflict while running domains use it."""
        return self._set_network_active(name, False)

    def _set_network_active(self, name: str, active: bool) -> VerbResult:
        with self.lock:
            net = self.networks.get(name)
            if net is None:
                raise _not_found("network", name)
            word = "active" if active else "inactive"
            if net.active == active:
                return VerbResult(name=name, changed=False, state=word)
            if not active:
                self._refuse_if_used(name)
            self.networks[name] = net.model_copy(update={"active": active})
            self._changed()
            return VerbResult(name=name, changed=True, state=word)

    def ensure_network_undefined(self, name: str) -> VerbResult:
        """Make the network absent; conflict while running domains use it."""
        with self.lock:
            if name not in self.networks:
                return VerbResult(name=name, changed=False, state="absent")
            self._refuse_if_used(name)
            del self.networks[name]
            self._changed()
            return VerbResult(name=name, changed=True, state="absent")

    def _refuse_if_used(self, network: str) -> None:
        users = sorted(
            d.name
            for d in self.domains.values()
            if d.state == "running" and d.live and any(n.network == network for n in d.live.nics)
        )
        if users:
            raise SimFailure(
                "conflict", f"network {network!r} is used by running domains: {', '.join(users)}"
            )

    # --- storage -------------------------------------------------------------------------

    def ensure_pool(self, name: str, spec: PoolSpec) -> ApplyResult:
        """Define and start the pool (a netfs pool joins its export's shared volumes)."""
        if spec.name != name:
            raise _renamed(spec.name, name)
        with self.lock:
            current = self.pools.get(name)
            uid = current.uuid if current else (spec.uuid or _uid(self.name, "pool", name))
            stored = spec.model_copy(update={"uuid": uid})
            if current is not None and current.spec == stored and current.active:
                return ApplyResult(name=name, changed=False)
            self.pools[name] = PoolState(
                name=name,
                uuid=uid,
                active=True,
                persistent=True,
                autostart=spec.autostart,
                capacity_bytes=POOL_BYTES,
                allocation_bytes=0,
                available_bytes=POOL_BYTES,
                spec=stored,
            )
            self.local_volumes.setdefault(name, {})
            self._changed()
            return ApplyResult(name=name, changed=True, created=current is None)

    def ensure_pool_undefined(self, name: str) -> VerbResult:
        """Make the pool absent from the host (its volumes' data stays)."""
        with self.lock:
            if self.pools.pop(name, None) is None:
                return VerbResult(name=name, changed=False, state="absent")
            self._changed()
            return VerbResult(name=name, changed=True, state="absent")

    def list_pools(self) -> list[PoolState]:
        """Return every pool with its volumes, by name."""
        with self.lock:
            return [self._pool_state(n) for n in sorted(self.pools)]

    def get_pool(self, name: str) -> PoolState:
        """Return one pool with its volumes."""
        with self.lock:
            if name not in self.pools:
                raise _not_found("storage pool", name)
            return self._pool_state(name)

    def ensure_volume(self, pool: str, name: str, spec: VolumeSpec) -> VolumeApplyResult:
        """Create (or thin-clone) the volume, or grow it; shrinking is invalid_spec."""
        if spec.name != name:
            raise _renamed(spec.name, name)
        with self.lock:
            volumes, target = self._volumes_of(pool)
            with self.shared.lock:
                have = volumes.get(name)
                if have is None:
                    if spec.backing_path and not self._path_exists(spec.backing_path):
                        raise SimFailure(
                            "libvirt_error", f"backing file {spec.backing_path} does not exist"
                        )
                    volume = VolumeState(
                        name=name,
                        path=f"{target}/{name}",
                        capacity_bytes=spec.capacity_bytes,
                        allocation_bytes=0,
                        format=spec.format,
                        backing_path=spec.backing_path,
                        backing_format=spec.backing_format,
                    )
                    volumes[name] = volume
                    self._changed()
                    return VolumeApplyResult(name=name, changed=True, created=True, volume=volume)
                if have.format is not None and have.format != spec.format:
                    raise SimFailure(
                        "conflict", f"volume {name!r} exists with format {have.format}"
                    )
                if spec.backing_path is not None and have.backing_path != spec.backing_path:
                    raise SimFailure(
                        "conflict", f"volume {name!r} exists with backing file {have.backing_path}"
                    )
                if spec.capacity_bytes < have.capacity_bytes:
                    raise SimFailure(
                        "invalid_spec",
                        f"shrinking volume {name!r} from {have.capacity_bytes} to "
                        f"{spec.capacity_bytes} bytes is not supported (data loss)",
                        field_="capacity_bytes",
                    )
                if spec.capacity_bytes > have.capacity_bytes:
                    grown = have.model_copy(update={"capacity_bytes": spec.capacity_bytes})
                    volumes[name] = grown
                    self._changed()
                    return VolumeApplyResult(name=name, changed=True, resized=True, volume=grown)
                return VolumeApplyResult(name=name, changed=False, volume=have)

    def get_volume(self, pool: str, name: str) -> VolumeState:
        """Return one volume; not_found if the pool or the volume is missing."""
        with self.lock:
            volumes, _ = self._volumes_of(pool)
            if name not in volumes:
                raise _not_found("volume", f"{pool}/{name}")
            return volumes[name]

    def ensure_volume_deleted(self, pool: str, name: str) -> VerbResult:
        """Make the volume absent."""
        with self.lock:
            volumes, _ = self._volumes_of(pool)
            with self.shared.lock:
                if volumes.pop(name, None) is None:
                    return VerbResult(name=name, changed=False, state="absent")
            self._changed()
            return VerbResult(name=name, changed=True, state="absent")

    def upload_volume(self, pool: str, name: str, data: bytes) -> VerbResult:
        """Replace the volume's content with `data` (kept in memory, per host)."""
        with self.lock:
            volume = self.get_volume(pool, name)
            self.contents[volume.path] = data
            return VerbResult(name=name, changed=True, message=f"{len(data)} bytes written")

    def download_volume(self, pool: str, name: str) -> bytes:
        """Return the volume's content: what was last uploaded here, else nothing."""
        with self.lock:
            return self.contents.get(self.get_volume(pool, name).path, b"")

    # --- consoles ------------------------------------------------------------------------

    def open_console(self, name: str) -> None:
        """Refuse the serial console: a simulated domain has no console to attach to."""
        self.get_domain(name)
        raise SimFailure("unavailable", "a simulated domain has no serial console to attach to")

    def open_graphics(self, name: str) -> None:
        """Refuse the display: a simulated domain has no frames to send."""
        self.get_domain(name)
        raise SimFailure("unavailable", "a simulated domain has no display to attach to")

    def issue_graphics_ticket(self, name: str, request: GraphicsTicketRequest) -> GraphicsTicket:
        """Return a one-time ticket for the running domain's display, as the agent would
        (the simulated display itself cannot be entered: it has no frames to send)."""
        with self.lock:
            dom = self._domain(name)
            if dom.state != "running" or dom.live is None:
                raise SimFailure("conflict", f"domain {name!r} is not running: it has no display")
            if dom.live.graphics != request.kind:
                raise _not_found("display", f"{request.kind} of {name}")
            return GraphicsTicket(
                ticket=uuidlib.uuid4().hex, domain=name, kind=request.kind, ttl_s=request.ttl_s
            )

    # --- internals -----------------------------------------------------------------------

    def _used_memory_mib(self) -> int:
        return sum(
            (d.live.memory_mib if d.live else 0)
            for d in self.domains.values()
            if d.state == "running"
        )

    def _changed(self) -> None:
        self.version += 1
        self.events_seq += 1

    def _domain(self, name: str) -> DomainState:
        dom = self.domains.get(name)
        if dom is None:
            raise _not_found("domain", name)
        return dom

    def _domain_with_snapshots(self, name: str) -> DomainState:
        dom = self.domains[name]
        snaps = self.snapshots.get(name)
        if not snaps:
            return dom
        return dom.model_copy(
            update={"snapshots": sorted(snaps.values(), key=lambda s: s.created_at)}
        )

    def _filled(self, spec: DomainSpec) -> DomainSpec:
        """Return `spec` as libvirt stores it: machine type and NIC MACs filled in."""
        update: dict[str, Any] = {}
        if spec.machine is None:
            update["machine"] = MACHINE
        if any(nic.mac is None for nic in spec.nics):
            update["nics"] = [
                nic
                if nic.mac
                else nic.model_copy(update={"mac": _mac(self.name, spec.name, str(i))})
                for i, nic in enumerate(spec.nics)
            ]
        return spec.model_copy(update=update) if update else spec

    def _export(self, spec: PoolSpec | None) -> str | None:
        if spec is not None and spec.type == "netfs":
            return f"{spec.source_host}:{spec.source_path}"
        return None

    def _volumes_of(self, pool: str) -> tuple[dict[str, VolumeState], str]:
        """Return the live volume table of an active pool and its target path."""
        state = self.pools.get(pool)
        if state is None or not state.active:
            raise (
                _not_found("storage pool", pool)
                if state is None
                else SimFailure("conflict", f"storage pool {pool!r} is not active")
            )
        target = state.spec.target_path if state.spec else f"/pools/{pool}"
        export = self._export(state.spec)
        if export is not None:
            return self.shared.volumes.setdefault(export, {}), target
        return self.local_volumes.setdefault(pool, {}), target

    def _pool_state(self, name: str, list_volumes: bool = True) -> PoolState:
        pool = self.pools[name]
        if not pool.active:
            return pool if list_volumes else pool.model_copy(update={"volumes_listed": False})
        volumes, _ = self._volumes_of(name)
        with self.shared.lock:
            listed = [volumes[v] for v in sorted(volumes)]
        used = sum(v.allocation_bytes for v in listed)
        return pool.model_copy(
            update={
                "volumes": listed if list_volumes else [],
                "volumes_listed": list_volumes,
                "allocation_bytes": used,
                "available_bytes": pool.capacity_bytes - used,
            }
        )

    def find_volume(self, pool: str, name: str) -> VolumeState | None:
        """Return the volume if the active pool has it, else None."""
        try:
            volumes, _ = self._volumes_of(pool)
        except SimFailure:
            return None
        return volumes.get(name)

    def _path_exists(self, path: str) -> bool:
        for pool in self.pools:
            try:
                volumes, _ = self._volumes_of(pool)
            except SimFailure:
                continue
            if any(v.path == path for v in volumes.values()):
                return True
        return False
