"""Maintenance on real hosts: draining host-1 of a 3-host lab moves its VMs live to the other
two within the disruption budget and host-1 reaches phase Maintenance; ending maintenance lets
the EvenDistribution balancer move VMs back. A hard anti-affinity pair never shares a host."""

from __future__ import annotations

import time

import pytest

from controller.cli.host import set_maintenance
from controller.lab.fleet import DomainSampler, LabFleet, anti_affinity, lab_policy, tiny_vm
from controller.lab.guest import GuestImage
from controller.lab.heartbeat import numbering_continues
from tests.lab.ha_lab import fleet_fixture, ha_lab_fixture  # noqa: F401

pytestmark = [pytest.mark.libvirtd, pytest.mark.lab]

VMS = tuple(f"dr-{i}" for i in range(1, 7))
APART = ("dr-1", "dr-2")
BUDGET_PER_HOST = 2


def placement(fleet: LabFleet) -> dict[str, list[str]]:
    """Returns host -> VMs the controller reports running there."""
    found: dict[str, list[str]] = {h.name: [] for h in fleet.lab.hosts}
    for vm in VMS:
        host = fleet.vm_host(vm)
        if host is not None:
            found[host].append(vm)
    return found


def counts(fleet: LabFleet) -> list[int]:
    return sorted(len(v) for v in placement(fleet).values())


def test_drain_then_rebalance_back(fleet: LabFleet, tiny_guest: GuestImage) -> None:
    fleet.apply(
        [
            lab_policy(margin_s=2, balancer="EvenDistribution", max_migrations_per_host=2),
            anti_affinity("dr-apart", APART),
            *(tiny_vm(vm, tiny_guest, ha=True) for vm in VMS),
        ]
    )
    readers = fleet.heartbeats(VMS)
    fleet.start()
    fleet.wait(lambda: counts(fleet) == [2, 2, 2], 180, "6 VMs spread 2/2/2")
    for vm in VMS:
        readers[vm].wait_new(1, timeout_s=60)
    before = placement(fleet)

    with DomainSampler(fleet.lab) as sampler:
        started = time.monotonic()
        set_maintenance(fleet.store, "host-1", True)
        fleet.controller.trigger()
        fleet.wait(
            lambda: fleet.status("Host", "host-1").phase == "Maintenance", 180, "host-1 drained"
        )
        drained_s = time.monotonic() - started
        assert placement(fleet)["host-1"] == []
        moved = before["host-1"]
        for vm in moved:
            readers[vm].wait_new(2, timeout_s=30)

        started = time.monotonic()
        set_maintenance(fleet.store, "host-1", False)
        fleet.controller.trigger()
        fleet.wait(lambda: counts(fleet) == [2, 2, 2], 180, "rebalanced back to 2/2/2")
        rebalanced_s = time.monotonic() - started
        for vm in VMS:
            readers[vm].wait_new(2, timeout_s=30)

    migrations = [
        [o for o in p.outcomes if o.action.type.value == "MigrateVM"] for p in fleet.passes
    ]
    print(
        f"\ndrain: {len(moved)} VMs off host-1 in {drained_s:.1f} s (phase Maintenance); "
        f"rebalance back to 2/2/2 in {rebalanced_s:.1f} s; "
        f"{sum(len(m) for m in migrations)} live migrations, at most "
        f"{max(len(m) for m in migrations)} started per pass; {len(sampler.samples)} samples: "
        f"{len(sampler.shared_hosts(APART))} anti-affinity violations, "
        f"{len(sampler.double_runs())} double-runs"
    )
    assert all(o.ok for m in migrations for o in m)
    for m in migrations:
        sources = [o.action.host for o in m]
        assert all(sources.count(h) <= BUDGET_PER_HOST for h in sources)
    for vm in VMS:
        assert numbering_continues(readers[vm].beats), vm  # moved live, never restarted
    assert sampler.shared_hosts(APART) == []
    assert sampler.double_runs() == []
    assert len(placement(fleet)["host-1"]) == 2  # host-1 takes VMs again
