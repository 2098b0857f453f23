"""Fleet benchmark: the real Controller converging N VMs on N/10 simulated hosts.

Each host is a controller.sim SimHost behind the agent's HTTP contract, with measured
libvirt latencies (controller.sim.Latency; `--latency-scale 0` for none). Per size:
- converge: passes from an empty fleet until one converges (wall, CPU, passes, actions);
- no-op: a pass on the converged fleet (target < 200 ms at 10,000 VMs);
- rebalance: the plan after a tenth of the hosts were put in maintenance (actions, time);
- restart: a new Controller on the same store: first pass wall time and actions (must be 0);
- gc: one full collection of the converged process's heap, before and after gc.freeze()
  (as Controller.run freezes after its first pass);
- memory: the process's peak RSS (target < 500 MB).
Then how each figure grows with the fleet. Figures are printed, never asserted.

Run: python bench/bench_fleet.py [--sizes 1000,5000,10000] [--store URL]
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.agentpool import AgentPool
from controller.loop import Controller, PassResult, SourceSetting, freeze_heap
from controller.sim import Latency, SimFleet, write_fleet
from controller.sources import DirectorySource
from controller.store import open_store

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
    rebalance_s: float = 0.0
    rebalance_actions: int = 0
    restart_s: float = 0.0
    restart_actions: int = 0
    running: int = 0
    double_starts: int = 0
    rss_mb: float = 0.0
    gc_full_s: float = 0.0
    gc_frozen_s: float = 0.0


def controller(store, root: Path, fleet: SimFleet, parallel: int) -> Controller:
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


def run(vms: int, url: str | None, latency: Latency, parallel: int) -> Row:
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    manifests = work / "manifests"
    names = write_fleet(manifests, vms)
    row = Row(vms=vms, hosts=len(names))
    fleet = SimFleet(names, latency=latency)
    store = open_store(url or f"sqlite:///{work / 'corral.db'}")
    ctl = controller(store, manifests, fleet, parallel)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(MAX_PASSES):
        result = ctl.reconcile()
        row.passes += 1
        row.actions += len(result.plan.actions)
        if result.converged:
            break
    row.converge_s = time.perf_counter() - wall
    row.converge_cpu_s = time.process_time() - cpu
    gc.collect()
    row.gc_full_s = full_collection_s()
    freeze_heap()
    row.gc_frozen_s = full_collection_s()
    noop = [timed_pass(ctl) for _ in range(3)]
    best = min(noop, key=lambda n: n[1])
    row.noop_s, row.noop_cpu_s = best[1], best[2]
    if any(n[0].plan.actions for n in noop):
        print(f"  warning: no-op pass planned {len(noop[-1][0].plan.actions)} actions")

    ctl.pool.close()
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
    restarted.pool.close()
    store.close()
    gc.unfreeze()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,10000")
    parser.add_argument("--store", default=None, help="database URL (default: SQLite in /tmp)")
    parser.add_argument("--latency-scale", type=float, default=1.0)
    parser.add_argument("--parallel", type=int, default=128, help="executor threads")
    args = parser.parse_args()
    latency = Latency().scaled(args.latency_scale)
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
        f"latency x{args.latency_scale:g} (start {latency.start_s * args.latency_scale:.2f} s, "
        f"define {latency.define_s * args.latency_scale:.3f} s); {args.parallel} executor threads"
    )
    rows = []
    for vms in (int(s) for s in args.sizes.split(",")):
        rows.append(run(vms, args.store, latency, args.parallel))
        r = rows[-1]
        print(
            f"{r.vms:>6} VMs {r.hosts:>5} hosts: converge {r.converge_s:6.1f} s "
            f"(CPU {r.converge_cpu_s:5.1f} s, {r.passes} passes, {r.actions} actions) | "
            f"no-op {r.noop_s * 1000:6.0f} ms (CPU {r.noop_cpu_s * 1000:.0f} ms) | "
            f"rebalance plan {r.rebalance_s * 1000:6.0f} ms, {r.rebalance_actions} actions | "
            f"restart pass {r.restart_s * 1000:6.0f} ms, {r.restart_actions} actions | "
            f"running {r.running}, started twice {r.double_starts} | "
            f"full GC {r.gc_full_s * 1000:.0f} ms, frozen {r.gc_frozen_s * 1000:.0f} ms | "
            f"peak RSS {r.rss_mb:.0f} MB",
            flush=True,
        )
    first = rows[0]
    for r in rows[1:]:
        print(
            f"x{r.vms / first.vms:g} VMs: converge x{r.converge_s / first.converge_s:.1f}, "
            f"no-op x{r.noop_s / first.noop_s:.1f}, "
            f"rebalance x{r.rebalance_s / max(first.rebalance_s, 1e-9):.1f}, "
            f"restart x{r.restart_s / max(first.restart_s, 1e-9):.1f}"
        )
    last = rows[-1]
    for name, value, target in (
        ("converge", last.converge_s, 60.0),
        ("no-op pass", last.noop_s, 0.2),
        ("peak RSS MB", last.rss_mb, 500.0),
    ):
        verdict = "meets" if value < target else "misses"
        print(f"{name} at {last.vms} VMs: {value:.2f} ({verdict} the target {target:g})")


if __name__ == "__main__":
    main()
