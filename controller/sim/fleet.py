"""A simulated fleet: many SimHosts, shared storage, live migrations between them, faults.

`SimFleet.transport_for(host)` gives the httpx transport a controller's AgentPool uses
to reach that host (`AgentPool(transport_for=fleet.transport_for)`); everything above
the transport (AgentClient, its JSON and its typed errors) is the real code.
Faults are switched per host: a cut link refuses connections, a lossy link performs
the verb but loses the answer, a duplicating link delivers each verb twice, a stale
link answers state reads with an older state than it already served.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from agentapi import MigrateRequest, MigrationJob
from controller.sim.host import SharedStorage, SimFailure, SimHost
from controller.sim.latency import Latency


@dataclass
class LinkFaults:
    """The faults currently injected on one host's link (counts are remaining occurrences)."""

    cut: bool = False
    lose_answers: int = 0
    duplicate: int = 0
    stale_reads: int = 0


@dataclass
class _Migration:
    source: str
    dest: str
    vm: str
    due: float
    job: MigrationJob


@dataclass
class FaultLog:
    """What was injected, by kind, for the fault suite's report."""

    counts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, n: int = 1) -> None:
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + n


class SimFleet:
    """Hosts by name, reachable through `transport_for`; `clock` is monotonic seconds."""

    def __init__(
        self,
        names: Iterable[str],
        *,
        latency: Latency | None = None,
        cpus: int = 64,
        memory_mib: int = 256 * 1024,
        clock: Callable[[], float] = time.monotonic,
        per_host_parallel: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.latency = latency or Latency()
        self.shared = SharedStorage()
        self.hosts: dict[str, SimHost] = {
            name: SimHost(
                name,
                cpus=cpus,
                memory_mib=memory_mib,
                shared=self.shared,
                clock=clock,
            )
            for name in names
        }
        self.faults: dict[str, LinkFaults] = {name: LinkFaults() for name in self.hosts}
        self.injected = FaultLog()
        self.per_host_parallel = per_host_parallel
        self._slots = {name: threading.Semaphore(per_host_parallel) for name in self.hosts}
        self._migrations: dict[str, _Migration] = {}
        self._lock = threading.Lock()
        self._transports: dict[str, object] = {}
        self._batch_pool: ThreadPoolExecutor | None = None

    # --- wiring --------------------------------------------------------------------------

    def transport_for(self, host: str):
        """Return the httpx transport of `host` (None for a host this fleet does not have)."""
        from controller.sim.transport import SimTransport

        if host not in self.hosts:
            return None
        with self._lock:
            if host not in self._transports:
                self._transports[host] = SimTransport(self, host)
            return self._transports[host]

    def add_host(self, name: str, **kwargs: object) -> SimHost:
        """Add an empty host to the fleet and return it."""
        host = SimHost(name, shared=self.shared, clock=self.clock, **kwargs)  # type: ignore[arg-type]
        self.hosts[name] = host
        self.faults[name] = LinkFaults()
        self._slots[name] = threading.Semaphore(self.per_host_parallel)
        return host

    def batch_pool(self) -> ThreadPoolExecutor:
        """Return the threads that run batched verbs concurrently (each under its host's slot)."""
        with self._lock:
            if self._batch_pool is None:
                self._batch_pool = ThreadPoolExecutor(
                    max_workers=512, thread_name_prefix="sim-batch"
                )
            return self._batch_pool

    def slot(self, host: str) -> threading.Semaphore:
        """Return the semaphore bounding concurrent verbs on `host` (libvirtd's workers)."""
        return self._slots[host]

    # --- migration -----------------------------------------------------------------------

    def start_migration(self, source: str, vm: str, request: MigrateRequest) -> MigrationJob:
        """Start a live migration job of `vm` from `source`; it completes after the latency."""
        self.settle()
        src = self.hosts[source]
        dom = src.migration_check(vm, request)
        dest = next(
            (h for h in self.hosts.values() if h.migration_uri == request.destination_uri), None
        )
        if dest is None or dest.name == source:
            raise SimFailure(
                "libvirt_error", f"cannot connect to {request.destination_uri}", retryable=True
            )
        spec = dom.live or dom.spec
        missing = []
        for nic in spec.nics if spec else []:
            net = dest.networks.get(nic.network or "")
            if nic.network and (net is None or not net.active):
                missing.append(f"network {nic.network}")
        for disk in spec.disks if spec else []:
            absent = disk.volume and dest.find_volume(disk.pool or "", disk.volume) is None
            if absent and not request.copy_storage:
                missing.append(f"volume {disk.pool}/{disk.volume}")
        if missing:
            raise SimFailure("libvirt_error", f"destination {dest.name} lacks {', '.join(missing)}")
        now = self.clock()
        job = MigrationJob(
            state="running",
            destination_uri=request.destination_uri,
            started_at=now,
            elapsed_s=0.0,
        )
        with self._lock:
            self._migrations[vm] = _Migration(
                source, dest.name, vm, now + self.latency.of("migration"), job
            )
        src.set_migration(vm, job)
        return job

    def cancel_migration(self, source: str, vm: str) -> bool:
        """Cancel the running migration of `vm`; return whether one was running."""
        with self._lock:
            running = self._migrations.pop(vm, None)
        if running is None:
            return False
        now = self.clock()
        job = running.job.model_copy(
            update={"state": "cancelled", "elapsed_s": now - running.job.started_at}
        )
        self.hosts[source].set_migration(vm, job)
        return True

    def settle(self) -> None:
        """Complete every migration that is due by now (the domain moves to its destination)."""
        now = self.clock()
        with self._lock:
            due = [m for m in self._migrations.values() if m.due <= now]
            for m in due:
                del self._migrations[m.vm]
        for m in due:
            src, dest = self.hosts[m.source], self.hosts[m.dest]
            job = m.job.model_copy(
                update={
                    "state": "completed",
                    "elapsed_s": m.due - m.job.started_at,
                    "downtime_ms": 120,
                }
            )
            with src.lock:
                dom = src.domains.get(m.vm)
                if dom is None or dom.state != "running":
                    src.set_migration(m.vm, job.model_copy(update={"state": "failed"}))
                    continue
                dest.accept_incoming(dom)
                src.drop_outgoing(m.vm, job)

    # --- faults --------------------------------------------------------------------------

    def cut(self, host: str, cut: bool = True) -> None:
        """Make `host`'s link refuse connections (or heal it)."""
        self.faults[host].cut = cut

    def crash(self, host: str) -> None:
        """Power the host off: every domain stops; its link is cut until `revive`."""
        h = self.hosts[host]
        with h.lock:
            for name, dom in list(h.domains.items()):
                if dom.state in ("running", "paused"):
                    h.domains[name] = dom.model_copy(
                        update={"state": "shutoff", "reason": "crashed", "live": None}
                    )
            h.version += 1
        self.cut(host)

    # --- reading the whole fleet ---------------------------------------------------------

    def running(self) -> dict[str, list[str]]:
        """Return VM name -> hosts where it runs (more than one is a split brain)."""
        out: dict[str, list[str]] = {}
        for name in sorted(self.hosts):
            for dom in self.hosts[name].domains.values():
                if dom.state == "running":
                    out.setdefault(dom.name, []).append(name)
        return out

    def defined(self) -> dict[str, list[str]]:
        """Return VM name -> hosts where it is defined."""
        out: dict[str, list[str]] = {}
        for name in sorted(self.hosts):
            for dom in self.hosts[name].domains:
                out.setdefault(dom, []).append(name)
        return out

    def starts(self) -> dict[str, int]:
        """Return VM name -> how many times it was started, over every host."""
        out: dict[str, int] = {}
        for host in self.hosts.values():
            for vm, n in host.starts.items():
                out[vm] = out.get(vm, 0) + n
        return out
