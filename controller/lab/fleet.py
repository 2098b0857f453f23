"""A Corral controller over a lab's agents, in this process: what HA, drain and migration
proofs (tests/lab, bench/bench_ha.py) drive and watch.

`LabFleet` runs the real `Controller` (its reconcile loop and its watch of the hosts' etcd
leases on their own threads) with a SQLite store, talking mTLS to the `LabAgents`. Desired
objects are written to the store under an API source, as `corral apply` or the REST API
would. `tiny_vm` and `lab_policy` build the manifests the proofs use. `DomainSampler` reads
every host's running domains from its libvirtd at a fine interval, independently of Corral,
to count copies.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libvirt

from arbiter import make_settings
from controller.agentpool import AgentPool
from controller.lab.agents import LabAgents
from controller.lab.guest import GuestImage
from controller.lab.heartbeat import SerialLogReader
from controller.lab.libvirtd import Lab
from controller.loop import Controller, PassResult
from controller.store import NotFound, Store, open_store
from schemas.affinity import AffinityGroup
from schemas.kinds import AnyResource
from schemas.meta import ObjectStatus
from schemas.policy import SchedulingPolicy
from schemas.vm import VirtualMachine

log = logging.getLogger(__name__)

LAB_SOURCE = "api:lab"
"""The owner of objects a LabFleet writes (API-owned: `corral host drain` may change them)."""
SERIAL_LOG_DIR = "/var/log/libvirt/qemu"
"""Where the agent puts a VM's serial log inside its host (the planner's naming)."""

libvirt.registerErrorHandler(lambda _ctx, _error: None, None)


def serial_log(vm: str) -> str:
    """Returns VM `vm`'s serial log path as its host's processes see it."""
    return f"{SERIAL_LOG_DIR}/{vm}-serial.log"


def tiny_vm(
    name: str,
    image: GuestImage,
    *,
    ha: bool = False,
    priority: int = 50,
    labels: dict[str, str] | None = None,
    host: str | None = None,
    memory: str = "96Mi",
    max_downtime_ms: int = 300,
) -> VirtualMachine:
    """Returns a one-vCPU VirtualMachine booting the tiny guest (kernel + initrd, heartbeats on
    its serial console), optionally HA and pinned to `host`.
    """
    spec: dict[str, Any] = {
        "cpus": 1,
        "memory": memory,
        "boot": {
            "kernel": str(image.kernel),
            "initrd": str(image.initrd),
            "cmdline": image.cmdline,
        },
        "runStrategy": "Always",
        "ha": {"enabled": ha, "priority": priority},
        "migration": {"maxDowntimeMs": max_downtime_ms, "timeoutS": 120},
    }
    if host is not None:
        spec["placement"] = {"host": host}
    return VirtualMachine.model_validate(
        {"metadata": {"name": name, "labels": labels or {}}, "spec": spec}
    )


def lab_policy(
    name: str = "lab",
    *,
    margin_s: int = 2,
    balancer: str = "None",
    max_migrations_per_host: int = 2,
    max_migrations_fleet: int = 4,
) -> SchedulingPolicy:
    """Returns a SchedulingPolicy for every lab host: HA restart margin, balancer and budget."""
    return SchedulingPolicy.model_validate(
        {
            "metadata": {"name": name},
            "spec": {
                "haRestartMarginS": margin_s,
                "balancer": {"type": balancer},
                "disruptionBudget": {
                    "maxMigrationsPerHost": max_migrations_per_host,
                    "maxMigrationsFleet": max_migrations_fleet,
                },
            },
        }
    )


def anti_affinity(name: str, vms: Sequence[str]) -> AffinityGroup:
    """Returns a hard VM-VM anti-affinity group: no two of `vms` on one host."""
    return AffinityGroup.model_validate(
        {
            "metadata": {"name": name},
            "spec": {"vms": list(vms), "vmRule": {"polarity": "negative", "enforcement": "hard"}},
        }
    )


def reset_lab(lab: Lab, agents: LabAgents) -> None:
    """Brings every host back (link up, agent port open, libvirtd, agent) and removes every
    domain on it and its serial log: a clean lab for the next proof."""
    for host in lab.hosts:
        lab.heal(host.name)
        agents.reconnect(host.name)
        lab.start_host(host.name)
    agents.up()
    for host in lab.hosts:
        conn = libvirt.open(host.socket_uri)
        try:
            for dom in conn.listAllDomains():
                with contextlib.suppress(libvirt.libvirtError):
                    dom.destroy()
                with contextlib.suppress(libvirt.libvirtError):
                    dom.undefine()
                host.outside(serial_log(dom.name())).unlink(missing_ok=True)
        finally:
            conn.close()


class LabFleet:
    """The real Controller reconciling a lab through its agents; `start`/`stop` its loop.

    `resync_s` is short (the lab has no agent event stream wired to the loop): a host's
    silence is noticed within one resync.
    """

    def __init__(
        self,
        lab: Lab,
        agents: LabAgents,
        state_dir: Path,
        *,
        resync_s: float = 1.0,
        identity: str = "corral-lab",
        on_pass: Callable[[PassResult], None] | None = None,
        db: str | None = None,
    ) -> None:
        """`db`: the store's URL (e.g. PostgreSQL); None keeps SQLite under `state_dir`."""
        self.lab = lab
        self.agents = agents
        state_dir.mkdir(parents=True, exist_ok=True)
        self.store: Store = open_store(db, state_dir=state_dir)
        self.pool = AgentPool(
            cert_dir=agents.controller_certs, connect_timeout_s=1.0, timeout_s=5.0
        )
        tls = lab.etcd_client_tls()
        self.etcd = make_settings(
            lab.etcd_endpoints(), ca_file=tls.ca, cert_file=tls.cert, key_file=tls.key
        )
        self.controller = Controller(
            self.store,
            [],
            self.pool,
            identity=identity,
            resync_s=resync_s,
            busy_requeue_s=0.5,
            etcd=self.etcd,
        )
        self.passes: list[PassResult] = []
        self.pass_ends: list[float] = []
        """When each pass ended (monotonic seconds), parallel to `passes`."""
        self._on_pass = on_pass
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- desired state ---------------------------------------------------------------------

    def apply(self, objects: Iterable[AnyResource]) -> None:
        """Stores each object as desired (created or replaced), then wakes the loop."""
        for obj in objects:
            self.store.put(obj, LAB_SOURCE, take_ownership=True)
        self.controller.trigger()

    def delete(self, kind: str, name: str) -> None:
        """Deletes a desired object (the controller removes it from its host)."""
        self.store.delete(kind, name)
        self.controller.trigger()

    def set_maintenance(self, host: str, on: bool) -> None:
        """Sets spec.maintenance of Host `host`, as `corral host drain/undrain` does."""
        current = self.store.get("Host", host).obj
        changed = current.model_copy(
            update={"spec": current.spec.model_copy(update={"maintenance": on})}
        )
        self.apply([changed])

    # -- observed state --------------------------------------------------------------------

    def status(self, kind: str, name: str) -> ObjectStatus | None:
        """Returns the object's status as the controller last wrote it (None if none yet)."""
        try:
            return self.store.get(kind, name).obj.status
        except NotFound:
            return None

    def wait(
        self, predicate: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.1
    ) -> float:
        """Returns the seconds it took `predicate` to hold; raises TimeoutError naming `what`."""
        start = time.monotonic()
        while not predicate():
            if time.monotonic() - start > timeout_s:
                raise TimeoutError(f"{what}: not after {timeout_s:g}s; {self.describe()}")
            time.sleep(interval_s)
        return time.monotonic() - start

    def describe(self) -> str:
        """Returns one line per VM and Host status: phase, host and Ready reason and message."""
        lines = []
        for stored in self.store.list().items:
            status = stored.obj.status
            if stored.kind not in ("VirtualMachine", "Host") or status is None:
                continue
            ready = status.condition("Ready")
            lines.append(
                f"{stored.kind}/{stored.name} {getattr(status, 'phase', '')} "
                f"{getattr(status, 'host', '') or ''} {ready.reason if ready else ''}: "
                f"{ready.message if ready else ''}"
            )
        return " | ".join(lines)

    def vm_host(self, vm: str) -> str | None:
        """Returns the host the controller reports VM `vm` running on, if it runs."""
        status = self.status("VirtualMachine", vm)
        if status is None or getattr(status, "phase", None) != "Running":
            return None
        return getattr(status, "host", None)

    # -- the loop --------------------------------------------------------------------------

    def start(self) -> None:
        """Starts the controller's loop (and its etcd lease watch) on a daemon thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.controller.run, args=(self._stop, self._record), daemon=True
        )
        self._thread.start()

    def _record(self, result: PassResult) -> None:
        self.passes.append(result)
        self.pass_ends.append(time.monotonic())
        if result.outcomes:
            log.info(
                "pass %.2fs: %s",
                result.elapsed_s,
                "; ".join(
                    f"{o.action.type.value} {o.action.target[1]} on {o.action.host}: "
                    + ("ok" if o.ok else f"FAILED {o.error}")
                    for o in result.outcomes
                ),
            )
        if self._on_pass is not None:
            self._on_pass(result)

    def stop(self) -> None:
        """Stops the loop (the agents and their VMs keep running)."""
        self._stop.set()
        self.controller.trigger()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def close(self) -> None:
        """Stops the loop and closes clients and the store."""
        self.stop()
        self.pool.close()
        self.store.close()

    def __enter__(self) -> LabFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- proofs ----------------------------------------------------------------------------

    def action_times(self, action: str, vm: str, after: float = 0.0) -> list[tuple[float, bool]]:
        """Returns (end of pass, ok) of every `action` (e.g. "StartVM") on VM `vm` carried out
        in a pass that ended after `after` (monotonic seconds)."""
        return [
            (end, o.ok)
            for end, p in zip(self.pass_ends, self.passes, strict=True)
            if end > after
            for o in p.outcomes
            if o.action.type.value == action and o.action.target[1] == vm and not o.skipped
        ]

    def heartbeats(self, vms: Iterable[str]) -> dict[str, SerialLogReader]:
        """Returns a reader per VM following its serial log on every lab host."""
        hosts = self.lab.hosts
        return {
            vm: SerialLogReader({h.name: h.outside(serial_log(vm)) for h in hosts}) for vm in vms
        }

    def clear_serial_logs(self, vms: Iterable[str]) -> None:
        """Deletes the VMs' serial logs on every host (a fresh proof starts empty)."""
        for host in self.lab.hosts:
            for vm in vms:
                host.outside(serial_log(vm)).unlink(missing_ok=True)


@dataclass
class Sample:
    """Which domains ran on which host at one moment (`at` monotonic, `wall` unix seconds)."""

    at: float
    wall: float
    running: dict[str, frozenset[str]]

    def hosts_of(self, vm: str) -> list[str]:
        """Returns the hosts running `vm` in this sample."""
        return sorted(h for h, names in self.running.items() if vm in names)


@dataclass
class DomainSampler:
    """Samples every host's RUNNING domains every `interval_s` over each libvirtd's local
    socket (never through Corral; reachable even while a host's network is cut).

    A live migration's incoming copy is paused until switch-over and is not counted: only
    domains in state running count, so a double-run means two guests executing at once.
    """

    lab: Lab
    interval_s: float = 0.1
    samples: list[Sample] = field(default_factory=list)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _conns: dict[str, libvirt.virConnect] = field(default_factory=dict)
    _uris: dict[str, str] = field(default_factory=dict)

    def _running(self, name: str, uri: str) -> frozenset[str]:
        conn = self._conns.get(name)
        try:
            if conn is None:
                conn = self._conns[name] = libvirt.open(uri)
            doms = conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_RUNNING)
            return frozenset(d.name() for d in doms)
        except libvirt.libvirtError:
            # A killed host's libvirtd: nothing of it runs (its QEMUs died with it).
            self.errors += 1
            self._conns.pop(name, None)
            return frozenset()

    def sample(self) -> Sample:
        """Takes and keeps one sample of every live host."""
        if not self._uris:
            self._uris = {h.name: h.socket_uri for h in self.lab.hosts}
        at, wall = time.monotonic(), time.time()
        found = Sample(
            at, wall, {name: self._running(name, uri) for name, uri in self._uris.items()}
        )
        self.samples.append(found)
        return found

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.sample()
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def double_runs(self, vms: Iterable[str] | None = None) -> list[tuple[float, str, list[str]]]:
        """Returns (at, vm, hosts) for every sample in which a VM ran on two hosts or more,
        seen so in two consecutive samples.

        Hosts are read one after another, not at one instant: a live migration switching
        over between two reads shows its VM on both hosts in that one sample. A real second
        copy (a boot elsewhere before the fence) runs for seconds, across many samples.
        """
        wanted = set(vms) if vms is not None else None
        found = []
        previous: set[str] = set()
        for s in self.samples:
            counts: dict[str, list[str]] = {}
            for host, names in s.running.items():
                for vm in names:
                    if wanted is None or vm in wanted:
                        counts.setdefault(vm, []).append(host)
            doubled = {vm for vm, h in counts.items() if len(h) > 1}
            found += [(s.at, vm, sorted(counts[vm])) for vm in sorted(doubled & previous)]
            previous = doubled
        return found

    def shared_hosts(self, group: Sequence[str]) -> list[tuple[float, str, list[str]]]:
        """Returns (at, host, vms) for every sample in which two members of `group` ran on
        one host (a hard anti-affinity violation)."""
        found = []
        for s in self.samples:
            for host, names in s.running.items():
                together = sorted(set(group) & names)
                if len(together) > 1:
                    found.append((s.at, host, together))
        return found

    def __enter__(self) -> DomainSampler:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="domain-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for conn in self._conns.values():
            with contextlib.suppress(libvirt.libvirtError):
                conn.close()
        self._conns.clear()
