"""EvenDistribution: thresholds, minimum benefit, hard rules, budget, and no flapping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from test_scheduler_fixtures import (
    anti,
    apply_moves,
    group,
    host,
    policy,
    together,
    vm,
    with_allocations,
)

from controller.scheduler.balance import plan_rebalance

NOON = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
WIDE = {"maxMigrationsPerHost": 16, "maxMigrationsFleet": 64}


def even(**balancer):
    return policy(
        balancer={"type": "EvenDistribution", **balancer},
        disruptionBudget=WIDE,
        overcommit={"cpuRatio": 64},
    )


def fleet(spec: dict[str, list[int]], mem_gi: int = 16):
    """{host: [vm sizes in GiB]} -> hosts, vms, placements (VM names host-index)."""
    vms, placements = [], {}
    for h, sizes in spec.items():
        for i, size in enumerate(sizes):
            name = f"{h}-{i}"
            vms.append(vm(name, cpus=0.1, mem_gi=size))
            placements[name] = h
    hosts = [host(h, mem_gi=mem_gi) for h in spec]
    return with_allocations(hosts, vms, placements), vms, placements


ROWS = [
    # id, {host: vm sizes}, balancer params, groups, expected moves [(vm, source, target)]
    ("balanced-no-moves", {"a": [4, 4], "b": [4, 4]}, {}, [], []),
    ("empty-fleet-no-moves", {"a": [], "b": []}, {}, [], []),
    ("gap-below-minimum-no-moves", {"a": [4, 2], "b": [4]}, {"minimumBenefitPercent": 25}, [], []),
    (
        "one-move-evens-two-hosts",
        {"a": [4, 4, 4], "b": [4]},
        {},
        [],
        [("a-0", "a", "b")],
    ),
    (
        "moves-to-least-loaded",
        {"a": [4, 4, 4, 4], "b": [4, 4], "c": []},
        {},
        [],
        [("a-0", "a", "c"), ("a-1", "a", "c")],
    ),
    (
        "picks-vm-that-best-closes-gap",
        {"a": [1, 6, 1], "b": []},
        {},
        [],
        [("a-1", "a", "b")],
    ),
    (
        "benefit-below-minimum-even-though-gap",
        {"a": [8], "b": []},
        {"minimumBenefitPercent": 10},
        [],
        [],
    ),
    (
        "above-high-moves-with-any-benefit",
        {"a": [14], "b": [10]},
        {"highUtilizationPercent": 80, "minimumBenefitPercent": 90},
        [],
        [],
    ),
    (
        "above-high-relieved-small-gain",
        {"a": [13, 1], "b": [11]},
        {"highUtilizationPercent": 80, "minimumBenefitPercent": 90},
        [],
        [("a-1", "a", "b")],
    ),
    (
        "target-never-pushed-above-high",
        {"a": [8, 6], "b": [8]},
        {"highUtilizationPercent": 60, "minimumBenefitPercent": 10},
        [],
        [],
    ),
    (
        "anti-affinity-blocks-move",
        {"a": [4, 4, 4], "b": [4]},
        {},
        [anti("g", ["a-0", "a-1", "a-2", "b-0"])],
        [],
    ),
    (
        "anti-affinity-partial-allows-another-vm",
        {"a": [4, 4, 4], "b": [4]},
        {},
        [anti("g", ["a-0", "b-0"])],
        [("a-1", "a", "b")],
    ),
    (
        "affinity-group-stays-together",
        {"a": [4, 4, 4], "b": []},
        {},
        [together("g", ["a-0", "a-1", "a-2"])],
        [],
    ),
    (
        "host-affinity-pins-vms",
        {"a": [4, 4, 4], "b": []},
        {},
        [group("g", vms=["a-0", "a-1", "a-2"], hosts=["a"], hostRule={"polarity": "positive"})],
        [],
    ),
]


@pytest.mark.parametrize(
    ("spec", "params", "groups", "expected"), [pytest.param(*r[1:], id=r[0]) for r in ROWS]
)
def test_even_distribution(spec, params, groups, expected):
    hosts, vms, placements = fleet(spec)
    plan = plan_rebalance(hosts, vms, placements, even(**params), NOON, groups)
    assert [(m.vm, m.source, m.target) for m in plan.moves] == expected
    assert all(m.reason == "Rebalance" for m in plan.moves)
    after = apply_moves(placements, plan.moves)
    again = plan_rebalance(
        with_allocations(hosts, vms, after), vms, after, even(**params), NOON, groups
    )
    assert again.moves == ()


def test_move_message_names_the_numbers():
    hosts, vms, placements = fleet({"a": [4, 4, 4], "b": [4]})
    (move,) = plan_rebalance(hosts, vms, placements, even(), NOON).moves
    assert move.message == (
        "Moving a-0 from a to b: a is 75% used, b 25%: the move closes the gap by 50%"
    )


def test_pinned_and_selector_vms_are_not_moved():
    from dataclasses import replace

    hosts, vms, placements = fleet({"a": [4, 4, 4], "b": []})
    hosts = [replace(hosts[0], labels={"zone": "a"}), replace(hosts[1], labels={"zone": "b"})]
    vms = [
        vm(v.name, cpus=0.1, mem_gi=4, pinned_host="a")
        if v.name == "a-0"
        else vm(v.name, cpus=0.1, mem_gi=4, selector={"matchLabels": {"zone": "a"}})
        for v in vms
    ]
    assert plan_rebalance(hosts, vms, placements, even(), NOON).moves == ()


def test_non_migratable_vm_stays():
    hosts, vms, placements = fleet({"a": [4, 4, 4], "b": [4]})
    vms = [vm(v.name, cpus=0.1, mem_gi=4, migratable=v.name != "a-0") for v in vms]
    plan = plan_rebalance(hosts, vms, placements, even(), NOON)
    assert [(m.vm, m.target) for m in plan.moves] == [("a-1", "b")]


@pytest.mark.parametrize(
    ("budget", "in_flight", "expected"),
    [
        pytest.param({"maxMigrationsPerHost": 1, "maxMigrationsFleet": 8}, 0, 1, id="per-host-1"),
        pytest.param({"maxMigrationsPerHost": 8, "maxMigrationsFleet": 2}, 0, 2, id="fleet-2"),
        pytest.param({"maxMigrationsPerHost": 8, "maxMigrationsFleet": 3}, 2, 1, id="in-flight"),
        pytest.param({"maxMigrationsPerHost": 2, "maxMigrationsFleet": 8}, 2, 0, id="host-busy"),
    ],
)
def test_budget_limits_moves(budget, in_flight, expected):
    hosts, vms, placements = fleet({"a": [2] * 8, "b": [], "c": []})
    from dataclasses import replace

    hosts[0] = replace(hosts[0], migrations_in_flight=in_flight)
    pol = policy(balancer={"type": "EvenDistribution"}, disruptionBudget=budget)
    assert len(plan_rebalance(hosts, vms, placements, pol, NOON).moves) == expected


def test_move_cap_per_pass():
    hosts, vms, placements = fleet({"a": [2] * 8, "b": [], "c": []})
    assert len(plan_rebalance(hosts, vms, placements, even(), NOON, max_moves=2).moves) == 2


def test_balancer_none_moves_nothing():
    hosts, vms, placements = fleet({"a": [4, 4, 4], "b": []})
    assert plan_rebalance(hosts, vms, placements, policy(), NOON).moves == ()


def test_maintenance_host_is_no_target():
    hosts, vms, placements = fleet({"a": [4, 4, 4], "b": []})
    from dataclasses import replace

    hosts[1] = replace(hosts[1], maintenance=True)
    assert plan_rebalance(hosts, vms, placements, even(), NOON).moves == ()
