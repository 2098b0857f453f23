"""VMs on their host: define, redefine on drift, run strategies, restarts for updates."""

from __future__ import annotations

import pytest
from fleet_sim import converge, desired_of, summary
from plan_fixtures import POLICY, fleet, plan_after, verdict, vm

from controller.plan import plan


def test_new_vm_is_placed_defined_and_started_after_its_volume():
    sim_objects = fleet(vm("web-1"))
    from fleet_sim import FleetSim

    sim = FleetSim.of("host-a")
    p = plan(desired_of(*sim_objects), sim.observed(), POLICY)
    assert summary(p) == [
        ("DefineNetwork", "Network/lan", "host-a", "Creating"),
        ("DefinePool", "StoragePool/local", "host-a", "Creating"),
        ("StartNetwork", "Network/lan", "host-a", "Starting"),
        ("CreateVolume", "Volume/web-1-root", "host-a", "Creating"),
        ("DefineVM", "VirtualMachine/web-1", "host-a", "Creating"),
        ("StartVM", "VirtualMachine/web-1", "host-a", "Starting"),
    ]
    assert [a.wave for a in p.actions] == [0, 0, 1, 1, 2, 3]
    assert verdict(p, "VirtualMachine", "web-1") == (False, "Starting", False)
    assert p.verdicts[("VirtualMachine", "web-1")].fields["phase"] == "Starting"
    sim.apply(p)
    assert not sim.errors
    assert plan(desired_of(*sim_objects), sim.observed(), POLICY).empty


def _set(sim, **update):
    sim.set_domain("host-a", "web-1", **update)


ROWS = [
    # (id, before spec, after spec, mutate, requests, expected actions, expected verdict)
    ("always-running-noop", {}, None, None, None, [], (True, "Converged", False)),
    (
        "always-crashed-restarts",
        {},
        None,
        lambda s: _set(s, state="shutoff", reason="crashed", live=None),
        None,
        [("StartVM", "VirtualMachine/web-1", "host-a", "Starting")],
        (False, "Starting", False),
    ),
    (
        "always-guest-shutdown-restarts",
        {},
        None,
        lambda s: _set(s, state="shutoff", reason="shutdown", live=None),
        None,
        [("StartVM", "VirtualMachine/web-1", "host-a", "Starting")],
        (False, "Starting", False),
    ),
    (
        "halted-running-stops",
        {},
        {"runStrategy": "Halted"},
        None,
        None,
        [("StopVM", "VirtualMachine/web-1", "host-a", "Stopping")],
        (False, "Stopping", False),
    ),
    (
        "halted-stopped-noop",
        {"runStrategy": "Halted"},
        None,
        None,
        None,
        [],
        (True, "Stopped", False),
    ),
    (
        "rerun-crash-restarts",
        {"runStrategy": "RerunOnFailure"},
        None,
        lambda s: _set(s, state="shutoff", reason="crashed", live=None),
        None,
        [("StartVM", "VirtualMachine/web-1", "host-a", "Starting")],
        (False, "Starting", False),
    ),
    (
        "rerun-clean-shutdown-stays",
        {"runStrategy": "RerunOnFailure"},
        None,
        lambda s: _set(s, state="shutoff", reason="shutdown", live=None),
        None,
        [],
        (True, "GuestShutdown", False),
    ),
    (
        "manual-new-defined-not-started",
        {"runStrategy": "Manual"},
        None,
        None,
        None,
        [],
        (True, "Stopped", False),
    ),
    (
        "manual-start-request",
        {"runStrategy": "Manual"},
        None,
        None,
        {("VirtualMachine", "web-1"): "start"},
        [("StartVM", "VirtualMachine/web-1", "host-a", "Requested")],
        (False, "Requested", False),
    ),
    (
        "manual-running-stays-running",
        {},
        {"runStrategy": "Manual"},
        None,
        None,
        [],
        (True, "Converged", False),
    ),
    (
        "manual-stop-request",
        {},
        {"runStrategy": "Manual"},
        None,
        {("VirtualMachine", "web-1"): "stop"},
        [("StopVM", "VirtualMachine/web-1", "host-a", "Requested")],
        (False, "Stopping", False),
    ),
    (
        "memory-within-max-redefines-live",
        {"maxMemory": "1Gi"},
        {"maxMemory": "1Gi", "memory": "512Mi"},
        None,
        None,
        [("DefineVM", "VirtualMachine/web-1", "host-a", "Updating")],
        (False, "Updating", False),
    ),
    (
        "cpus-change-redefines",
        {},
        {"cpus": 2},
        None,
        None,
        [("DefineVM", "VirtualMachine/web-1", "host-a", "Updating")],
        (False, "Updating", False),
    ),
    (
        "drift-by-hand-redefines",
        {},
        None,
        lambda s: _set(
            s,
            spec=s.hosts["host-a"].state.domains[0].spec.model_copy(update={"memory_mib": 999}),
        ),
        None,
        [("DefineVM", "VirtualMachine/web-1", "host-a", "Updating")],
        (False, "Updating", False),
    ),
    (
        "paused-reported-not-ready",
        {},
        None,
        lambda s: _set(s, state="paused", reason="user"),
        None,
        [],
        (False, "Paused", False),
    ),
    (
        "labels-change-no-drift",
        {},
        None,
        None,
        None,
        [],
        (True, "Converged", False),
    ),
]


@pytest.mark.parametrize(
    ("before", "after", "mutate", "requests", "expected", "expected_verdict"),
    [row[1:] for row in ROWS],
    ids=[row[0] for row in ROWS],
)
def test_vm_lifecycle(before, after, mutate, requests, expected, expected_verdict):
    _sim, p = plan_after(
        fleet(vm("web-1", **before)),
        fleet(vm("web-1", **(after if after is not None else before))),
        mutate=mutate,
        requests=requests,
    )
    assert summary(p) == expected
    assert verdict(p, "VirtualMachine", "web-1") == expected_verdict


def test_define_carries_payload_diff_and_fields_in_message():
    _, p = plan_after(fleet(vm("web-1")), fleet(vm("web-1", cpus=2, memory="512Mi")))
    (action,) = p.actions
    assert action.payload["vcpus"] == 2
    assert action.payload["memory_mib"] == 512
    assert {op["path"] for op in action.diff} == {"/vcpus", "/memory_mib"}
    assert all(op["op"] == "replace" for op in action.diff)
    assert action.message == (
        "VirtualMachine web-1 differs on host-a in vcpus, max_vcpus, memory_mib; redefining"
    )


ROW_RESTART = [
    ("restart-never-reports", "Never", [], (True, "RestartRequired", False)),
    (
        "restart-allowed-stops-and-starts",
        "Allowed",
        [
            ("StopVM", "VirtualMachine/web-1", "host-a", "RestartForUpdate"),
            ("StartVM", "VirtualMachine/web-1", "host-a", "RestartForUpdate"),
        ],
        (False, "RestartForUpdate", False),
    ),
]


@pytest.mark.parametrize(
    ("policy", "expected", "expected_verdict"),
    [r[1:] for r in ROW_RESTART],
    ids=[r[0] for r in ROW_RESTART],
)
def test_cold_change_on_running_vm_follows_update_policy(policy, expected, expected_verdict):
    before = fleet(vm("web-1", updatePolicy={"restart": policy}))
    after = fleet(vm("web-1", cpus=2, updatePolicy={"restart": policy}))
    sim, p = plan_after(before, after)
    assert summary(p) == [("DefineVM", "VirtualMachine/web-1", "host-a", "Updating")]
    sim.apply(p)
    p2 = plan(desired_of(*after), sim.observed(), POLICY)
    assert summary(p2) == expected
    assert verdict(p2, "VirtualMachine", "web-1") == expected_verdict
    assert p2.verdicts[("VirtualMachine", "web-1")].fields["restartRequired"] == [
        "vcpus",
        "max_vcpus",
    ]
    if policy == "Allowed":
        assert p2.actions[1].disruptive
        sim.apply(p2)
        assert plan(desired_of(*after), sim.observed(), POLICY).empty
    else:
        assert "waits for the next restart" in p2.verdicts[("VirtualMachine", "web-1")].message


def test_memory_within_max_applies_live_without_restart():
    before = fleet(vm("web-1", maxMemory="1Gi"))
    after = fleet(vm("web-1", maxMemory="1Gi", memory="768Mi"))
    sim, p = plan_after(before, after)
    sim.apply(p)
    p2 = plan(desired_of(*after), sim.observed(), POLICY)
    assert p2.empty
    assert verdict(p2, "VirtualMachine", "web-1") == (True, "Converged", False)


def test_vm_waits_for_network_not_on_its_host():
    objects = fleet(vm("web-1", nics=[{"name": "eth0", "network": "dmz"}]))
    from fleet_sim import FleetSim
    from plan_fixtures import network

    objects.append(network("dmz", hostSelector={"matchLabels": {"zone": "dmz"}}))
    sim = FleetSim.of("host-a")
    plans = converge(sim, desired_of(*objects), POLICY)
    last = plans[-1]
    assert last.empty
    v = last.verdicts[("VirtualMachine", "web-1")]
    assert (v.ready, v.reason, v.stalled) == (False, "NoHostFits", True)
    assert "network" in v.message.lower()
