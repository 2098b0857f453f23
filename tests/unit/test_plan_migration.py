"""Moves: drain for maintenance, pins and selectors, budget, timeouts, cold moves."""

from __future__ import annotations

from fleet_sim import converge, desired_of, summary
from plan_fixtures import POLICY, converged, host, network, pool, shared_pool, verdict, vm

from controller.plan import PolicyContext, plan
from schemas.policy import SchedulingPolicySpec

HOSTS = ("host-a", "host-b", "host-c")


def base(*vms, maintenance=(), pools_shared=True):
    objects = [host(h, maintenance=h in maintenance) for h in HOSTS]
    objects += [network(), pool(), shared_pool()]
    for item in vms:
        objects.extend(item)
    return objects


def on_host(sim, name):
    return next(h for h, s in sim.hosts.items() if any(d.name == name for d in s.state.domains))


def running_fleet(*names, **kw):
    objects = base(*[vm(n, disk_pool="shared", **kw) for n in names])
    sim = converged(objects, *HOSTS, shared_pools={"shared"})
    return objects, sim


def test_maintenance_drains_running_vms_live_then_host_is_in_maintenance():
    _objects, sim = running_fleet("web-1", "web-2", "web-3")
    source = on_host(sim, "web-1")
    after = base(
        *[vm(n, disk_pool="shared") for n in ("web-1", "web-2", "web-3")], maintenance=(source,)
    )
    p = plan(desired_of(*after), sim.observed(), POLICY)
    moving = [a for a in p.actions if a.type.value == "MigrateVM"]
    assert [(a.ref, a.host, a.reason) for a in moving] == [
        ("VirtualMachine/web-1", source, "Draining")
    ]
    (action,) = moving
    assert action.params["destination"] != source
    dest = action.params["destination"]
    assert action.payload == {
        "destination_uri": f"qemu+tcp://{dest}/system",
        "bandwidth_mibps": None,
        "max_downtime_ms": None,
        "timeout_s": 300.0,
        "copy_storage": False,
        "auto_converge": False,
    }
    assert action.wave == 4
    assert verdict(p, "Host", source) == (False, "Draining", False)
    assert p.verdicts[("Host", source)].fields["phase"] == "PreparingForMaintenance"
    assert verdict(p, "VirtualMachine", "web-1") == (False, "Migrating", False)
    plans = converge(sim, desired_of(*after), POLICY)
    assert plans[-1].empty and not sim.errors
    assert verdict(plans[-1], "Host", source) == (True, "InMaintenance", False)
    assert sim.domains(source) == {}
    assert len(sim.running()) == 3


def test_migration_policy_goes_into_the_payload():
    mig = {"bandwidthMibps": 100, "maxDowntimeMs": 500, "timeoutS": 60, "autoConverge": True}
    _objects, sim = running_fleet("web-1", migration=mig)
    source = on_host(sim, "web-1")
    after = base(vm("web-1", disk_pool="shared", migration=mig), maintenance=(source,))
    (action,) = [a for a in plan(desired_of(*after), sim.observed(), POLICY).actions]
    assert action.payload["bandwidth_mibps"] == 100
    assert action.payload["max_downtime_ms"] == 500
    assert action.payload["timeout_s"] == 60.0
    assert action.payload["auto_converge"] is True


def test_pin_change_migrates_to_the_pinned_host():
    _objects, sim = running_fleet("web-1")
    source = on_host(sim, "web-1")
    target = next(h for h in HOSTS if h != source)
    after = base(vm("web-1", disk_pool="shared", placement={"host": target}))
    p = plan(desired_of(*after), sim.observed(), POLICY)
    assert summary(p) == [("MigrateVM", "VirtualMachine/web-1", source, "Migrating")]
    assert p.actions[0].params == {"destination": target}
    assert f"pinned to {target}, runs on {source}" in p.actions[0].message


def test_migration_not_allowed_is_reported_and_nothing_stops():
    _objects, sim = running_fleet("web-1", migration={"allowed": False})
    source = on_host(sim, "web-1")
    after = base(
        vm("web-1", disk_pool="shared", migration={"allowed": False}), maintenance=(source,)
    )
    p = plan(desired_of(*after), sim.observed(), POLICY)
    assert summary(p) == []
    assert verdict(p, "VirtualMachine", "web-1") == (False, "MigrationNotAllowed", True)
    assert verdict(p, "Host", source) == (False, "DrainBlocked", True)


def test_drain_of_the_only_host_is_stalled_and_stops_nothing():
    objects = [host("host-a"), network(), pool(), *vm("web-1", ha={"enabled": True})]
    sim = converged(objects, "host-a")
    after = [
        host("host-a", maintenance=True),
        network(),
        pool(),
        *vm("web-1", ha={"enabled": True}),
    ]
    p = plan(desired_of(*after), sim.observed(), POLICY)
    assert summary(p) == []
    assert verdict(p, "VirtualMachine", "web-1") == (False, "NoHostFits", True)
    assert verdict(p, "Host", "host-a") == (False, "DrainBlocked", True)
    assert "nothing is stopped" in p.verdicts[("Host", "host-a")].message


def test_disruption_budget_limits_migrations_per_pass():
    names = [f"web-{i}" for i in range(1, 7)]
    objects = base(*[vm(n, disk_pool="shared", placement={"host": "host-a"}) for n in names])
    sim = converged(objects, *HOSTS, shared_pools={"shared"})
    after = base(*[vm(n, disk_pool="shared") for n in names], maintenance=("host-a",))
    budget = SchedulingPolicySpec(disruptionBudget={"maxMigrationsPerHost": 2})
    policy = PolicyContext(by_host={}, default=budget)
    p = plan(desired_of(*after), sim.observed(), policy)
    moving = [a for a in p.actions if a.type.value == "MigrateVM"]
    assert len(moving) == 2
    waiting = [
        n for n in names if p.verdicts[("VirtualMachine", n)].reason == "DisruptionBudgetExhausted"
    ]
    assert len(waiting) == 4
    assert all(not p.verdicts[("VirtualMachine", n)].stalled for n in waiting)
    plans = converge(sim, desired_of(*after), policy, passes=12)
    assert plans[-1].empty and not sim.errors
    assert sim.domains("host-a") == {}


def test_migration_in_flight_is_watched_not_repeated():
    _objects, sim = running_fleet("web-1")
    source = on_host(sim, "web-1")
    dest = next(h for h in HOSTS if h != source)
    sim.start_migration_job(source, "web-1", dest, elapsed_s=30)
    after = base(vm("web-1", disk_pool="shared"), maintenance=(source,))
    p = plan(desired_of(*after), sim.observed(), POLICY)
    assert summary(p) == []
    v = p.verdicts[("VirtualMachine", "web-1")]
    assert (v.ready, v.reason, v.fields["phase"]) == (False, "Migrating", "Migrating")
    assert v.fields["migration"]["progress_percent"] == 40.0
    assert v.fields["migration"]["target"] == dest


def test_migration_past_its_timeout_is_cancelled():
    objects, sim = running_fleet("web-1", migration={"timeoutS": 60})
    source = on_host(sim, "web-1")
    dest = next(h for h in HOSTS if h != source)
    sim.start_migration_job(source, "web-1", dest, elapsed_s=61)
    p = plan(desired_of(*objects), sim.observed(), POLICY)
    assert summary(p) == [("CancelMigration", "VirtualMachine/web-1", source, "MigrationTimeout")]


def test_failed_migration_is_retried_with_attempt_count():
    _objects, sim = running_fleet("web-1")
    source = on_host(sim, "web-1")
    dest = next(h for h in HOSTS if h != source)
    sim.start_migration_job(source, "web-1", dest, elapsed_s=10)
    dom = next(d for d in sim.hosts[source].state.domains if d.name == "web-1")
    sim.set_domain(source, "web-1", migration=dom.migration.model_copy(update={"state": "failed"}))
    after = base(vm("web-1", disk_pool="shared"), maintenance=(source,))
    p = plan(desired_of(*after), sim.observed(), POLICY)
    assert summary(p) == [("MigrateVM", "VirtualMachine/web-1", source, "Draining")]
    assert p.actions[0].message.endswith("(attempt 2)")


def test_stopped_vm_moves_cold():
    objects = base(vm("web-1", disk_pool="shared", runStrategy="Halted"))
    sim = converged(objects, *HOSTS, shared_pools={"shared"})
    source = on_host(sim, "web-1")
    after = base(vm("web-1", disk_pool="shared", runStrategy="Halted"), maintenance=(source,))
    p = plan(desired_of(*after), sim.observed(), POLICY)
    (undefine, define) = p.actions
    assert (undefine.type.value, undefine.host, undefine.reason) == ("UndefineVM", source, "Moving")
    assert (define.type.value, define.reason) == ("DefineVM", "Moving")
    assert define.host != source
    sim.apply(p)
    assert plan(desired_of(*after), sim.observed(), POLICY).empty


def test_local_disks_are_created_on_the_target_and_copied():
    objects = base(vm("web-1", disk_pool="local", placement={"host": "host-a"}))
    sim = converged(objects, *HOSTS, shared_pools={"shared"})
    after = base(vm("web-1", disk_pool="local", placement={"host": "host-b"}))
    p = plan(desired_of(*after), sim.observed(), POLICY)
    assert summary(p) == [
        ("CreateVolume", "Volume/web-1-root", "host-b", "Creating"),
        ("MigrateVM", "VirtualMachine/web-1", "host-a", "Migrating"),
    ]
    assert p.actions[1].payload["copy_storage"] is True
    plans = converge(sim, desired_of(*after), POLICY)
    assert plans[-1].empty and not sim.errors
    assert "web-1" in sim.domains("host-b")


def test_even_distribution_balancer_moves_and_settles():
    names = [f"web-{i}" for i in range(1, 7)]
    objects = base(*[vm(n, disk_pool="shared", placement={"host": "host-a"}) for n in names])
    sim = converged(objects, *HOSTS, shared_pools={"shared"})
    after = base(*[vm(n, disk_pool="shared") for n in names])
    even = SchedulingPolicySpec(
        balancer={
            "type": "EvenDistribution",
            "highUtilizationPercent": 30,
            "lowUtilizationPercent": 5,
            "minimumBenefitPercent": 1,
        }
    )
    policy = PolicyContext(by_host={}, default=even)
    p = plan(desired_of(*after), sim.observed(), policy)
    assert p.actions and all(a.reason == "Rebalancing" for a in p.actions)
    plans = converge(sim, desired_of(*after), policy, passes=20)
    assert plans[-1].empty and not sim.errors
    assert len(sim.domains("host-a")) < 6


def test_stopped_vm_with_a_host_local_disk_is_not_moved_to_an_empty_disk():
    before = [host("host-a"), host("host-b"), network(), pool()]
    before += vm("cold", disk_pool="local", runStrategy="Halted", placement={"host": "host-a"})
    sim = converged(before, "host-a", "host-b")
    after = [host("host-a", maintenance=True), host("host-b"), network(), pool()]
    after += vm("cold", disk_pool="local", runStrategy="Halted")
    p = plan(desired_of(*after), sim.observed(), POLICY)
    assert [a for a in summary(p) if a[1] == "VirtualMachine/cold"] == []
    assert verdict(p, "VirtualMachine", "cold") == (False, "NoHostFits", True)
    assert "host-local" in p.verdicts[("VirtualMachine", "cold")].message
