"""PowerSaving: the hours (wrapping midnight), packing underused hosts, empty hosts reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from test_scheduler_fixtures import anti, apply_moves, host, policy, vm, with_allocations

from controller.scheduler.balance import in_hours, plan_rebalance

WIDE = {"maxMigrationsPerHost": 16, "maxMigrationsFleet": 64}


def at(hh: int, mm: int = 0) -> datetime:
    return datetime(2024, 5, 1, hh, mm, tzinfo=UTC)


@pytest.mark.parametrize(
    ("hours", "now", "inside"),
    [
        pytest.param(None, at(12), True, id="unset-always"),
        pytest.param("22:00-06:00", at(23), True, id="wrap-late-evening"),
        pytest.param("22:00-06:00", at(3), True, id="wrap-early-morning"),
        pytest.param("22:00-06:00", at(22), True, id="wrap-start-inclusive"),
        pytest.param("22:00-06:00", at(6), False, id="wrap-end-exclusive"),
        pytest.param("22:00-06:00", at(5, 59), True, id="wrap-minute-before-end"),
        pytest.param("22:00-06:00", at(21, 59), False, id="wrap-minute-before-start"),
        pytest.param("22:00-06:00", at(12), False, id="wrap-midday"),
        pytest.param("01:00-05:00", at(0, 30), False, id="plain-before"),
        pytest.param("01:00-05:00", at(1), True, id="plain-start"),
        pytest.param("01:00-05:00", at(5), False, id="plain-end"),
        pytest.param("00:00-00:00", at(13), True, id="equal-ends-whole-day"),
        pytest.param(
            "22:00-06:00",
            datetime(2024, 5, 1, 1, 0, tzinfo=timezone(timedelta(hours=2))),
            True,
            id="converted-to-utc",
        ),
    ],
)
def test_power_saving_hours(hours, now, inside):
    assert in_hours(hours, now) is inside


def saving(hours: str | None = None, **balancer):
    return policy(
        balancer={"type": "PowerSaving", "powerSavingHours": hours, **balancer},
        disruptionBudget=WIDE,
        overcommit={"cpuRatio": 64},
    )


def fleet(spec: dict[str, list[int]], mem_gi: int = 16):
    vms, placements = [], {}
    for h, sizes in spec.items():
        for i, size in enumerate(sizes):
            vms.append(vm(f"{h}-{i}", cpus=0.1, mem_gi=size))
            placements[f"{h}-{i}"] = h
    hosts = [host(h, mem_gi=mem_gi) for h in spec]
    return with_allocations(hosts, vms, placements), vms, placements


ROWS = [
    # id, {host: vm sizes GiB of 16}, groups, expected moves, expected empty hosts
    ("nothing-underused", {"a": [8], "b": [8]}, [], [], []),
    (
        "empty-underused-host-onto-fullest",
        {"a": [2], "b": [8], "c": [6]},
        [],
        [("a-0", "a", "b")],
        ["a"],
    ),
    (
        "two-underused-hosts",
        {"a": [1], "b": [2], "c": [8]},
        [],
        [("a-0", "a", "c"), ("b-0", "b", "c")],
        ["a", "b"],
    ),
    (
        "receiver-stays-below-high",
        {"a": [3], "b": [11]},
        [],
        [],
        [],
    ),
    (
        "all-vms-of-host-move",
        {"a": [1, 2], "b": [9]},
        [],
        [("a-1", "a", "b"), ("a-0", "a", "b")],
        ["a"],
    ),
    (
        "spills-to-next-fullest-host",
        {"a": [2, 1], "b": [10], "c": [11]},
        [],
        [("a-0", "a", "b"), ("a-1", "a", "c")],
        ["a"],
    ),
    (
        "partial-fit-leaves-host-alone",
        {"a": [1, 2], "b": [11]},
        [],
        [],
        [],
    ),
    (
        "anti-affinity-blocks-evacuation",
        {"a": [2], "b": [8]},
        [anti("g", ["a-0", "b-0"])],
        [],
        [],
    ),
    (
        "already-empty-host-reported",
        {"a": [], "b": [8]},
        [],
        [],
        ["a"],
    ),
]


@pytest.mark.parametrize(
    ("spec", "groups", "expected", "empty"), [pytest.param(*r[1:], id=r[0]) for r in ROWS]
)
def test_power_saving(spec, groups, expected, empty):
    hosts, vms, placements = fleet(spec)
    plan = plan_rebalance(hosts, vms, placements, saving(), at(12), groups)
    assert [(m.vm, m.source, m.target) for m in plan.moves] == expected
    assert list(plan.empty_hosts) == empty
    after = apply_moves(placements, plan.moves)
    again = plan_rebalance(
        with_allocations(hosts, vms, after), vms, after, saving(), at(12), groups
    )
    assert again.moves == ()


def test_outside_hours_balances_evenly_instead():
    hosts, vms, placements = fleet({"a": [2], "b": [4, 4], "c": []})
    inside = plan_rebalance(hosts, vms, placements, saving("22:00-06:00"), at(23))
    outside = plan_rebalance(hosts, vms, placements, saving("22:00-06:00"), at(12))
    assert [(m.vm, m.target, m.reason) for m in inside.moves] == [("a-0", "b", "PowerSaving")]
    assert inside.empty_hosts == ("a", "c")
    assert [(m.vm, m.target, m.reason) for m in outside.moves] == [("b-0", "c", "Rebalance")]
    assert outside.empty_hosts == ()


def test_budget_spreads_an_evacuation_over_passes():
    hosts, vms, placements = fleet({"a": [1, 1, 1], "b": [8]})
    pol = policy(
        balancer={"type": "PowerSaving"},
        disruptionBudget={"maxMigrationsPerHost": 2, "maxMigrationsFleet": 8},
    )
    first = plan_rebalance(hosts, vms, placements, pol, at(12))
    assert len(first.moves) == 2 and first.empty_hosts == ()
    after = apply_moves(placements, first.moves)
    second = plan_rebalance(with_allocations(hosts, vms, after), vms, after, pol, at(12))
    assert len(second.moves) == 1 and second.empty_hosts == ("a",)


def test_message_says_why():
    hosts, vms, placements = fleet({"a": [2], "b": [8]})
    (move,) = plan_rebalance(hosts, vms, placements, saving(), at(12)).moves
    assert move.message == "Moving a-0 from a to b: a is underused and can then be powered off"
