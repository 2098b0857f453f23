"""Convergence: plan, apply on the in-memory fleet, plan again until empty; then stay empty."""

from __future__ import annotations

import pytest
from fleet_sim import FleetSim, converge, desired_of, manifest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plan_fixtures import POLICY, host, network, pool, shared_pool, vm, volume

from controller.plan import plan

HOSTS3 = ("host-a", "host-b", "host-c")


def _base(hosts=HOSTS3):
    return [host(h) for h in hosts] + [network(), pool(), shared_pool()]


SCENARIOS = {
    "one-vm": (_base(("host-a",)), ("host-a",)),
    "templates-on-shared-pool": (
        [
            *_base(),
            volume("base", "shared", size="2Gi"),
            manifest(
                "Template",
                "small",
                {
                    "cpus": 1,
                    "memory": "256Mi",
                    "disks": [{"name": "root", "volume": "base"}],
                    "nics": [{"name": "eth0", "network": "lan"}],
                },
            ),
            *[manifest("VirtualMachine", f"web-{i}", {"template": "small"}) for i in range(4)],
        ],
        HOSTS3,
    ),
    "mixed-run-strategies": (
        [
            *_base(),
            *vm("always"),
            *vm("halted", runStrategy="Halted"),
            *vm("manual", runStrategy="Manual"),
            *vm("rerun", runStrategy="RerunOnFailure"),
        ],
        HOSTS3,
    ),
    "anti-affinity-spreads": (
        [
            *_base(),
            *vm("db-1", disk_pool="shared", labels={"app": "db"}),
            *vm("db-2", disk_pool="shared", labels={"app": "db"}),
            *vm("db-3", disk_pool="shared", labels={"app": "db"}),
            manifest(
                "AffinityGroup",
                "db-apart",
                {"vmSelector": {"matchLabels": {"app": "db"}}, "vmRule": {"polarity": "negative"}},
            ),
        ],
        HOSTS3,
    ),
    "network-per-zone": (
        [
            host("host-a", labels={"zone": "a"}),
            host("host-b", labels={"zone": "b"}),
            network(),
            network(
                "zone-b", mode="isolated", ipv4=None, hostSelector={"matchLabels": {"zone": "b"}}
            ),
            pool(),
            *vm("web", nics=[{"name": "eth0", "network": "zone-b"}]),
        ],
        ("host-a", "host-b"),
    ),
    "ha-and-pins": (
        [
            *_base(),
            *vm(
                "db",
                disk_pool="shared",
                ha={"enabled": True, "priority": 90},
                placement={"host": "host-c"},
            ),
            *vm("web", disk_pool="shared", ha={"enabled": True}),
            *vm("batch"),
        ],
        HOSTS3,
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS), ids=list(SCENARIOS))
def test_scenario_converges_and_stays_converged(name):
    objects, hosts = SCENARIOS[name]
    if name == "one-vm":
        objects = [*objects, *vm("web-1")]
    sim = FleetSim.of(*hosts, shared_pools={"shared"})
    desired = desired_of(*objects)
    plans = converge(sim, desired, POLICY, passes=6)
    assert plans[-1].empty, [a.message for a in plans[-1].actions]
    assert not sim.errors
    not_ready = {
        k: v.message for k, v in plans[-1].verdicts.items() if not v.ready and k[0] != "Snapshot"
    }
    assert not_ready == {}
    for _ in range(2):
        sim.tick()
        assert plan(desired, sim.observed(), POLICY).empty


def test_anti_affinity_puts_each_db_on_its_own_host():
    objects, hosts = SCENARIOS["anti-affinity-spreads"]
    sim = FleetSim.of(*hosts, shared_pools={"shared"})
    converge(sim, desired_of(*objects), POLICY)
    running = sim.running()
    assert sorted(running[f"db-{i}"][0] for i in (1, 2, 3)) == list(HOSTS3)


def test_equal_inputs_give_equal_plans_whatever_the_input_order():
    objects, hosts = SCENARIOS["templates-on-shared-pool"]
    sim = FleetSim.of(*hosts, shared_pools={"shared"})
    observed = sim.observed()
    first = plan(desired_of(*objects), observed, POLICY)
    again = plan(desired_of(*reversed(objects)), observed, POLICY)
    assert first.actions == again.actions
    assert first.verdicts == again.verdicts


def test_every_action_has_a_reason_constant_and_a_sentence():
    objects, hosts = SCENARIOS["ha-and-pins"]
    sim = FleetSim.of(*hosts, shared_pools={"shared"})
    for p in converge(sim, desired_of(*objects), POLICY):
        for action in p.actions:
            assert action.reason[0].isupper() and action.reason.isalnum()
            assert len(action.message.split()) >= 4


# --- property: random small fleets converge and then plan nothing ---------------------------

vm_strategy = st.fixed_dictionaries(
    {
        "cpus": st.integers(1, 4),
        "memory_mi": st.sampled_from([128, 256, 512, 1024, 3072]),
        "run": st.sampled_from(["Always", "Halted", "Manual", "RerunOnFailure"]),
        "pool": st.sampled_from(["local", "shared", None]),
        "ha": st.booleans(),
        "pin": st.sampled_from([None, "host-a", "host-b"]),
    }
)


def _random_objects(host_count: int, vms: list[dict]) -> list:
    hosts = [f"host-{c}" for c in "abc"[:host_count]]
    objects = _base(tuple(hosts))
    for i, spec in enumerate(vms):
        extra: dict = {
            "cpus": spec["cpus"],
            "memory": f"{spec['memory_mi']}Mi",
            "runStrategy": spec["run"],
            "ha": {"enabled": spec["ha"]},
        }
        if spec["pin"] in hosts:
            extra["placement"] = {"host": spec["pin"]}
        objects.extend(vm(f"vm-{i}", disk_pool=spec["pool"], **extra))
    return objects


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    host_count=st.integers(1, 3),
    vms=st.lists(vm_strategy, max_size=6),
    changed=st.lists(vm_strategy, max_size=6),
)
def test_random_fleets_converge_then_plan_nothing(host_count, vms, changed):
    hosts = tuple(f"host-{c}" for c in "abc"[:host_count])
    sim = FleetSim.of(*hosts, cpus=4, memory_mib=4096, shared_pools={"shared"})
    for objects in (_random_objects(host_count, vms), _random_objects(host_count, changed)):
        desired = desired_of(*objects)
        plans = converge(sim, desired, POLICY, passes=8)
        assert plans[-1].empty, [a.message for a in plans[-1].actions]
        assert not sim.errors, sim.errors
        assert all(len(where) == 1 for where in sim.running().values())
        sim.tick()
        assert plan(desired, sim.observed(), POLICY).empty
