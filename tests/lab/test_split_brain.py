"""No split brain, with the hosts' fencing leases in etcd (one member per lab host).

- A host cut from the controller only (packets to its agent port dropped) keeps its etcd
  lease: nothing is fenced, nothing restarted, the VM runs on where it was.
- A host cut off entirely (its link down: the controller, the other etcd members and its
  own member's quorum are gone) fences its HA VM itself before its lease expires in etcd;
  only then does the controller restart the VM elsewhere. Over CORRAL_SPLIT_BRAIN_FAULTS
  such faults (50 unless told), every host's running domains are sampled every 100 ms:
  never two copies at once.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import pytest

from controller.lab.fleet import DomainSampler, LabFleet, Sample, lab_policy, tiny_vm
from controller.lab.guest import GuestImage
from tests.lab.ha_lab import LEASE_TTL_S, fleet_fixture, ha_lab_fixture, host_objects  # noqa: F401

pytestmark = [pytest.mark.libvirtd, pytest.mark.lab]

VMS = ("sb-a", "sb-b")
FAULTS = int(os.environ.get("CORRAL_SPLIT_BRAIN_FAULTS", "50"))
MARGIN_S = 1


def defined_on(fleet: LabFleet, host: str) -> set[str]:
    with fleet.agents.client(host) as client:
        return {d.name for d in client.get_state().domains}


def first_run_elsewhere(samples: list[Sample], vm: str, host: str, since: float) -> float | None:
    """Returns the unix time of the first sample after `since` with `vm` running off `host`."""
    for s in samples:
        if s.wall >= since and any(h != host for h in s.hosts_of(vm)):
            return s.wall
    return None


def _start(fleet: LabFleet, tiny_guest: GuestImage) -> None:
    fleet.apply([lab_policy(margin_s=MARGIN_S), *(tiny_vm(vm, tiny_guest, ha=True) for vm in VMS)])
    fleet.start()
    fleet.wait(lambda: all(fleet.vm_host(vm) for vm in VMS), 120, "VMs running")


def test_a_host_cut_from_the_controller_only_is_never_fenced(
    fleet: LabFleet, tiny_guest: GuestImage
) -> None:
    _start(fleet, tiny_guest)
    vm = VMS[0]
    host = fleet.vm_host(vm)
    assert host is not None
    with DomainSampler(fleet.lab, interval_s=0.1) as sampler:
        cut_at = time.time()
        fleet.agents.cut(host)
        try:
            fleet.wait(
                lambda: (
                    fleet.status("Host", host).condition("Ready").reason == "LeaseHeld"
                    and fleet.status("Host", host).phase == "NonResponsive"
                ),
                30,
                f"{host} seen cut off but holding its lease",
            )
            time.sleep(3 * LEASE_TTL_S + MARGIN_S)  # well past any lease or margin
            assert [s.hosts_of(vm) for s in sampler.samples if s.wall >= cut_at][-1] == [host]
            assert first_run_elsewhere(sampler.samples, vm, host, cut_at) is None
        finally:
            fleet.agents.reconnect(host)
    with fleet.agents.client(host) as client:
        assert [r for r in client.get_lease().fenced if r.at >= cut_at] == []
    fleet.wait(lambda: fleet.vm_host(vm) == host, 30, f"{vm} seen running on {host} again")
    assert sampler.double_runs(VMS) == []


def test_cut_hosts_fence_before_any_restart_and_never_run_a_vm_twice(
    fleet: LabFleet, tiny_guest: GuestImage
) -> None:
    _start(fleet, tiny_guest)
    late_fences: list[str] = []
    restart_s: list[float] = []
    fence_s: list[float] = []
    with DomainSampler(fleet.lab, interval_s=0.1) as sampler:
        loop_started = time.monotonic()
        for fault in range(FAULTS):
            vm = VMS[fault % len(VMS)]
            fleet.wait(lambda vm=vm: fleet.vm_host(vm) is not None, 60, f"{vm} running")
            host = fleet.vm_host(vm)
            assert host is not None
            cut_at = time.time()
            cut_dt = datetime.fromtimestamp(cut_at, UTC)
            fleet.lab.partition(host)
            try:
                fleet.wait(
                    lambda vm=vm, host=host: fleet.vm_host(vm) not in (None, host),
                    60,
                    f"fault {fault}: {vm} restarted off {host}",
                )
            finally:
                fleet.lab.heal(host)
            fleet.wait(
                lambda vm=vm, host=host: (
                    vm not in defined_on(fleet, host) and fleet.status("Host", host).phase == "Up"
                ),
                60,
                f"fault {fault}: stale copy of {vm} gone from {host}",
            )
            with fleet.agents.client(host) as client:
                fenced = [r for r in client.get_lease().fenced if r.vm == vm and r.at >= cut_at]
            elsewhere = first_run_elsewhere(sampler.samples, vm, host, cut_at)
            assert fenced and fenced[0].ok, f"fault {fault}: {host} never self-fenced {vm}"
            events = fleet.store.list_events(kind="VirtualMachine", name=vm, since=cut_dt)
            assert [e for e in events if e.reason == "SelfFenced"], f"fault {fault}: no event"
            assert elsewhere is not None
            restart_s.append(elsewhere - cut_at)
            fence_s.append(fenced[0].at - cut_at)
            if elsewhere < fenced[0].at:
                late_fences.append(f"fault {fault}: {vm} ran elsewhere before {host} fenced it")
        loop_s = time.monotonic() - loop_started
    doubles = sampler.double_runs(VMS)
    print(
        f"\nsplit brain: {FAULTS} faults injected (host link cut: controller and etcd, lease "
        f"TTL {LEASE_TTL_S} s, HA margin {MARGIN_S} s) in {loop_s:.0f} s; "
        f"{len(sampler.samples)} samples of every host's running domains (100 ms); "
        f"double-runs: {len(doubles)}; restarts before the fence: {len(late_fences)}; "
        f"self-fence {min(fence_s):.1f}-{max(fence_s):.1f} s and restart seen "
        f"{min(restart_s):.1f}-{max(restart_s):.1f} s after the cut"
    )
    assert doubles == []
    assert late_fences == []
