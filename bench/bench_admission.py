"""HA admission control benchmark: simulate the loss of every host, at fleet scale.

Fleets of 10 VMs per host: 1,000 hosts / 10,000 VMs and 5,000 hosts / 50,000 VMs. Hosts
have 32 CPUs and 128Gi in three zones; VMs take 1-4 CPUs and 1-8Gi, one in four has HA
on (priorities 0/50/90), spread round-robin so every host holds HA VMs; 200 affinity
groups by label (hard and soft anti-affinity, soft affinity) and one host in 50 in
maintenance. Figures (printed, not asserted): the time of assess_ha_admission (one
simulated loss per host that is up) with every restart target, then verdict only (as
the planner asks it every pass: losses cleared by counting place nothing), and one
what_if_down of two hosts. The first figure also bounds the second: a fleet where counting
clears no loss (HA VMs that fit on fewer hosts than their host holds HA VMs, as under
hard anti-affinity or pins) is simulated in full.

Run: python bench/bench_admission.py [--sizes 1000,5000]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.plan.model import PolicyContext
from controller.scheduler import AffinityIndex
from controller.scheduler.admission import assess_ha_admission, what_if_down
from controller.scheduler.model import HostView, VMRequest
from schemas.affinity import AffinityGroup

GI = 2**30
SEED = 11
VMS_PER_HOST = 10
GROUPS = 200


def make_hosts(count: int) -> list[HostView]:
    return [
        HostView(
            name=f"host-{i:05d}",
            labels={"zone": "abc"[i % 3]},
            cpu_capacity_milli=32_000,
            memory_capacity=128 * GI,
            reserved_cpu_milli=1000,
            reserved_memory=4 * GI,
            maintenance=i % 50 == 49,
            networks=frozenset({"lan"}),
            pools=frozenset({"shared"}),
        )
        for i in range(count)
    ]


def make_vms(count: int, rng: random.Random) -> list[VMRequest]:
    return [
        VMRequest(
            name=f"vm-{i:06d}",
            labels={"app": f"app-{i % GROUPS}"},
            cpu_milli=rng.choice([1000, 2000, 4000]),
            memory=rng.choice([1, 2, 4, 8]) * GI,
            networks=frozenset({"lan"}),
            pools=frozenset({"shared"}),
            ha=i % 4 == 0,
            ha_priority=rng.choice([0, 50, 90]),
        )
        for i in range(count)
    ]


def make_groups() -> list[AffinityGroup]:
    rules = [
        {"polarity": "negative", "enforcement": "hard"},
        {"polarity": "negative", "enforcement": "soft"},
        {"polarity": "positive", "enforcement": "soft"},
    ]
    return [
        AffinityGroup.model_validate(
            {
                "metadata": {"name": f"group-{g:03d}"},
                "spec": {
                    "vmSelector": {"matchLabels": {"app": f"app-{g}"}},
                    "vmRule": rules[g % len(rules)],
                },
            }
        )
        for g in range(GROUPS)
    ]


def placed_fleet(
    hosts: list[HostView], vms: list[VMRequest]
) -> tuple[list[HostView], dict[str, list[VMRequest]]]:
    """Return the hosts with allocations and the VMs on each (round-robin over hosts up)."""
    targets = [h for h in hosts if not h.maintenance]
    by_host: dict[str, list[VMRequest]] = {}
    for i, vm in enumerate(vms):
        by_host.setdefault(targets[i % len(targets)].name, []).append(vm)
    out = []
    for h in hosts:
        mine = by_host.get(h.name, [])
        out.append(
            HostView(
                **{
                    **h.__dict__,
                    "cpu_allocated_milli": sum(v.cpu_milli for v in mine),
                    "memory_allocated": sum(v.memory for v in mine),
                    "vms": frozenset(v.name for v in mine),
                }
            )
        )
    return out, by_host


def bench(host_count: int) -> None:
    rng = random.Random(SEED)
    hosts = make_hosts(host_count)
    vms = make_vms(host_count * VMS_PER_HOST, rng)
    views, by_host = placed_fleet(hosts, vms)
    labels = {v.name: v.labels for v in vms}
    policy = PolicyContext(by_host={})
    start = time.perf_counter()
    index = AffinityIndex(make_groups(), labels)
    t_index = time.perf_counter() - start
    print(
        f"{host_count:,} hosts / {len(vms):,} VMs ({sum(v.ha for v in vms):,} HA); affinity "
        f"index {t_index * 1000:.0f} ms (the planner's, built once per pass; not counted)"
    )
    for targets in (True, False):
        start, cpu = time.perf_counter(), time.process_time()
        admission = assess_ha_admission(
            views, by_host, policy, index, None, labels, targets=targets
        )
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        placed = sum(1 for o in admission.per_host for d in o.restarts + o.stranded if d.placement)
        stranded = sum(len(o.stranded) for o in admission.per_host)
        print(
            f"  assess_ha_admission ({'with targets' if targets else 'verdict only'}): "
            f"{wall:.2f} s wall, {cpu:.2f} s CPU, {len(admission.per_host):,} losses, "
            f"{placed:,} restarts placed, {stranded:,} stranded: {admission.message}"
        )
    down = {views[0].name, views[1].name}
    start = time.perf_counter()
    outcome = what_if_down(down, views, by_host, policy, index, None, labels)
    print(
        f"  what_if_down {sorted(down)}: {(time.perf_counter() - start) * 1000:.0f} ms, "
        f"{len(outcome.restarts)} restarts, {len(outcome.stranded)} stranded, "
        f"{len(outcome.lost)} lost"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000", help="host counts, comma-separated")
    args = parser.parse_args()
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for size in (int(s) for s in args.sizes.split(",")):
        bench(size)


if __name__ == "__main__":
    main()
