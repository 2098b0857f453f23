"""A VM's status while it migrates: the planner's migration verdict must build a valid
VirtualMachineStatus (on the lab, a drain's in-flight migrations failed every pass with
ReconciliationFailed: `started` missing, `elapsed_s` unknown to the status model)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fleet_sim import desired_of
from plan_fixtures import POLICY, converged, host, network, pool, shared_pool, vm

from controller.plan import plan
from controller.status import build_status

HOSTS = ("host-a", "host-b")


def fleet(maintenance: tuple[str, ...] = ()) -> list:
    objects = [host(h, maintenance=h in maintenance) for h in HOSTS]
    return [*objects, network(), pool(), shared_pool(), *vm("web-1", disk_pool="shared")]


def vm_status(p, now: datetime):
    return build_status(
        "VirtualMachine",
        None,
        p.verdicts[("VirtualMachine", "web-1")],
        generation=1,
        revision=None,
        failure=None,
        now=now,
    )


def test_status_of_a_vm_whose_migration_is_in_flight() -> None:
    sim = converged(fleet(), *HOSTS, shared_pools={"shared"})
    source = next(h for h, s in sim.hosts.items() if s.state.domains)
    dest = next(h for h in HOSTS if h != source)
    sim.start_migration_job(source, "web-1", dest, elapsed_s=30)
    p = plan(desired_of(*fleet(maintenance=(source,))), sim.observed(), POLICY)
    status = vm_status(p, sim.now)
    assert status.phase.value == "Migrating"
    assert (status.migration.source, status.migration.target) == (source, dest)
    assert status.migration.state == "running"
    assert status.migration.progress_percent == 40.0
    started = status.migration.started
    assert abs(started - (sim.now - timedelta(seconds=30))) < timedelta(seconds=1)


def test_status_of_a_vm_whose_migration_is_planned() -> None:
    sim = converged(fleet(), *HOSTS, shared_pools={"shared"})
    source = next(h for h, s in sim.hosts.items() if s.state.domains)
    p = plan(desired_of(*fleet(maintenance=(source,))), sim.observed(), POLICY)
    assert [a.type.value for a in p.actions] == ["MigrateVM"]
    status = vm_status(p, datetime.now(UTC))
    assert status.migration.state == "starting"
    assert status.migration.started == sim.now


def test_a_finished_migration_leaves_no_migration_in_status() -> None:
    sim = converged(fleet(), *HOSTS, shared_pools={"shared"})
    source = next(h for h, s in sim.hosts.items() if s.state.domains)
    dest = next(h for h in HOSTS if h != source)
    sim.start_migration_job(source, "web-1", dest, elapsed_s=30)
    moving = vm_status(
        plan(desired_of(*fleet(maintenance=(source,))), sim.observed(), POLICY), sim.now
    )
    settled = converged(fleet(), *HOSTS, shared_pools={"shared"})
    p = plan(desired_of(*fleet()), settled.observed(), POLICY)
    status = build_status(
        "VirtualMachine",
        moving,
        p.verdicts[("VirtualMachine", "web-1")],
        generation=1,
        revision=None,
        failure=None,
        now=settled.now,
    )
    assert status.phase.value == "Running"
    assert status.migration is None
