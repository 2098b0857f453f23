"""Impossible policies on real hosts are reported as Stalled with the reason, and nothing that
runs is stopped for them: a hard anti-affinity group larger than the host count, and the
maintenance of the last host that can hold the HA VMs."""

from __future__ import annotations

import time

import pytest

from controller.cli.host import set_maintenance
from controller.lab.fleet import DomainSampler, LabFleet, anti_affinity, tiny_vm
from controller.lab.guest import GuestImage
from controller.lab.heartbeat import numbering_continues
from tests.lab.ha_lab import fleet_fixture, ha_lab_fixture, host_objects  # noqa: F401

pytestmark = [pytest.mark.libvirtd, pytest.mark.lab]


def stalled(fleet: LabFleet, kind: str, name: str) -> tuple[str, str] | None:
    """Returns (reason, message) of the object's Stalled condition when it is True."""
    status = fleet.status(kind, name)
    condition = status.condition("Stalled") if status is not None else None
    if condition is None or condition.status.value != "True":
        return None
    return condition.reason, condition.message


def test_anti_affinity_larger_than_the_fleet_stalls_the_extra_vm(
    fleet: LabFleet, tiny_guest: GuestImage
) -> None:
    vms = ("aa-1", "aa-2", "aa-3", "aa-4")
    fleet.apply([anti_affinity("aa-apart", vms), *(tiny_vm(vm, tiny_guest) for vm in vms)])
    readers = fleet.heartbeats(vms)
    fleet.start()
    fleet.wait(lambda: sum(1 for vm in vms if fleet.vm_host(vm)) == 3, 120, "3 of 4 running")
    running = [vm for vm in vms if fleet.vm_host(vm)]
    (extra,) = set(vms) - set(running)
    fleet.wait(lambda: stalled(fleet, "VirtualMachine", extra) is not None, 30, "extra stalled")
    reason, message = stalled(fleet, "VirtualMachine", extra)
    print(f"\nanti-affinity of 4 on 3 hosts: {extra} Stalled {reason}: {message}")
    with DomainSampler(fleet.lab) as sampler:
        for vm in running:
            readers[vm].wait_new(3, timeout_s=60)
    assert reason == "NoHostFits"
    assert "aa-apart" in message
    assert sorted(fleet.vm_host(vm) for vm in running) == ["host-1", "host-2", "host-3"]
    assert all(numbering_continues(readers[vm].beats) for vm in running)
    assert all(len(s.running[h]) <= 1 for s in sampler.samples for h in s.running)


def test_maintenance_of_the_last_host_with_ha_vms_stalls_and_stops_nothing(
    fleet: LabFleet, tiny_guest: GuestImage
) -> None:
    vms = ("last-1", "last-2")
    fleet.apply(host_objects(fleet.agents, maintenance=("host-2", "host-3")))
    fleet.apply([tiny_vm(vm, tiny_guest, ha=True) for vm in vms])
    readers = fleet.heartbeats(vms)
    fleet.start()
    fleet.wait(lambda: all(fleet.vm_host(vm) == "host-1" for vm in vms), 120, "VMs on host-1")
    for vm in vms:
        readers[vm].wait_new(1, timeout_s=60)

    set_maintenance(fleet.store, "host-1", True)
    fleet.controller.trigger()
    fleet.wait(lambda: stalled(fleet, "Host", "host-1") is not None, 60, "host-1 stalled")
    reason, message = stalled(fleet, "Host", "host-1")
    vm_reason, vm_message = stalled(fleet, "VirtualMachine", vms[0]) or ("", "")
    print(
        f"\nmaintenance of the last host: host-1 Stalled {reason}: {message}\n"
        f"  {vms[0]} Stalled {vm_reason}: {vm_message}"
    )
    time.sleep(3)
    for vm in vms:
        readers[vm].wait_new(3, timeout_s=30, source="host-1")
    assert reason == "DrainBlocked"
    assert fleet.status("Host", "host-1").phase == "PreparingForMaintenance"
    assert vm_reason == "NoHostFits"
    assert message.count("nothing is stopped") == 1
    assert all(fleet.vm_host(vm) == "host-1" for vm in vms)
    assert all(numbering_continues(readers[vm].beats) for vm in vms)  # never restarted
    acted = {o.action.type.value for p in fleet.passes for o in p.outcomes}
    assert acted == {"DefineVM", "StartVM"}  # nothing stopped, destroyed or moved
