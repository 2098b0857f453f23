"""HA: restarts after a host fails and its lease expires, fencing, stale copies on return."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from fleet_sim import desired_of, summary
from plan_fixtures import POLICY, converged, host, network, pool, shared_pool, verdict, vm

from controller.plan import plan
from controller.plan.health import REQUEST_TIMEOUT_S
from schemas.vm import VirtualMachineStatus

HOSTS = ("host-a", "host-b", "host-c")


def objects(fencing=None, vms=None):
    spec = {"fencing": fencing} if fencing else {}
    out = [host(h, **spec) for h in HOSTS] + [network(), pool(), shared_pool()]
    for name, extra in (vms or {}).items():
        out.extend(vm(name, disk_pool="shared", placement={"host": "host-a"}, **extra))
    return out


SAFE_AFTER_S = 10 + REQUEST_TIMEOUT_S + 5
"""Lease TTL 10s + request timeout + margin 5s after the last renewal sent."""

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


def failed_fleet(fencing=None):
    sim = converged(objects(fencing, FLEET_VMS), *HOSTS, shared_pools={"shared"})
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


def test_power_fence_is_asked_for_then_restart_after_confirmation():
    ipmi = {"method": "ipmi", "address": "10.0.0.1"}
    sim = failed_fleet(ipmi)
    sim.now += timedelta(seconds=11)
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
    from fleet_sim import converge

    converge(sim, desired, POLICY)
    assert sorted(sim.running()) == ["big-1", "big-2", "big-3"]
    victim = sim.running()["big-1"][0]
    sim.kill(victim)
    sim.now += timedelta(seconds=30)
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
    sim.now += timedelta(seconds=15)
    p = plan(desired_of(*unpinned()), sim.observed(), POLICY)
    assert summary(p) == []
    v = p.verdicts[("VirtualMachine", "db")]
    assert (v.ready, v.reason, v.stalled) == (False, "WaitingForFence", False)
    safe_at = sim.hosts["host-a"].lease_sent_at + timedelta(seconds=SAFE_AFTER_S)
    assert f"lease expires at {safe_at:%Y-%m-%d %H:%M:%S}" in v.message
    assert verdict(p, "VirtualMachine", "batch") == (False, "NotHighlyAvailable", False)
    assert verdict(p, "Host", "host-a") == (False, "HostFailed", False)


def test_a_lease_granted_with_a_longer_ttl_than_the_spec_now_says_is_waited_out():
    sim = failed_fleet()
    sim.now += timedelta(seconds=SAFE_AFTER_S)
    observed = sim.observed()
    # host-a's last renewal granted 60 s; the spec has since been lowered to 10 s.
    longer = dataclasses.replace(observed.hosts["host-a"], lease_ttl_s=60)
    observed = dataclasses.replace(observed, hosts={**observed.hosts, "host-a": longer})
    p = plan(desired_of(*unpinned()), observed, POLICY)
    assert summary(p) == []
    assert verdict(p, "VirtualMachine", "db")[1] == "AgentUnreachable"


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
