"""Fleet benchmark: the real Controller converging N VMs on N/10 simulated hosts.

Each host is a controller.sim SimHost behind the agent's HTTP contract, with measured
libvirt latencies (controller.sim.Latency; `--latency-scale 0` for none). By default the
simulated fleet runs in a process of its own and is reached over HTTP on loopback
(controller.sim.serve), so the controller's CPU and memory are the controller's alone;
`--sim inline` keeps it in this process (cheaper, but the figures then include it). Per size:
- converge: passes from an empty fleet until one leaves it converged: after its actions
  the hosts read again leave nothing to do and every object is Ready (PassResult.settled)
  (wall, CPU, passes, actions);
- no-op: a pass on the converged fleet when nothing changed (a quiet pass: the store
  has not moved, so the last plan stands; target < 200 ms at 10,000 VMs), and a full
  no-op pass that lists and plans everything again (as one does every `replan_s`);
- rebalance: the plan after a tenth of the hosts were put in maintenance (actions, time);
- restart: a new Controller on the same store: first pass wall time and actions (must be 0);
- gc: one full collection of the converged process's heap, before and after gc.freeze()
  (as Controller.run freezes after its first pass);
- memory: the controller process's peak RSS (target < 500 MB), and the simulator's.
Then how each figure grows with the fleet. Figures are printed, never asserted.

Run: python bench/bench_fleet.py [--sizes 1000,5000,10000] [--store URL]
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.agentpool import AgentPool
from controller.loop import Controller, PassResult, SourceSetting, freeze_heap
from controller.malloc import tune_malloc
from controller.sim import Latency, write_fleet
from controller.sim.routed import RoutedTransport
from controller.sources import DirectorySource
from controller.store import open_store

if TYPE_CHECKING:
    from controller.sim import SimFleet

MAX_PASSES = 12


@dataclass
class Row:
    vms: int
    hosts: int
    converge_s: float = 0.0
    converge_cpu_s: float = 0.0
    passes: int = 0
    actions: int = 0
    noop_s: float = 0.0
    noop_cpu_s: float = 0.0
    full_noop_s: float = 0.0
    full_noop_cpu_s: float = 0.0
    rebalance_s: float = 0.0
    rebalance_actions: int = 0
    restart_s: float = 0.0
    restart_actions: int = 0
    running: int = 0
    double_starts: int = 0
    rss_mb: float = 0.0
    converge_rss_mb: float = 0.0
    sim_rss_mb: float = 0.0
    gc_full_s: float = 0.0
    gc_frozen_s: float = 0.0


class Fleet:
    """The simulated fleet, in this process or served from a child process."""

    def __init__(self, names: list[str], latency_scale: float, mode: str) -> None:
        self.child: subprocess.Popen[str] | None = None
        if mode == "inline":
            from controller.sim import SimFleet  # the simulated hosts: only in this mode

            self.inline: SimFleet | None = SimFleet(names, latency=Latency().scaled(latency_scale))
            self.transport_for = self.inline.transport_for
            return
        self.inline = None
        self.child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "controller.sim.serve",
                "--hosts",
                ",".join(names),
                "--latency-scale",
                str(latency_scale),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.child.stdout is not None
        self.port = int(self.child.stdout.readline())
        self.transport_for = lambda _host: RoutedTransport(self.port)

    def _view(self, what: str) -> dict:
        import httpx

        return httpx.get(f"http://127.0.0.1:{self.port}/_sim/{what}", timeout=120).json()

    def running(self) -> dict[str, list[str]]:
        return self.inline.running() if self.inline else self._view("running")

    def starts(self) -> dict[str, int]:
        return self.inline.starts() if self.inline else self._view("starts")

    def peak_rss_mb(self) -> float:
        if self.child is None:
            return 0.0
        for line in Path(f"/proc/{self.child.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def close(self) -> None:
        if self.child is not None:
            self.child.kill()
            self.child.wait()


def controller(store, root: Path, fleet: Fleet, parallel: int) -> Controller:
    source = DirectorySource(root, name="dir:fleet")
    return Controller(
        store,
        [SourceSetting(source, "dir", "fleet", prune=True)],
        AgentPool(transport_for=fleet.transport_for),
        max_parallel=parallel,
        resync_s=3600,
        busy_requeue_s=0.0,
        observe_interval_s=30.0,
        source_resync_s=300.0,
    )


def timed_pass(ctl: Controller) -> tuple[PassResult, float, float]:
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    result = ctl.reconcile()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def full_collection_s() -> float:
    """Return the wall time of one full garbage collection."""
    start = time.perf_counter()
    gc.collect()
    return time.perf_counter() - start


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(vms: int, url: str | None, latency_scale: float, parallel: int, mode: str) -> Row:
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    manifests = work / "manifests"
    names = write_fleet(manifests, vms)
    row = Row(vms=vms, hosts=len(names))
    fleet = Fleet(names, latency_scale, mode)
    store = open_store(url or f"sqlite:///{work / 'corral.db'}")
    ctl = controller(store, manifests, fleet, parallel)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(MAX_PASSES):
        result = ctl.reconcile()
        row.passes += 1
        row.actions += len(result.plan.actions)
        settled = result.settled
        del result  # as Controller.run does: the pass's plan goes before the next pass
        if settled:
            break
    row.converge_s = time.perf_counter() - wall
    row.converge_cpu_s = time.process_time() - cpu
    row.converge_rss_mb = rss_mb()
    gc.collect()
    row.gc_full_s = full_collection_s()
    freeze_heap()
    row.gc_frozen_s = full_collection_s()
    noop = [timed_pass(ctl) for _ in range(5)]
    quiet = [n for n in noop if not n[0].replanned] or noop
    best = min(quiet, key=lambda n: n[1])
    row.noop_s, row.noop_cpu_s = best[1], best[2]
    ctl.replan_s = 0.0
    full = min((timed_pass(ctl) for _ in range(3)), key=lambda n: n[1])
    row.full_noop_s, row.full_noop_cpu_s = full[1], full[2]
    if any(n[0].plan.actions for n in noop) or full[0].plan.actions:
        print("  warning: a no-op pass planned actions")

    ctl.pool.close()
    del ctl, noop, quiet, best, full  # a restart is a new process: drop the old one
    gc.unfreeze()
    gc.collect()
    restarted = controller(store, manifests, fleet, parallel)
    result, row.restart_s, _ = timed_pass(restarted)
    row.restart_actions = len(result.plan.actions)

    from controller.plan import plan

    drained = set(names[: max(1, len(names) // 10)])
    desired_objs = {(s.kind, s.name): s.obj for s in store.list().items}
    for key, obj in list(desired_objs.items()):
        if key[0] == "Host" and key[1] in drained:
            desired_objs[key] = obj.model_copy(
                update={"spec": obj.spec.model_copy(update={"maintenance": True})}
            )
    from controller.loop import policy_context
    from controller.observe import read_observed
    from controller.plan import Desired

    stored = store.list().items
    desired = Desired(desired_objs, revision="bench")
    observed = read_observed(store, restarted.clock())
    start = time.perf_counter()
    moves = plan(desired, observed, policy_context(stored))
    row.rebalance_s = time.perf_counter() - start
    row.rebalance_actions = len(moves.actions)

    running = fleet.running()
    row.running = sum(1 for hosts in running.values() if len(hosts) == 1)
    row.double_starts = sum(1 for n in fleet.starts().values() if n > 1)
    row.rss_mb = rss_mb()
    row.sim_rss_mb = fleet.peak_rss_mb()
    restarted.pool.close()
    fleet.close()
    store.close()
    gc.unfreeze()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,10000")
    parser.add_argument("--store", default=None, help="database URL (default: SQLite in /tmp)")
    parser.add_argument("--latency-scale", type=float, default=1.0)
    parser.add_argument("--parallel", type=int, default=128, help="executor threads")
    parser.add_argument(
        "--sim", choices=["process", "inline"], default="process", help="where the fleet runs"
    )
    args = parser.parse_args()
    latency = Latency().scaled(args.latency_scale)
    tuned = tune_malloc()  # as `corral controller` and `corral up` do
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
        f"latency x{args.latency_scale:g} (start {latency.start_s * latency.scale:.2f} s, "
        f"define {latency.define_s * latency.scale:.3f} s); {args.parallel} executor threads; "
        f"simulated fleet {'in its own process, over HTTP' if args.sim == 'process' else 'inline'}"
        f"; "
        f"glibc malloc {'tuned' if tuned else 'not tuned'} (controller.malloc)"
    )
    rows = []
    for vms in (int(s) for s in args.sizes.split(",")):
        rows.append(run(vms, args.store, args.latency_scale, args.parallel, args.sim))
        r = rows[-1]
        print(
            f"{r.vms:>6} VMs {r.hosts:>5} hosts: converge {r.converge_s:6.1f} s "
            f"(CPU {r.converge_cpu_s:5.1f} s, {r.passes} passes, {r.actions} actions) | "
            f"no-op {r.noop_s * 1000:6.1f} ms (CPU {r.noop_cpu_s * 1000:.1f} ms), "
            f"full no-op {r.full_noop_s * 1000:5.0f} ms (CPU {r.full_noop_cpu_s * 1000:.0f} ms) | "
            f"rebalance plan {r.rebalance_s * 1000:6.0f} ms, {r.rebalance_actions} actions | "
            f"restart pass {r.restart_s * 1000:6.0f} ms, {r.restart_actions} actions | "
            f"running {r.running}, started twice {r.double_starts} | "
            f"full GC {r.gc_full_s * 1000:.0f} ms, frozen {r.gc_frozen_s * 1000:.0f} ms | "
            f"peak RSS {r.rss_mb:.0f} MB, converging {r.converge_rss_mb:.0f} MB "
            f"(simulator {r.sim_rss_mb:.0f} MB)",
            flush=True,
        )
    first = rows[0]
    for r in rows[1:]:
        print(
            f"x{r.vms / first.vms:g} VMs: converge x{r.converge_s / first.converge_s:.1f}, "
            f"no-op x{r.noop_s / first.noop_s:.1f}, "
            f"full no-op x{r.full_noop_s / first.full_noop_s:.1f}, "
            f"RSS x{r.rss_mb / first.rss_mb:.1f}, "
            f"rebalance x{r.rebalance_s / max(first.rebalance_s, 1e-9):.1f}, "
            f"restart x{r.restart_s / max(first.restart_s, 1e-9):.1f}"
        )
    last = rows[-1]
    for name, value, target, unit in (
        ("converge", last.converge_s, 60.0, "s"),
        ("no-op pass", last.noop_s * 1000, 200.0, "ms"),
        ("controller peak RSS", last.rss_mb, 500.0, "MB"),
    ):
        verdict = "meets" if value < target else "misses"
        print(f"{name} at {last.vms} VMs: {value:.1f} {unit} ({verdict} the target {target:g})")
    print(
        f"full no-op pass (lists and plans everything, every replan_s) at {last.vms} VMs: "
        f"{last.full_noop_s * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
