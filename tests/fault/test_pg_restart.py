"""PostgreSQL itself restarted, crashed or stopped for seconds while the Controller reconciles.

The store runs on a private cluster (tests.helpers.private_pg), never the machine's
shared server. The fault strikes just before the N-th mutating agent call of the fleet
(so between two actions of a plan, with other actions in flight), either synchronously
or racing the pass's own store writes. After it, passes run until the fleet converges;
then no VM may be lost, running twice, defined twice or started twice, the store must
read back consistent to a new controller, and a leader must have stood down while the
database was gone. Each test prints the faults it injected and the violations it found
(run with -s to see them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from controller.agents import AgentClient
from controller.leader import LeaderElector, lead
from controller.loop import Controller, PassResult
from controller.sim import write_fleet
from controller.store import Store, StoreError, open_store
from schemas.meta import ConditionStatus, ConditionType
from tests.e2e.e2ekit import AgentProcess
from tests.fault.faultkit import Clock, FaultFleet, Report, verbs_in
from tests.helpers.private_pg import PrivatePostgres, private_pg, private_pg_url
from tests.helpers.replicas import (
    VM_MANIFEST,
    ControllerProcess,
    one_host_fleet,
    test_driver_agent,
)

__all__ = ["private_pg", "private_pg_url", "test_driver_agent"]  # fixtures used here

PASS_BUDGET = 40
STORE_RETRY_S = 0.5
OUTAGE_S = 3.0
LEASE_TTL_S = 2.0


@dataclass
class Trigger:
    """Counts mutating agent calls (verbs) fleet-wide; runs `fault` once, before the
    request carrying call number `at` (a batch carries several).

    Every mutating call's send time is kept, so a test can tell what ran during an outage.
    """

    at: int | None = None
    fault: Callable[[], None] | None = None
    calls: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def before_call(self, verbs: int = 1) -> None:
        with self.lock:
            before = len(self.calls)
            self.calls.extend([time.monotonic()] * verbs)
            due = self.at is not None and before < self.at <= len(self.calls)
        if due and self.fault is not None:
            self.fault()


class AtCall(httpx.BaseTransport):
    """Forwards to a host's transport, telling the trigger of each mutating call first."""

    def __init__(self, inner: httpx.BaseTransport, trigger: Trigger) -> None:
        self.inner = inner
        self.trigger = trigger

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "GET":
            self.trigger.before_call(verbs_in(request))
        return self.inner.handle_request(request)


class WallClock(Clock):
    """The real UTC clock, for tests whose leases and terms run on real time."""

    def __call__(self) -> datetime:
        return datetime.now(UTC)

    def jump(self, seconds: float) -> None:
        """Real time moves by itself."""


class PgFaultFleet(FaultFleet):
    """A FaultFleet whose agent links report to `trigger`."""

    def __init__(self, root: Path, url: str, vms: int = 60) -> None:
        super().__init__(root, vms=vms, url=url)
        self.trigger = Trigger()

    def transport_for(self, host: str) -> httpx.BaseTransport | None:
        inner = super().transport_for(host)
        return None if inner is None else AtCall(inner, self.trigger)


@pytest.fixture
def pg_fleet(tmp_path: Path, private_pg_url: str) -> Iterator[PgFaultFleet]:
    fleet = PgFaultFleet(tmp_path, private_pg_url)
    yield fleet
    fleet.close()


def converge(fleet: FaultFleet, ctl: Controller) -> PassResult:
    """Run passes until one converges; a pass that fails on the store is retried after a
    short wait (Controller.run waits longer), so an outage of seconds is ridden out."""
    last = None
    for _ in range(PASS_BUDGET):
        try:
            last = ctl.reconcile()
        except StoreError as exc:
            fleet.report.add(f"pass failed on the store ({type(exc).__name__})")
            time.sleep(STORE_RETRY_S)
            continue
        fleet.clock.jump(1)
        if last.converged:
            return last
    raise AssertionError(f"not converged in {PASS_BUDGET} passes: {last and last.not_ready[:5]}")


def check_store(fleet: FaultFleet) -> int:
    """Record store inconsistencies: an object not Ready at its generation, a change log
    out of order, more plans left open than passes failed, or a plan a new controller (a
    new process on the same store) would run. Return how many plans were left open."""
    report = fleet.report
    failed_passes = sum(n for k, n in report.faults.items() if k.startswith("pass failed"))
    with open_store(fleet.url, clock=fleet.clock) as store:
        # A pass that fails on the store after recording its plan cannot finish it; the
        # history keeps it open (the loop never reads it back).
        open_plans = sum(p.finished_at is None for p in store.list_plans(limit=1000))
        if open_plans > failed_passes:
            report.violations.append(f"{open_plans} plans open after {failed_passes} failed passes")
        for item in store.list().items:
            status = item.obj.status
            ready = status.condition(ConditionType.READY.value) if status else None
            if ready is None or ready.status is not ConditionStatus.TRUE:
                report.violations.append(f"{item.kind}/{item.name} not Ready in the store")
            elif status.observed_generation != item.generation:
                report.violations.append(
                    f"{item.kind}/{item.name} status is of generation "
                    f"{status.observed_generation}, object is at {item.generation}"
                )
        seqs = [c.seq for c in store.changes_since(0, limit=1_000_000)]
        if seqs and seqs != list(range(seqs[0], seqs[-1] + 1)):
            # Numbers come from a counter bumped in the same transaction as the change
            # rows: a gap or a repeat means a transaction was half kept.
            report.violations.append("change log numbers skip, repeat or go backwards")
        if seqs and store.revision() != seqs[-1]:
            report.violations.append(f"revision {store.revision()} is not the newest change")
        if store.list_deleted():
            report.violations.append("tombstones left after convergence")
    fresh = fleet.controller()
    result = fresh.reconcile()
    if result.plan.actions:
        first = [a.message for a in result.plan.actions[:3]]
        report.violations.append(f"a new controller plans {len(result.plan.actions)}: {first}")
    if result.not_ready:
        report.violations.append(f"a new controller finds not ready: {result.not_ready[:5]}")
    return open_plans


def finish(fleet: FaultFleet, name: str) -> None:
    open_plans = check_store(fleet)
    report = fleet.check()
    report.print(name)
    print(f"  plans left open by a pass that failed on the store: {open_plans}")
    assert report.faults, "the test injected no fault"
    assert report.violations == []


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_pooled_connections_dead_after_a_restart_are_replaced(
    private_pg_url: str, private_pg: PrivatePostgres, mode: str
) -> None:
    """Every connection the pool held died with the server; the first store call after
    the restart gets a new one instead of failing (and so does every later one)."""
    with open_store(private_pg_url) as store:
        before = store.revision()
        pids = {backend_pid(store) for _ in range(3)}
        private_pg.restart(mode)
        assert store.revision() == before
        assert store.list_plans() == []
        assert pids.isdisjoint({backend_pid(store)})


def backend_pid(store: Store) -> int:
    """Return the server process id of the connection the store's pool hands out now."""
    with store.engine.connect() as conn:
        return conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
@pytest.mark.parametrize("after", [1, 23, 55])
def test_restart_between_actions(
    pg_fleet: PgFaultFleet, private_pg: PrivatePostgres, mode: str, after: int
) -> None:
    """The server restarts (fast: sessions rolled back; immediate: a crash and WAL
    recovery) just before the N-th agent call; the call then runs on a dead pool."""

    def restart() -> None:
        private_pg.restart(mode)
        pg_fleet.report.add(f"PostgreSQL restarted -m {mode}")

    pg_fleet.trigger.at, pg_fleet.trigger.fault = after, restart
    converge(pg_fleet, pg_fleet.controller())
    finish(pg_fleet, f"restart -m {mode} before agent call {after}")


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_restart_races_the_pass_writes(
    pg_fleet: PgFaultFleet, private_pg: PrivatePostgres, mode: str
) -> None:
    """The restart runs beside the pass (not inside an agent call), so it lands wherever
    the pass is: recording outcomes and events, reading hosts, writing status."""
    threads: list[threading.Thread] = []

    def restart_beside() -> None:
        thread = threading.Thread(target=private_pg.restart, args=(mode,))
        thread.start()
        threads.append(thread)
        pg_fleet.report.add(f"PostgreSQL restarted -m {mode} beside the pass")

    pg_fleet.trigger.at, pg_fleet.trigger.fault = 30, restart_beside
    converge(pg_fleet, pg_fleet.controller())
    for thread in threads:
        thread.join()
    finish(pg_fleet, f"restart -m {mode} racing the pass")


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_outage_of_seconds_mid_pass(
    pg_fleet: PgFaultFleet, private_pg: PrivatePostgres, mode: str
) -> None:
    """The server stops mid-pass and comes back OUTAGE_S seconds later: passes fail on the
    store meanwhile, and the first pass after it finishes the work."""
    timers: list[threading.Timer] = []

    def stop_for_a_while() -> None:
        private_pg.stop(mode)
        pg_fleet.report.add(f"PostgreSQL stopped -m {mode} for {OUTAGE_S:g} s")
        timer = threading.Timer(OUTAGE_S, private_pg.start)
        timer.start()
        timers.append(timer)

    pg_fleet.trigger.at, pg_fleet.trigger.fault = 17, stop_for_a_while
    converge(pg_fleet, pg_fleet.controller())
    for timer in timers:
        timer.join()
    assert any("pass failed" in k for k in pg_fleet.report.faults), pg_fleet.report.faults
    finish(pg_fleet, f"outage -m {mode} of {OUTAGE_S:g} s")


def test_running_loop_rides_out_an_outage(
    pg_fleet: PgFaultFleet, private_pg: PrivatePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    """Controller.run itself (source poller and all) meets an outage mid-pass: it logs the
    store as unavailable, waits, and converges once the server is back."""
    pg_fleet.clock = WallClock()
    back = threading.Event()

    def stop_for_a_while() -> None:
        private_pg.stop("immediate")
        pg_fleet.report.add(f"PostgreSQL crashed for {OUTAGE_S:g} s under Controller.run")

        def start() -> None:
            private_pg.start()
            back.set()

        threading.Timer(OUTAGE_S, start).start()

    pg_fleet.trigger.at, pg_fleet.trigger.fault = 11, stop_for_a_while
    ctl = pg_fleet.controller()
    stop = threading.Event()
    passes: list[PassResult] = []

    def on_pass(result: PassResult) -> None:
        passes.append(result)
        if back.is_set() and result.converged:
            stop.set()

    runner = threading.Thread(target=ctl.run, args=(stop,), kwargs={"on_pass": on_pass})
    runner.start()
    runner.join(timeout=90)
    stop.set()
    runner.join()
    assert back.is_set() and passes and passes[-1].converged, [p.not_ready[:3] for p in passes]
    failed = [r for r in caplog.records if "pass failed: the store is unavailable" in r.message]
    assert failed, "no pass met the outage"
    pg_fleet.report.add("pass failed on the store (logged by Controller.run)", len(failed))
    finish(pg_fleet, "outage under Controller.run")


def make_ha(fleet: FaultFleet, lease_ttl_s: int) -> None:
    """Rewrite the fleet's manifests: every VM HA, every host leased for `lease_ttl_s`."""
    hosts = fleet.manifests / "hosts.yaml"
    fencing = f"  virtualization: qemu\n  fencing:\n    leaseTtlS: {lease_ttl_s}\n"
    hosts.write_text(hosts.read_text().replace("  virtualization: qemu\n", fencing))
    for path in fleet.manifests.glob("vms-*.yaml"):
        ha = "  template: small\n  ha:\n    enabled: true\n"
        path.write_text(path.read_text().replace("  template: small\n", ha))


def test_an_outage_longer_than_the_host_leases_stops_no_ha_vm(
    pg_fleet: PgFaultFleet, private_pg: PrivatePostgres
) -> None:
    """The control plane is out of the data path: the store down for longer than the
    hosts' lease TTL stops no HA VM, and once the server is back Controller.run restarts,
    redefines and moves nothing. (The simulated hosts run without etcd and never fence;
    agents with etcd keep their leases alive without the controller, tests/agent.)"""
    ttl_s = 2
    make_ha(pg_fleet, ttl_s)
    pg_fleet.clock = WallClock()
    ctl = pg_fleet.controller()
    stop = threading.Event()
    passes: list[tuple[float, PassResult]] = []
    runner = threading.Thread(
        target=ctl.run,
        args=(stop,),
        kwargs={"on_pass": lambda r: passes.append((time.monotonic(), r))},
    )
    runner.start()
    try:
        assert wait_for(lambda: bool(passes) and passes[-1][1].converged, 60)
        placed = pg_fleet.fleet.running()
        starts = pg_fleet.fleet.starts()
        private_pg.stop("fast")
        time.sleep(ttl_s + OUTAGE_S)
        pg_fleet.report.add(f"PostgreSQL stopped for {ttl_s + OUTAGE_S:g} s (host lease {ttl_s} s)")
        during = pg_fleet.fleet.running()
        up_at = time.monotonic()
        private_pg.start()
        converged = wait_for(lambda: any(at > up_at and r.converged for at, r in passes), 60)
    finally:
        stop.set()
        runner.join()
    assert converged, [(round(at - up_at, 1), r.not_ready[:2]) for at, r in passes]
    fenced = {r.vm for host in pg_fleet.fleet.hosts.values() for r in host.lease_state().fenced}
    acted = [a.message for at, r in passes if at > up_at for a in r.plan.actions]
    assert (fenced, during, acted) == (set(), placed, [])
    assert (pg_fleet.fleet.running(), pg_fleet.fleet.starts()) == (placed, starts)
    print(f"\n{pg_fleet.vms} HA VMs ran through the outage where they were, none restarted")
    finish(pg_fleet, "outage longer than the host leases, HA VMs")


@dataclass
class Replica:
    """One `corral controller` replica: an elector, its current term's controller and the
    passes its terms ran, as (monotonic time, epoch, result)."""

    identity: str
    elector: LeaderElector
    controller: Controller | None = None
    passes: list[tuple[float, int, PassResult]] = field(default_factory=list)


def test_leader_stands_down_while_postgres_is_down(
    tmp_path: Path, private_pg_url: str, private_pg: PrivatePostgres
) -> None:
    """Two replicas elect a leader on the private cluster; new VMs arrive and the server
    stops in the middle of the pass that starts them, for longer than the lead's TTL.
    The pass in flight may finish its actions while the lead is still valid; after that
    no agent is acted on and both replicas stand down. More VMs arrive meanwhile; once the
    server is back, one replica leads and starts them, each VM started once."""
    fleet = PgFaultFleet(tmp_path, private_pg_url, vms=12)
    fleet.clock = WallClock()
    stop = threading.Event()
    replicas = [
        Replica(name, LeaderElector(open_store(private_pg_url), name, ttl_s=LEASE_TTL_S))
        for name in ("ctl-a", "ctl-b")
    ]
    fleet.stores.extend(r.elector.store for r in replicas)
    threads = [
        threading.Thread(
            target=lead, args=(r.elector, term_of(fleet, r), stop), kwargs={"retry_s": 0.3}
        )
        for r in replicas
    ]
    down = threading.Event()
    down_at = [0.0]

    def stop_mid_pass() -> None:
        private_pg.stop("fast")
        down_at[0] = time.monotonic()
        down.set()
        fleet.report.add(
            f"PostgreSQL stopped mid-pass under a leader for {OUTAGE_S + LEASE_TTL_S:g} s"
        )

    try:
        for thread in threads:
            thread.start()
        assert wait_for(lambda: converged_since(replicas, 0.0), 60), passes_seen(replicas, 0.0)

        fleet.trigger.at, fleet.trigger.fault = len(fleet.trigger.calls) + 4, stop_mid_pass
        fleet.vms = 24
        write_fleet(fleet.manifests, fleet.vms, hosts=len(fleet.names))
        for replica in replicas:
            if replica.controller is not None:
                replica.controller.trigger()
        assert down.wait(30), "the leader never acted on the new VMs"
        time.sleep(OUTAGE_S + LEASE_TTL_S)
        fleet.vms = 30  # more work that only a leader after the outage can do
        write_fleet(fleet.manifests, fleet.vms, hosts=len(fleet.names))
        leaders_while_down = [r.identity for r in replicas if r.elector.current is not None]
        up_at = time.monotonic()
        private_pg.start()

        lease_over = down_at[0] + LEASE_TTL_S
        in_lease = [t for t in fleet.trigger.calls if down_at[0] <= t < lease_over]
        after_lease = [t for t in fleet.trigger.calls if lease_over <= t < up_at]
        fleet.report.add("agent calls of the pass in flight, within the lead", len(in_lease))
        if after_lease:
            fleet.report.violations.append(
                f"{len(after_lease)} agent calls after the lead ran out with PostgreSQL down"
            )
        if leaders_while_down:
            fleet.report.violations.append(f"leading with the store down: {leaders_while_down}")

        assert wait_for(lambda: converged_since(replicas, up_at), 60), passes_seen(replicas, up_at)
        terms = {(r.identity, epoch) for r in replicas for at, epoch, _ in r.passes if at >= up_at}
        if len(terms) != 1:
            fleet.report.violations.append(f"terms that ran passes after the outage: {terms}")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    report = fleet.check()
    report.print("leader with PostgreSQL down")
    fleet.close()
    assert report.violations == []


def term_of(
    fleet: FaultFleet, replica: Replica
) -> Callable[[int], Callable[[threading.Event], None]]:
    """Return a `start` for controller.leader.lead, as replica_term in controller.cli.controller
    does: each term a new Controller fenced with the term's epoch; a term that cannot start
    (the store is down) ends at once and the replica stands by again."""

    def start(epoch: int) -> Callable[[threading.Event], None]:
        try:
            ctl = fleet.controller(identity=replica.identity)
        except StoreError:
            return lambda _term_stop: None
        ctl.store.set_fencing_token(epoch)
        ctl.term = epoch
        replica.controller = ctl

        def on_pass(result: PassResult) -> None:
            replica.passes.append((time.monotonic(), epoch, result))

        return lambda term_stop: ctl.run(term_stop, on_pass=on_pass)

    return start


def converged_since(replicas: list[Replica], since: float) -> bool:
    """Return whether some replica's pass that started after `since` converged."""
    return any(
        result.converged and at - result.elapsed_s >= since
        for r in replicas
        for at, _epoch, result in r.passes
    )


def passes_seen(replicas: list[Replica], since: float) -> str:
    """Return the passes run after `since`, one line each, for a failure message."""
    lines = [
        f"{r.identity} term {epoch} at +{at - since:.1f}s: {len(result.plan.actions)} actions,"
        f" {len(result.failed)} failed {[o.error for o in result.failed[:2]]},"
        f" not ready {result.not_ready[:3]}, requeue {result.requeue_after_s:.1f}s"
        for r in replicas
        for at, epoch, result in r.passes
        if at >= since
    ]
    return "not converged after the outage; passes:\n" + "\n".join(lines)


def wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Poll `condition` every 0.1 s until it holds or `timeout_s` passes; return it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_corral_controller_replicas_stand_down_and_one_returns(
    tmp_path: Path,
    private_pg_url: str,
    private_pg: PrivatePostgres,
    test_driver_agent: AgentProcess,
) -> None:
    """Two `corral controller` processes and a real agent (libvirt's test driver). The
    server stops for longer than the lead's TTL while a new VM is committed: the leader's
    term ends, nothing is defined meanwhile; once the server is back one replica leads,
    the VM runs and the agent has seen the store's term on its calls."""
    manifests = one_host_fleet(tmp_path, test_driver_agent.address)
    client = AgentClient(test_driver_agent.address)
    replicas: list[ControllerProcess] = []
    report = Report()
    try:
        replicas = [
            ControllerProcess(name, manifests, private_pg_url, tmp_path, LEASE_TTL_S)
            for name in ("ctl-a", "ctl-b")
        ]
        logs = lambda: "\n".join(f"--- {r.identity}\n{r.output()[-3000:]}" for r in replicas)  # noqa: E731
        assert wait_for(lambda: domains(client).get("vm-a") == "running", 90), logs()
        assert wait_for(lambda: sum("leading in term" in r.output() for r in replicas) == 1, 10)
        assert wait_for(lambda: all(r.standing_by() for r in replicas), 60), logs()

        private_pg.stop("fast")
        down_at = time.monotonic()
        report.add(f"PostgreSQL stopped for {OUTAGE_S + LEASE_TTL_S:g} s under two replicas")
        (manifests / "vm-b.yaml").write_text(VM_MANIFEST.format(name="vm-b"))
        ended = wait_for(lambda: any(" over; standing by" in r.output() for r in replicas), 10)
        stood_down_s = time.monotonic() - down_at
        time.sleep(max(0.0, OUTAGE_S + LEASE_TTL_S - stood_down_s))
        if not ended:
            report.violations.append("the leader's term did not end with the store down")
        if "vm-b" in domains(client):
            report.violations.append("vm-b was defined while the store was down")
        leading_before = [r.output().count("leading in term") for r in replicas]
        private_pg.start()
        up_at = time.monotonic()

        assert wait_for(lambda: domains(client).get("vm-b") == "running", 90), logs()
        back_s = time.monotonic() - up_at
        with open_store(private_pg_url) as store:
            term = store.leader_term()
        lease = client.get_lease()
        led_after = [
            r.identity
            for r, before in zip(replicas, leading_before, strict=True)
            if r.output().count("leading in term") > before
        ]
        if len(led_after) != 1:
            report.violations.append(f"replicas that led after the outage: {led_after}")
        elif lease.term != term.epoch:
            report.violations.append(
                f"the agent's newest controller term {lease.term} is not the store's {term.epoch}"
            )
        if any(r.process.poll() is not None for r in replicas):
            report.violations.append("a replica exited")
        print(
            f"\nleader stood down {stood_down_s:.1f} s after PostgreSQL stopped"
            f" (lease {LEASE_TTL_S:g} s); {led_after} led again and vm-b ran"
            f" {back_s:.1f} s after it started (term {term.epoch})"
        )
    finally:
        for replica in replicas:
            replica.end()
    report.print("corral controller replicas with PostgreSQL down")
    assert report.violations == [], logs()


def domains(client: AgentClient) -> dict[str, str]:
    """Return the agent's domains by name, with their state."""
    return {d.name: d.state for d in client.get_state().domains}


def test_corral_controller_started_before_its_store_waits_for_it(
    tmp_path: Path,
    private_pg_url: str,
    private_pg: PrivatePostgres,
    test_driver_agent: AgentProcess,
) -> None:
    """A replica started while PostgreSQL is down does not exit: it waits for the store
    (one warning), then leads and reconciles once the server is back."""
    manifests = one_host_fleet(tmp_path, test_driver_agent.address)
    client = AgentClient(test_driver_agent.address)
    private_pg.stop("fast")
    replica = ControllerProcess("ctl-a", manifests, private_pg_url, tmp_path, LEASE_TTL_S)
    report = Report()
    try:
        report.add("PostgreSQL down when the replica started")
        assert wait_for(lambda: "waiting for the store" in replica.output(), 60), replica.output()
        time.sleep(LEASE_TTL_S)
        if replica.process.poll() is not None:
            report.violations.append(f"the replica exited {replica.process.returncode}")
        if replica.standing_by() or "vm-a" in domains(client):
            report.violations.append("the replica went on without its store")
        private_pg.start()
        up_at = time.monotonic()
        assert wait_for(lambda: domains(client).get("vm-a") == "running", 60), replica.output()
        print(f"\nvm-a ran {time.monotonic() - up_at:.1f} s after PostgreSQL started")
        if replica.output().count("waiting for the store") != 1:
            report.violations.append("the wait was not logged exactly once")
    finally:
        replica.end()
    report.print("corral controller started before PostgreSQL")
    assert report.violations == [], replica.output()
    assert replica.process.returncode == 0, replica.output()
