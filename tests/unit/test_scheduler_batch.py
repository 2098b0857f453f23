"""schedule_many: HA priority order, a running tally, and nothing double-booked."""

from __future__ import annotations

from test_scheduler_fixtures import GI, host, policy, vm

from controller.scheduler import SchedulingPass, schedule_many


def test_priority_then_name_order_wins_scarce_capacity():
    hosts = [host("a", mem_gi=4)]
    vms = [
        vm("z-low", mem_gi=2, ha_priority=10),
        vm("b-mid", mem_gi=2, ha_priority=50),
        vm("a-mid", mem_gi=2, ha_priority=50),
        vm("c-high", mem_gi=2, ha_priority=90),
    ]
    placements = schedule_many(vms, hosts, policy())
    assert [(p.vm, p.host) for p in placements] == [
        ("c-high", "a"),
        ("a-mid", "a"),
        ("b-mid", None),
        ("z-low", None),
    ]
    assert placements[2].message == (
        "No host has 1 CPU and 2Gi memory free (1 host filtered: a memory full)"
    )


def test_tally_spreads_a_batch_evenly():
    hosts = [host("a"), host("b"), host("c")]
    placements = schedule_many([vm(f"v{i}", mem_gi=4) for i in range(6)], hosts, policy())
    assert [p.host for p in placements] == ["a", "b", "c", "a", "b", "c"]


def test_tally_packs_a_batch():
    hosts = [host("a", mem_gi=8), host("b", mem_gi=8)]
    placements = schedule_many(
        [vm(f"v{i}", mem_gi=3) for i in range(4)], hosts, policy(weights=[{"name": "Pack"}])
    )
    assert [p.host for p in placements] == ["a", "a", "b", "b"]


def test_existing_allocations_are_respected():
    hosts = [host("a", mem_gi=8, used_gi=7), host("b", mem_gi=8, used_gi=6)]
    placements = schedule_many([vm("v1", mem_gi=2), vm("v2", mem_gi=1)], hosts, policy())
    assert [(p.vm, p.host) for p in placements] == [("v1", "b"), ("v2", "a")]


def test_input_host_views_are_not_changed():
    hosts = [host("a")]
    schedule_many([vm("v1", mem_gi=4)], hosts, policy())
    assert hosts[0].memory_allocated == 0


def test_commit_moves_allocation_between_hosts():
    session = SchedulingPass(
        [host("a", mem_gi=8, used_gi=4), host("b", mem_gi=8)], policy(), placements={"v": "a"}
    )
    session.commit(vm("v", mem_gi=4), "b")
    assert session.host_of("v") == "b"
    assert list(session.fleet.mem_alloc) == [0, 4 * GI]


def test_commit_to_unknown_host_names_the_field():
    import pytest

    session = SchedulingPass([host("a")], policy())
    with pytest.raises(ValueError, match="host: 'x' is not one of the scheduler's hosts"):
        session.commit(vm("v"), "x")


def test_evaluating_a_placed_vm_gives_its_own_allocation_back():
    session = SchedulingPass([host("a", mem_gi=8, used_gi=8)], policy(), placements={"v": "a"})
    assert session.evaluate(vm("v", mem_gi=8)).host == "a"
