"""Scheduler benchmark: placements per second and balancer plan time at fleet scale.

Fleet: 1,000 hosts (32 CPUs, 128Gi, three zones, two networks, two pools) and 10,000
VMs (1-4 CPUs, 1-8Gi) with 200 affinity groups resolved by label selector: hard and
soft anti-affinity, hard and soft affinity, VM-host rules. Figures are printed, not
asserted. Target: >= 1,000 placements/s.

Run: python bench/bench_scheduler.py [--vms N] [--hosts N]
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import replace
from datetime import UTC, datetime

from controller.plan.model import PolicyContext
from controller.scheduler import AffinityIndex, SchedulingPass, schedule_many, schedule_vm
from controller.scheduler.balance import plan_drain, plan_rebalance
from controller.scheduler.model import HostView, VMRequest
from schemas.affinity import AffinityGroup
from schemas.meta import LabelSelector
from schemas.policy import SchedulingPolicySpec

GI = 2**30
SEED = 7
TARGET_PER_S = 1000


def make_hosts(count: int) -> list[HostView]:
    return [
        HostView(
            name=f"host-{i:04d}",
            labels={"zone": "abc"[i % 3], "rack": f"r{i // 40}"},
            cpu_capacity_milli=32_000,
            memory_capacity=128 * GI,
            reserved_cpu_milli=1000,
            reserved_memory=4 * GI,
            networks=frozenset({"lan", "storage"} if i % 10 else {"lan"}),
            pools=frozenset({"local", "shared"}),
        )
        for i in range(count)
    ]


def make_vms(count: int, rng: random.Random) -> list[VMRequest]:
    zone_a = LabelSelector(match_labels={"zone": "a"})
    vms = []
    for i in range(count):
        vms.append(
            VMRequest(
                name=f"vm-{i:05d}",
                labels={"app": f"app-{i % 200}", "tier": "web" if i % 2 else "db"},
                cpu_milli=rng.choice([1000, 2000, 4000]),
                memory=rng.choice([1, 2, 4, 8]) * GI,
                networks=frozenset({"lan", "storage"} if i % 3 == 0 else {"lan"}),
                pools=frozenset({"shared"}),
                host_selector=zone_a if i % 17 == 0 else None,
                ha_priority=rng.choice([0, 50, 90]),
                ha=i % 4 == 0,
            )
        )
    return vms


def make_groups(count: int) -> list[AffinityGroup]:
    groups = []
    for g in range(count):
        kind = g % 5
        spec: dict = {"vmSelector": {"matchLabels": {"app": f"app-{g}"}}}
        if kind == 0:
            spec["vmRule"] = {"polarity": "negative", "enforcement": "hard"}
        elif kind == 1:
            spec["vmRule"] = {"polarity": "negative", "enforcement": "soft"}
        elif kind == 2:
            spec["vmRule"] = {"polarity": "positive", "enforcement": "soft"}
        elif kind == 3:
            spec["hostSelector"] = {"matchLabels": {"rack": f"r{g % 25}"}}
            spec["hostRule"] = {"polarity": "negative", "enforcement": "hard"}
        else:
            spec["hostSelector"] = {"matchLabels": {"zone": "b"}}
            spec["hostRule"] = {"polarity": "positive", "enforcement": "soft"}
        groups.append(
            AffinityGroup.model_validate({"metadata": {"name": f"group-{g:03d}"}, "spec": spec})
        )
    return groups


def with_allocations(
    hosts: list[HostView], vms: list[VMRequest], placements: dict[str, str]
) -> list[HostView]:
    cpu: dict[str, int] = {}
    mem: dict[str, int] = {}
    size = {v.name: v for v in vms}
    for name, where in placements.items():
        cpu[where] = cpu.get(where, 0) + size[name].cpu_milli
        mem[where] = mem.get(where, 0) + size[name].memory
    return [
        replace(h, cpu_allocated_milli=cpu.get(h.name, 0), memory_allocated=mem.get(h.name, 0))
        for h in hosts
    ]


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def timed_cpu(fn):
    """Return (result, wall seconds, CPU seconds of this process)."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, default=1_000)
    args = parser.parse_args()
    rng = random.Random(SEED)
    hosts = make_hosts(args.hosts)
    vms = make_vms(args.vms, rng)
    groups = make_groups(200)
    labels = {v.name: v.labels for v in vms}
    policy = PolicyContext(by_host={})

    index, t_index = timed(lambda: AffinityIndex(groups, labels))
    print(f"affinity index: {len(groups)} groups over {len(vms)} VMs in {t_index * 1000:.1f} ms")

    placements, t_many, cpu_many = timed_cpu(
        lambda: schedule_many(vms, hosts, policy, index, {}, labels)
    )
    placed = {p.vm: p.host for p in placements if p.host is not None}
    rate = len(vms) / t_many
    print(
        f"schedule_many: {len(vms)} VMs on {len(hosts)} hosts in {t_many:.2f} s = "
        f"{rate:,.0f} placements/s wall, {len(vms) / cpu_many:,.0f}/s of CPU time "
        f"(target >= {TARGET_PER_S:,}: {'met' if rate >= TARGET_PER_S else 'MISSED'}); "
        f"{len(placed)} placed, {len(vms) - len(placed)} fit nowhere"
    )
    _, t_verdicts = timed(lambda: [list(p.verdicts) for p in placements[:10]])
    print(
        f"verdicts: building all {len(hosts)} HostVerdicts of one placement takes "
        f"{t_verdicts / 10 * 1000:.1f} ms (only when read)"
    )

    loaded = with_allocations(hosts, vms, placed)
    extra = VMRequest(
        name="vm-new",
        labels={"app": "app-0"},
        cpu_milli=2000,
        memory=4 * GI,
        networks=frozenset({"lan"}),
    )
    calls = 20
    _, t_one = timed(
        lambda: [schedule_vm(extra, loaded, policy, index, placed) for _ in range(calls)]
    )
    print(
        f"schedule_vm (one-off call, fleet columns built each time): "
        f"{t_one / calls * 1000:.1f} ms per call"
    )

    session = SchedulingPass(loaded, policy, index, placed)
    by_name = {v.name: v for v in vms}
    _, t_check = timed(
        lambda: [session.violations(by_name[name], where) for name, where in placed.items()]
    )
    print(
        f"check_placement: {len(placed)} running VMs in {t_check:.2f} s "
        f"({len(placed) / t_check:,.0f}/s through one SchedulingPass)"
    )

    skewed_hosts = list(loaded)
    for i in range(0, len(skewed_hosts), 10):
        skewed_hosts[i] = replace(skewed_hosts[i], maintenance=False)
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    for kind, budget in (("EvenDistribution", 4), ("EvenDistribution", 64), ("PowerSaving", 64)):
        spec = SchedulingPolicySpec.model_validate(
            {
                "balancer": {"type": kind},
                "disruptionBudget": {"maxMigrationsPerHost": 2, "maxMigrationsFleet": budget},
            }
        )
        pol = PolicyContext(by_host={}, default=spec)
        plan, t_plan = timed(
            lambda pol=pol: plan_rebalance(loaded, vms, placed, pol, now, index, labels)
        )
        print(
            f"plan_rebalance {kind} (fleet budget {budget}) on {len(hosts)} hosts / "
            f"{len(placed)} VMs: {t_plan * 1000:.0f} ms, {len(plan.moves)} moves, "
            f"{len(plan.empty_hosts)} empty hosts"
        )

    drained = hosts[0].name
    draining = [replace(h, maintenance=True) if h.name == drained else h for h in loaded]
    wide = PolicyContext(
        by_host={},
        default=SchedulingPolicySpec.model_validate(
            {"disruptionBudget": {"maxMigrationsPerHost": 64, "maxMigrationsFleet": 1024}}
        ),
    )
    drain, t_drain = timed(lambda: plan_drain(drained, draining, vms, placed, wide, index, labels))
    print(
        f"plan_drain of {drained} ({len(drain.moves) + len(drain.blocked)} VMs): "
        f"{t_drain * 1000:.0f} ms, {len(drain.moves)} moves, {len(drain.blocked)} blocked"
    )


if __name__ == "__main__":
    main()
