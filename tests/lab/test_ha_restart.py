"""HA on real hosts: a host dies (agent, libvirtd, QEMUs and its etcd member killed) with 3 HA
VMs and 1 non-HA VM; once its etcd lease expired, the HA VMs run elsewhere
(their heartbeats resume in new serial logs), the non-HA one does not; when the host returns,
its stale copies are undefined, never started, and the non-HA VM runs again there.
"""

from __future__ import annotations

import time

import pytest

from controller.lab.fleet import DomainSampler, LabFleet, tiny_vm
from controller.lab.guest import GuestImage
from tests.lab.ha_lab import LEASE_TTL_S, fleet_fixture, ha_lab_fixture, host_objects  # noqa: F401

pytestmark = [pytest.mark.libvirtd, pytest.mark.lab]

VICTIM = "host-1"
HA_VMS = ("ha-a", "ha-b", "ha-c")
PLAIN_VM = "plain-d"


def defined_on(fleet: LabFleet, host: str) -> set[str]:
    """Returns the domains defined on `host` as its agent reports them."""
    with fleet.agents.client(host) as client:
        return {d.name for d in client.get_state().domains}


def test_host_loss_restarts_ha_vms_elsewhere(fleet: LabFleet, tiny_guest: GuestImage) -> None:
    vms = (*HA_VMS, PLAIN_VM)
    # Only the victim takes VMs at first; the others leave maintenance once all run there.
    others = tuple(h.name for h in fleet.lab.hosts if h.name != VICTIM)
    fleet.apply(host_objects(fleet.agents, maintenance=others))
    fleet.apply(
        [tiny_vm(vm, tiny_guest, ha=True, priority=90 - 10 * i) for i, vm in enumerate(HA_VMS)]
        + [tiny_vm(PLAIN_VM, tiny_guest)]
    )
    readers = fleet.heartbeats(vms)
    fleet.start()
    fleet.wait(lambda: all(fleet.vm_host(vm) == VICTIM for vm in vms), 120, "all VMs on victim")
    for vm in vms:
        readers[vm].wait_new(1, timeout_s=60, source=VICTIM)
    fleet.apply(host_objects(fleet.agents))
    fleet.wait(lambda: all(fleet.status("Host", h).phase == "Up" for h in others), 30, "hosts up")

    with DomainSampler(fleet.lab) as sampler:
        killed_at = time.monotonic()
        fleet.agents.stop(VICTIM, crash=True)
        fleet.lab.kill_host(VICTIM)
        fleet.lab.etcd.kill(fleet.lab.host(VICTIM))  # a power loss takes its etcd member too
        resumed: dict[str, float] = {}
        deadline = killed_at + 90
        while len(resumed) < len(HA_VMS) and time.monotonic() < deadline:
            for vm in HA_VMS:
                beats = [b for b in readers[vm].poll() if b.source != VICTIM]
                if beats and vm not in resumed:
                    resumed[vm] = beats[0].seen_at - killed_at
            time.sleep(0.05)
        for vm in HA_VMS:
            starts = [t for t, ok in fleet.action_times("StartVM", vm, after=killed_at) if ok]
            started = starts[0] - killed_at if starts else float("nan")
            print(
                f"\nHA: {vm} restarted on "
                f"{sorted({b.source for b in readers[vm].beats} - {VICTIM})} {started:.1f} s "
                f"after the host kill, heartbeat resumed {resumed.get(vm, float('nan')):.1f} s "
                f"after it (lease TTL {LEASE_TTL_S} s, HA margin 2 s)"
            )
        assert set(resumed) == set(HA_VMS), fleet.describe()
        time.sleep(3)  # the non-HA VM must stay down, not just be late
    assert sampler.double_runs() == []
    assert all(PLAIN_VM not in s.running.get(h, ()) for s in sampler.samples[1:] for h in others)
    assert fleet.status("VirtualMachine", PLAIN_VM).phase == "Unknown"
    for vm in HA_VMS:
        assert fleet.vm_host(vm) in others
        elsewhere = [b.number for b in readers[vm].beats if b.source != VICTIM]
        assert min(elsewhere) == 1  # a restart (the counter began again), not a migration

    # The host returns: its stale HA copies go (never started); the non-HA VM runs again.
    fleet.lab.start_host(VICTIM)
    fleet.agents.start(VICTIM)
    fleet.wait(lambda: defined_on(fleet, VICTIM) == {PLAIN_VM}, 60, "stale copies undefined")
    fleet.wait(lambda: fleet.vm_host(PLAIN_VM) == VICTIM, 60, "non-HA VM running again")
    readers[PLAIN_VM].wait_new(1, timeout_s=60, source=VICTIM)
    for vm in HA_VMS:
        assert fleet.vm_host(vm) in others
