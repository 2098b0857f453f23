"""plan_ha_restarts and stale copies: who restarts where, who waits, who stays."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_scheduler_fixtures import anti, host, policy, vm

from controller.ha import (
    AGENT_ANSWERING,
    ARBITER_UNREACHABLE,
    HA_RESTART,
    LEASE_EXPIRED,
    LEASE_HELD,
    NEVER_REACHED,
    NO_ARBITER,
    NO_HOST_FOR_RESTART,
    NOT_HIGHLY_AVAILABLE,
    NOT_PROVABLY_OFF,
    WAITING_FOR_FENCE,
    WAITING_FOR_LEASE,
    HostHealth,
    HostState,
    find_stale_copies,
    plan_ha_restarts,
)


def failed(name: str, safe: bool = True, reason: str | None = None) -> HostHealth:
    return HostHealth(
        name,
        HostState.FAILED,
        safe,
        reason or (LEASE_EXPIRED if safe else WAITING_FOR_LEASE),
        f"Host {name} failed" + ("" if safe else "; its HA VMs restart elsewhere at 12:00:15"),
    )


def summary(plan):
    return [(d.vm, d.host, d.reason, d.target) for d in plan.decisions]


def test_ha_vms_restart_by_priority_non_ha_stay():
    hosts = [host("dead", healthy=False), host("b", mem_gi=4), host("c", mem_gi=4)]
    on_dead = [
        vm("web", mem_gi=2, ha=True, ha_priority=50),
        vm("db", mem_gi=2, ha=True, ha_priority=90),
        vm("batch", mem_gi=2),
        vm("cache", mem_gi=2, ha=True, ha_priority=50),
    ]
    plan = plan_ha_restarts({"dead": failed("dead")}, {"dead": on_dead}, hosts, policy())
    assert summary(plan) == [
        ("db", "dead", HA_RESTART, "b"),
        ("cache", "dead", HA_RESTART, "c"),
        ("web", "dead", HA_RESTART, "b"),
        ("batch", "dead", NOT_HIGHLY_AVAILABLE, None),
    ]
    assert [d.vm for d in plan.restarts] == ["db", "cache", "web"]


def test_capacity_runs_out_lowest_priority_says_why():
    hosts = [host("dead", healthy=False, health_reason="failed"), host("b", mem_gi=4)]
    on_dead = [
        vm("low", mem_gi=3, ha=True, ha_priority=10),
        vm("high", mem_gi=3, ha=True, ha_priority=90),
    ]
    plan = plan_ha_restarts({"dead": failed("dead")}, {"dead": on_dead}, hosts, policy())
    assert summary(plan) == [
        ("high", "dead", HA_RESTART, "b"),
        ("low", "dead", NO_HOST_FOR_RESTART, None),
    ]
    assert plan.decisions[1].message == (
        "Cannot restart HA VirtualMachine low from failed host dead: No host has 1 CPU and 3Gi "
        "memory free (2 hosts filtered: b memory 1Gi free, dead unhealthy (failed), failed host)"
    )


@pytest.mark.parametrize(
    "reason", [WAITING_FOR_LEASE, NO_ARBITER, ARBITER_UNREACHABLE, NOT_PROVABLY_OFF,
               WAITING_FOR_FENCE],
)  # fmt: skip
def test_not_yet_safe_waits_with_the_hosts_reason(reason):
    hosts = [host("dead", healthy=False), host("b")]
    plan = plan_ha_restarts(
        {"dead": failed("dead", safe=False, reason=reason)},
        {"dead": [vm("web", ha=True), vm("batch")]},
        hosts,
        policy(),
    )
    assert summary(plan) == [
        ("web", "dead", reason, None),
        ("batch", "dead", NOT_HIGHLY_AVAILABLE, None),
    ]
    assert plan.decisions[0].message == (
        "Not restarting web: Host dead failed; its HA VMs restart elsewhere at 12:00:15"
    )
    assert plan.restarts == ()


def test_up_suspect_and_unknown_hosts_are_ignored():
    hosts = [host("a"), host("b"), host("c")]
    health = {
        "a": HostHealth("a", HostState.UP, False, AGENT_ANSWERING, ""),
        "b": HostHealth("b", HostState.SUSPECT, False, LEASE_HELD, ""),
        "c": HostHealth("c", HostState.UNKNOWN, False, NEVER_REACHED, ""),
    }
    plan = plan_ha_restarts(
        health,
        {"a": [vm("x", ha=True)], "b": [vm("y", ha=True)], "c": [vm("z", ha=True)]},
        hosts,
        policy(),
    )
    assert plan.decisions == ()


def test_restarts_respect_anti_affinity_with_survivors():
    hosts = [host("dead", healthy=False), host("b"), host("c", mem_gi=64)]
    plan = plan_ha_restarts(
        {"dead": failed("dead")},
        {"dead": [vm("db-2", ha=True)]},
        hosts,
        policy(),
        [anti("db", ["db-1", "db-2"])],
        {"db-1": "c", "db-2": "dead"},
    )
    assert summary(plan) == [("db-2", "dead", HA_RESTART, "b")]


def test_failed_host_is_never_a_target_even_with_health_filter_off():
    hosts = [host("dead"), host("b", mem_gi=1)]
    pol = policy(filters=["CPU", "Memory"])
    plan = plan_ha_restarts(
        {"dead": failed("dead")}, {"dead": [vm("web", mem_gi=2, ha=True)]}, hosts, pol
    )
    assert summary(plan) == [("web", "dead", NO_HOST_FOR_RESTART, None)]


def test_two_failed_hosts_share_the_survivor():
    hosts = [host("d1", healthy=False), host("d2", healthy=False), host("ok", mem_gi=4)]
    plan = plan_ha_restarts(
        {"d1": failed("d1"), "d2": replace(failed("d2"), state=HostState.FENCED)},
        {
            "d1": [vm("a", mem_gi=2, ha=True, ha_priority=1)],
            "d2": [vm("b", mem_gi=2, ha=True, ha_priority=2), vm("c", mem_gi=2, ha=True)],
        },
        hosts,
        policy(),
    )
    assert summary(plan) == [
        ("b", "d2", HA_RESTART, "ok"),
        ("a", "d1", HA_RESTART, "ok"),
        ("c", "d2", NO_HOST_FOR_RESTART, None),
    ]


def test_stale_copies_on_returning_host():
    copies = {"web": False, "db": True, "own": True, "orphan": False}
    placements = {"web": "b", "db": "c", "own": "back"}
    stale = find_stale_copies("back", copies, placements)
    assert [(c.vm, c.placed_on, c.destroy, c.undefine, c.reason) for c in stale] == [
        ("db", "c", True, True, "StaleCopy"),
        ("web", "b", False, True, "StaleCopy"),
    ]
    assert stale[0].message == (
        "VirtualMachine db runs on c; destroying and undefining its stale copy on back, never "
        "starting it"
    )
