"""Properties of the balancer over random fleets: no flapping, nothing broken by a move."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from test_scheduler_fixtures import anti, apply_moves, host, policy, vm, with_allocations

from controller.scheduler import check_placement
from controller.scheduler.balance import plan_rebalance

NOON = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@st.composite
def fleets(draw):
    n_hosts = draw(st.integers(2, 5))
    hosts = [host(f"h{i}", cpus=64, mem_gi=draw(st.sampled_from([8, 16]))) for i in range(n_hosts)]
    free = {h.name: h.memory_capacity for h in hosts}
    vms, placements = [], {}
    for i in range(draw(st.integers(0, 12))):
        size = draw(st.sampled_from([1, 2, 3]))
        where = draw(st.sampled_from([h.name for h in hosts]))
        if free[where] < size * 2**30:
            continue
        free[where] -= size * 2**30
        vms.append(vm(f"v{i:02d}", cpus=0.5, mem_gi=size))
        placements[f"v{i:02d}"] = where
    groups = []
    names = sorted(placements)
    if len(names) >= 2 and draw(st.booleans()):
        members = draw(st.lists(st.sampled_from(names), min_size=2, max_size=4, unique=True))
        if len({placements[m] for m in members}) == len(members):
            groups.append(anti("apart", members))
    kind = draw(st.sampled_from(["EvenDistribution", "PowerSaving"]))
    pol = policy(
        balancer={
            "type": kind,
            "minimumBenefitPercent": draw(st.sampled_from([0, 5, 10, 25])),
            "highUtilizationPercent": draw(st.sampled_from([70, 80, 100])),
            "lowUtilizationPercent": draw(st.sampled_from([10, 20, 40])),
        },
        disruptionBudget={"maxMigrationsPerHost": 64, "maxMigrationsFleet": 1024},
    )
    return with_allocations(hosts, vms, placements), vms, placements, groups, pol, kind


@settings(max_examples=60, deadline=None)
@given(fleets())
def test_rebalance_settles_and_never_breaks_rules(fleet):
    hosts, vms, placements, groups, pol, kind = fleet
    seen = [placements]
    for _ in range(len(vms) + 2):
        plan = plan_rebalance(hosts, vms, placements, pol, NOON, groups, max_moves=1024)
        if not plan.moves:
            break
        placements = apply_moves(placements, plan.moves)
        assert placements not in seen, "a pass returned the fleet to an earlier layout"
        seen.append(placements)
        hosts = with_allocations(hosts, vms, placements)
        if kind == "EvenDistribution":
            again = plan_rebalance(hosts, vms, placements, pol, NOON, groups, max_moves=1024)
            assert again.moves == ()
    else:
        raise AssertionError("rebalancing did not settle")
    used = Counter()
    for v in vms:
        used[placements[v.name]] += v.memory
        assert check_placement(v, placements[v.name], hosts, pol, groups, placements) == []
    for h in hosts:
        assert used[h.name] <= h.memory_capacity
