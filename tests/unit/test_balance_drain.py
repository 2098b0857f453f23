"""plan_drain: every VM off a host in maintenance, in priority order, within the budget."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_scheduler_fixtures import anti, apply_moves, host, policy, vm, with_allocations

from controller.scheduler.balance import plan_drain

WIDE = {"maxMigrationsPerHost": 16, "maxMigrationsFleet": 64}


def fleet(spec: dict[str, list[tuple[str, float, int]]], maintenance: str = "a", mem_gi=16):
    """{host: [(vm, GiB, ha priority)]} -> hosts (one in maintenance), vms, placements."""
    vms, placements = [], {}
    for h, items in spec.items():
        for name, size, prio in items:
            vms.append(vm(name, cpus=0.1, mem_gi=size, ha_priority=prio))
            placements[name] = h
    hosts = [host(h, mem_gi=mem_gi, maintenance=h == maintenance) for h in spec]
    return with_allocations(hosts, vms, placements), vms, placements


def summary(plan):
    return (
        [(m.vm, m.target) for m in plan.moves],
        [(b.vm, b.reason) for b in plan.blocked],
    )


ROWS = [
    # id, spec, budget, groups, moves [(vm, target)], blocked [(vm, reason)]
    ("empty-host-done", {"a": [], "b": []}, WIDE, [], [], []),
    (
        "all-move-spread",
        {"a": [("v1", 2, 0), ("v2", 2, 0)], "b": [], "c": []},
        WIDE,
        [],
        [("v1", "b"), ("v2", "c")],
        [],
    ),
    (
        "priority-first",
        {"a": [("low", 2, 10), ("high", 2, 90)], "b": [("x", 12, 0)]},
        WIDE,
        [],
        [("high", "b"), ("low", "b")],
        [],
    ),
    (
        "capacity-runs-out-by-priority",
        {"a": [("low", 2, 10), ("high", 2, 90)], "b": [("x", 13, 0)]},
        WIDE,
        [],
        [("high", "b")],
        [("low", "NoHostFits")],
    ),
    (
        "per-host-budget",
        {"a": [("v1", 1, 0), ("v2", 1, 0), ("v3", 1, 0)], "b": [], "c": []},
        {"maxMigrationsPerHost": 2, "maxMigrationsFleet": 8},
        [],
        [("v1", "b"), ("v2", "c")],
        [("v3", "WaitingForBudget")],
    ),
    (
        "fleet-budget",
        {"a": [("v1", 1, 0), ("v2", 1, 0), ("v3", 1, 0)], "b": [], "c": []},
        {"maxMigrationsPerHost": 8, "maxMigrationsFleet": 1},
        [],
        [("v1", "b")],
        [("v2", "WaitingForBudget"), ("v3", "WaitingForBudget")],
    ),
    (
        "target-budget-spreads-moves",
        {"a": [("v1", 1, 0), ("v2", 1, 0)], "b": [], "c": [("big", 12, 0)]},
        {"maxMigrationsPerHost": 1, "maxMigrationsFleet": 8},
        [],
        [("v1", "b")],
        [("v2", "WaitingForBudget")],
    ),
    (
        "anti-affinity-respected",
        {"a": [("db-1", 1, 0), ("db-2", 1, 0)], "b": [("db-3", 1, 0)], "c": []},
        WIDE,
        [anti("db", ["db-1", "db-2", "db-3"])],
        [("db-1", "c")],
        [("db-2", "NoHostFits")],
    ),
]


@pytest.mark.parametrize(
    ("spec", "budget", "groups", "moves", "blocked"),
    [pytest.param(*r[1:], id=r[0]) for r in ROWS],
)
def test_drain(spec, budget, groups, moves, blocked):
    hosts, vms, placements = fleet(spec)
    plan = plan_drain("a", hosts, vms, placements, policy(disruptionBudget=budget), groups)
    assert summary(plan) == (moves, blocked)
    assert plan.done is (not moves and not blocked)
    assert all(m.source == "a" and m.reason == "Drain" for m in plan.moves)


def test_drain_converges_over_passes_within_budget():
    hosts, vms, placements = fleet({"a": [(f"v{i}", 1, 0) for i in range(5)], "b": [], "c": []})
    pol = policy(disruptionBudget={"maxMigrationsPerHost": 2, "maxMigrationsFleet": 2})
    passes = 0
    while True:
        plan = plan_drain("a", with_allocations(hosts, vms, placements), vms, placements, pol)
        if plan.done:
            break
        assert len(plan.moves) <= 2
        placements = apply_moves(placements, plan.moves)
        passes += 1
    assert passes == 3
    assert "a" not in placements.values()


def test_in_flight_migrations_count():
    hosts, vms, placements = fleet({"a": [("v1", 1, 0), ("v2", 1, 0)], "b": []})
    hosts[0] = replace(hosts[0], migrations_in_flight=1)
    pol = policy(disruptionBudget={"maxMigrationsPerHost": 2, "maxMigrationsFleet": 8})
    assert summary(plan_drain("a", hosts, vms, placements, pol)) == (
        [("v1", "b")],
        [("v2", "WaitingForBudget")],
    )


def test_messages():
    hosts, vms, placements = fleet(
        {"a": [("db-1", 1, 0), ("db-2", 1, 0), ("pinned", 1, 0)], "b": [("db-3", 1, 0)]}
    )
    vms = [replace(v, migratable=False) if v.name == "pinned" else v for v in vms]
    plan = plan_drain("a", hosts, vms, placements, policy(), [anti("db", ["db-1", "db-3"])])
    assert [(b.vm, b.message) for b in plan.blocked] == [
        (
            "db-1",
            "db-1 cannot leave a and keeps running there: No host has 100m CPU and 1Gi memory "
            "free allowed by its affinity groups (2 hosts filtered: a maintenance, being "
            "drained, b anti-affinity group db: 1 member there)",
        ),
        ("pinned", "pinned stays on a: its migration policy forbids live migration"),
    ]
    assert [m.message for m in plan.moves] == [
        "Moving db-2 off a (maintenance): Placed on b (score 0.88; 1 host filtered)"
    ]


def test_unknown_host_is_a_clear_error():
    with pytest.raises(ValueError, match="host: 'zz' is not one of the scheduler's hosts"):
        plan_drain("zz", [host("a")], [], {}, policy())
