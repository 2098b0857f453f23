"""Live migration through the controller: a VM's pin changes to another host; it moves live
(one MigrateVM), its heartbeat numbering goes on across the move, and it never runs twice."""

from __future__ import annotations

import time

import pytest

from controller.lab.fleet import DomainSampler, LabFleet, tiny_vm
from controller.lab.guest import GuestImage
from controller.lab.heartbeat import (
    HeartbeatWatcher,
    concurrent_runs,
    largest_gap,
    numbering_continues,
)
from tests.lab.ha_lab import fleet_fixture, ha_lab_fixture  # noqa: F401

pytestmark = [pytest.mark.libvirtd, pytest.mark.lab]

VM = "mig-a"


def test_pin_change_moves_the_vm_live(fleet: LabFleet, tiny_guest: GuestImage) -> None:
    fleet.apply([tiny_vm(VM, tiny_guest, ha=True, host="host-1")])
    reader = fleet.heartbeats([VM])[VM]
    fleet.start()
    fleet.wait(lambda: fleet.vm_host(VM) == "host-1", 120, "VM running on host-1")
    reader.wait_new(3, timeout_s=60, source="host-1")

    with DomainSampler(fleet.lab) as sampler, HeartbeatWatcher(reader):
        started = time.monotonic()
        fleet.apply([tiny_vm(VM, tiny_guest, ha=True, host="host-2")])
        fleet.wait(lambda: fleet.vm_host(VM) == "host-2", 120, "VM running on host-2")
        moved_s = time.monotonic() - started
        reader.wait_new(3, timeout_s=30, source="host-2")
    beats = reader.beats
    migrations = [o for p in fleet.passes for o in p.outcomes if o.action.type.value == "MigrateVM"]
    print(
        f"\nlive migration via the controller: {moved_s:.1f} s from the spec change to status "
        f"Running on host-2; largest heartbeat gap {largest_gap(beats):.2f} s (one per 1 s); "
        f"{len(migrations)} MigrateVM action(s)"
    )
    assert [o.ok for o in migrations] == [True]
    assert numbering_continues(beats)  # the same guest all along, never rebooted
    assert {b.source for b in beats} == {"host-1", "host-2"}
    assert concurrent_runs(beats) == []
    assert sampler.double_runs() == []
