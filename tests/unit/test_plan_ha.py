"""HA: restarts after a host fails and its etcd lease expires, fencing, stale copies on return."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fleet_sim import LEASE_TTL, converge, desired_of, summary
from plan_fixtures import POLICY, converged, host, network, pool, shared_pool, verdict, vm

from controller.plan import plan
from controller.plan.health import assess_hosts
from schemas.vm import VirtualMachineStatus

HOSTS = ("host-a", "host-b", "host-c")


def objects(fencing=None, vms=None):
    spec = {"fencing": fencing} if fencing else {}
    out = [host(h, **spec) for h in HOSTS] + [network(), pool(), shared_pool()]
    for name, extra in (vms or {}).items():
        out.extend(vm(name, disk_pool="shared", placement={"host": "host-a"}, **extra))
    return out


MARGIN_S = POLICY.default.ha_restart_margin_s
GONE_AFTER_S = LEASE_TTL.total_seconds()
"""etcd lets a killed host's key go one TTL after its last keepalive."""
SAFE_AFTER_S = GONE_AFTER_S + MARGIN_S
"""The key gone, plus the margin for clock drift and the kill."""

FLEET_VMS = {
    "db": {"ha": {"enabled": True, "priority": 90}},
    "web": {"ha": {"enabled": True, "priority": 10}},
    "batch": {},
}


def unpinned(fencing=None, vms=FLEET_VMS):
    out = [host(h, **({"fencing": fencing} if fencing else {})) for h in HOSTS]
    out += [network(), pool(), shared_pool()]
    for name, extra in vms.items():
        out.extend(vm(name, disk_pool="shared", **extra))
    return out


def failed_fleet(fencing=None, **sim_kw):
    sim = converged(objects(fencing, FLEET_VMS), *HOSTS, shared_pools={"shared"}, **sim_kw)
    sim.kill("host-a")
    return sim


def test_suspect_host_nothing_restarts_yet():
    sim = failed_fleet()
    sim.tick()
    p = plan(desired_of(*unpinned()), sim.observed(), POLICY)
    assert summary(p) == []
    assert verdict(p, "VirtualMachine", "db") == (False, "AgentUnreachable", False)
    assert verdict(p, "VirtualMachine", "batch") == (False, "AgentUnreachable", False)
    assert p.verdicts[("VirtualMachine", "db")].fields["phase"] == "Unknown"
    assert p.verdicts[("Host", "host-a")].fields["phase"] == "NonResponsive"
    assert "keeps its etcd lease alive" in p.verdicts[("Host", "host-a")].message


def test_host_cut_from_the_controller_only_is_never_restarted_from():
    sim = converged(objects(None, FLEET_VMS), *HOSTS, shared_pools={"shared"})
    sim.cut("host-a")
    sim.now += timedelta(hours=1)
    p = plan(desired_of(*unpinned()), sim.observed(), POLICY)
    assert summary(p) == []
    assert verdict(p, "VirtualMachine", "db") == (False, "AgentUnreachable", False)
    assert verdict(p, "Host", "host-a") == (False, "LeaseHeld", False)


def test_failed_host_with_expired_lease_restarts_ha_vms_in_priority_order():
    sim = failed_fleet()
    sim.now += timedelta(seconds=SAFE_AFTER_S)
    p = plan(desired_of(*unpinned()), sim.observed(), POLICY)
    assert [(t, r, reason) for t, r, _h, reason in summary(p)] == [
        ("DefineVM", "VirtualMachine/db", "HARestart"),
        ("DefineVM", "VirtualMachine/web", "HARestart"),
        ("StartVM", "VirtualMachine/db", "HARestart"),
        ("StartVM", "VirtualMachine/web", "HARestart"),
    ]
    assert all(a.host in ("host-b", "host-c") for a in p.actions)
    assert verdict(p, "VirtualMachine", "batch") == (False, "NotHighlyAvailable", False)
    sim.apply(p)
    assert sorted(sim.running()) == ["batch", "db", "web"]
    assert sim.running()["batch"] == ["host-a"]


def test_just_before_the_lease_is_safe_nothing_restarts():
    sim = failed_fleet()
    sim.now += timedelta(seconds=SAFE_AFTER_S - 1)
    p = plan(desired_of(*unpinned()), sim.observed(), POLICY)
    assert summary(p) == []
    assert verdict(p, "VirtualMachine", "db") == (False, "WaitingForFence", False)


@pytest.mark.parametrize(
    ("sim_kw", "host_reason"),
    [
        pytest.param({"etcd": False}, "NoArbiter", id="no-etcd"),
        pytest.param({"etcd_synced": False}, "ArbiterUnreachable", id="etcd-unreadable"),
    ],
)
def test_without_proof_from_etcd_nothing_restarts_ever(sim_kw, host_reason):
    sim = failed_fleet(**sim_kw)
    sim.now += timedelta(hours=1)
    p = plan(desired_of(*unpinned()), sim.observed(), POLICY)
    assert summary(p) == []
    assert verdict(p, "VirtualMachine", "db") == (False, "WaitingForFence", False)
    assert verdict(p, "Host", "host-a") == (False, "HostFailed", False)
    assert sim.running()["db"] == ["host-a"]
    health = assess_hosts(
        {o.name: o for o in unpinned() if o.kind == "Host"},
        sim.observed().hosts,
        POLICY,
        sim.now,
    )
    assert health["host-a"].reason == host_reason


def test_a_host_whose_agent_runs_without_etcd_is_never_restarted_from():
    sim = failed_fleet()
    agent_state = sim.hosts["host-a"].last_known
    agent_state.lease = agent_state.lease.model_copy(update={"arbiter": "none"})
    sim.now += timedelta(hours=1)
    p = plan(desired_of(*unpinned()), sim.observed(), POLICY)
    assert summary(p) == []
    assert "its agent runs without etcd" in p.verdicts[("VirtualMachine", "db")].message


def test_power_fence_is_asked_for_then_restart_after_confirmation():
    ipmi = {"method": "ipmi", "address": "10.0.0.1"}
    sim = failed_fleet(ipmi)
    sim.now += timedelta(seconds=GONE_AFTER_S + 1)
    p = plan(desired_of(*unpinned(ipmi)), sim.observed(), POLICY)
    assert summary(p) == [("FenceHost", "Host/host-a", None, "Fencing")]
    sim.apply(p)
    p2 = plan(desired_of(*unpinned(ipmi)), sim.observed(), POLICY)
    assert {a.type.value for a in p2.actions} == {"DefineVM", "StartVM"}
    assert p2.verdicts[("Host", "host-a")].fields["phase"] == "Fenced"


def test_returning_host_has_its_stale_copies_undefined_never_started():
    sim = failed_fleet()
    sim.now += timedelta(seconds=SAFE_AFTER_S)
    desired = desired_of(*unpinned())
    sim.apply(plan(desired, sim.observed(), POLICY))
    sim.tick()
    sim.revive("host-a")
    p = plan(desired, sim.observed(), POLICY)
    assert summary(p) == [
        ("UndefineVM", "VirtualMachine/db", "host-a", "StaleCopy"),
        ("UndefineVM", "VirtualMachine/web", "host-a", "StaleCopy"),
    ]
    sim.apply(p)
    assert plan(desired, sim.observed(), POLICY).empty
    assert sim.running()["batch"] == ["host-a"]


def test_ha_restart_that_fits_nowhere_says_why():
    big = {"ha": {"enabled": True}, "memory": "12Gi"}
    vms = {"big-1": big, "big-2": big, "big-3": big}
    sim = converged([*objects(None, {})], *HOSTS, shared_pools={"shared"})
    desired = desired_of(*unpinned(vms=vms))
    converge(sim, desired, POLICY)
    assert sorted(sim.running()) == ["big-1", "big-2", "big-3"]
    victim = sim.running()["big-1"][0]
    sim.kill(victim)
    sim.now += timedelta(seconds=SAFE_AFTER_S)
    p = plan(desired, sim.observed(), POLICY)
    assert summary(p) == []
    v = p.verdicts[("VirtualMachine", "big-1")]
    assert (v.ready, v.reason, v.stalled) == (False, "HARestartImpossible", True)
    assert "memory" in v.message


def test_two_running_copies_keep_the_status_host_and_destroy_the_other():
    sim = converged(unpinned(vms={"db": {}}), *HOSTS, shared_pools={"shared"})
    home = sim.running()["db"][0]
    other = next(h for h in HOSTS if h != home)
    dom = next(d for d in sim.hosts[home].state.domains if d.name == "db")
    sim.hosts[other].state.domains.append(dom)
    db = vm("db", disk_pool="shared")
    db[0] = db[0].model_copy(update={"status": VirtualMachineStatus(host=home)})
    desired = desired_of(*unpinned(vms={}), *db)
    p = plan(desired, sim.observed(), POLICY)
    assert summary(p) == [
        ("DestroyVM", "VirtualMachine/db", other, "StaleCopy"),
        ("UndefineVM", "VirtualMachine/db", other, "StaleCopy"),
    ]


def test_two_running_copies_without_a_record_are_left_and_reported():
    sim = converged(unpinned(vms={"db": {}}), *HOSTS, shared_pools={"shared"})
    home = sim.running()["db"][0]
    other = next(h for h in HOSTS if h != home)
    dom = next(d for d in sim.hosts[home].state.domains if d.name == "db")
    sim.hosts[other].state.domains.append(dom)
    p = plan(desired_of(*unpinned(vms={"db": {}})), sim.observed(), POLICY)
    assert summary(p) == []
    assert verdict(p, "VirtualMachine", "db") == (False, "DuplicateRunning", True)


def test_failed_host_before_lease_expiry_waits_and_says_until_when():
    sim = failed_fleet()
    sim.now += timedelta(seconds=GONE_AFTER_S + MARGIN_S / 2)
    p = plan(desired_of(*unpinned()), sim.observed(), POLICY)
    assert summary(p) == []
    v = p.verdicts[("VirtualMachine", "db")]
    assert (v.ready, v.reason, v.stalled) == (False, "WaitingForFence", False)
    gone = sim.hosts["host-a"].lease_gone_at
    safe_at = gone + timedelta(seconds=MARGIN_S)
    assert v.message == (
        f"Not restarting db: Host host-a failed; its etcd lease expired at "
        f"{gone:%Y-%m-%d %H:%M:%S}: its HA VMs restart elsewhere at "
        f"{safe_at:%Y-%m-%d %H:%M:%S}, after a margin of {MARGIN_S:g}s"
    )
    assert verdict(p, "VirtualMachine", "batch") == (False, "NotHighlyAvailable", False)
    assert verdict(p, "Host", "host-a") == (False, "HostFailed", False)


def test_a_host_back_before_its_lease_lapsed_keeps_its_ha_vms_and_nothing_restarts():
    sim = failed_fleet()
    sim.now += timedelta(seconds=GONE_AFTER_S / 2)
    desired = desired_of(*unpinned())
    assert summary(plan(desired, sim.observed(), POLICY)) == []
    sim.revive("host-a")
    assert plan(desired, sim.observed(), POLICY).empty
    assert sim.running() == {"batch": ["host-a"], "db": ["host-a"], "web": ["host-a"]}


def test_ha_vm_with_a_host_local_disk_waits_for_its_host_never_restarts_empty():
    fleet = [host(h) for h in HOSTS] + [network(), pool(), shared_pool()]
    fleet += vm("db", disk_pool="local", ha={"enabled": True}, placement={"host": "host-a"})
    sim = converged(fleet, *HOSTS, shared_pools={"shared"})
    sim.kill("host-a")
    sim.now += timedelta(seconds=SAFE_AFTER_S)
    unpinned_fleet = [host(h) for h in HOSTS] + [network(), pool(), shared_pool()]
    unpinned_fleet += vm("db", disk_pool="local", ha={"enabled": True})
    p = plan(desired_of(*unpinned_fleet), sim.observed(), POLICY)
    assert summary(p) == []
    assert verdict(p, "VirtualMachine", "db") == (False, "HARestartImpossible", True)
    assert "db-root" in p.verdicts[("VirtualMachine", "db")].message


def test_removing_a_host_from_the_manifests_never_starts_its_vms_elsewhere():
    sim = converged(objects(vms=FLEET_VMS), *HOSTS, shared_pools={"shared"})
    without_a = [o for o in unpinned() if o.metadata.name != "host-a"]
    p = plan(desired_of(*without_a), sim.observed(), POLICY)
    assert [a for a in summary(p) if a[0] in ("DefineVM", "StartVM")] == []
    assert verdict(p, "VirtualMachine", "db") == (False, "RunsOnRemovedHost", True)
