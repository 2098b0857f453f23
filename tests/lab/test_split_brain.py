"""No split brain: over 20 injected faults, the controller's link to the agent of the host
running an HA VM is cut (packets to the agent port dropped) while the host and its guests run
on. The agent self-fences when its lease runs out, before the controller restarts the VM
elsewhere; every host's running domains are sampled every 100 ms: never two copies at once.
"""

from __future__ import annotations

import time

import pytest

from controller.lab.fleet import DomainSampler, LabFleet, Sample, lab_policy, tiny_vm
from controller.lab.guest import GuestImage
from tests.lab.ha_lab import fleet_fixture, ha_lab_fixture, host_objects  # noqa: F401

pytestmark = [pytest.mark.libvirtd, pytest.mark.lab]

VMS = ("sb-a", "sb-b")
FAULTS = 20
LEASE_TTL_S = 3


def defined_on(fleet: LabFleet, host: str) -> set[str]:
    with fleet.agents.client(host) as client:
        return {d.name for d in client.get_state().domains}


def first_run_elsewhere(samples: list[Sample], vm: str, host: str, since: float) -> float | None:
    """Returns the unix time of the first sample after `since` with `vm` running off `host`."""
    for s in samples:
        if s.wall >= since and any(h != host for h in s.hosts_of(vm)):
            return s.wall
    return None


def test_cut_agent_links_never_run_a_vm_twice(fleet: LabFleet, tiny_guest: GuestImage) -> None:
    fleet.apply(host_objects(fleet.agents, lease_ttl_s=LEASE_TTL_S))
    fleet.apply([lab_policy(margin_s=2), *(tiny_vm(vm, tiny_guest, ha=True) for vm in VMS)])
    fleet.start()
    fleet.wait(lambda: all(fleet.vm_host(vm) for vm in VMS), 120, "VMs running")

    late_fences: list[str] = []
    restart_s: list[float] = []
    with DomainSampler(fleet.lab, interval_s=0.1) as sampler:
        loop_started = time.monotonic()
        for fault in range(FAULTS):
            vm = VMS[fault % len(VMS)]
            fleet.wait(lambda vm=vm: fleet.vm_host(vm) is not None, 60, f"{vm} running")
            host = fleet.vm_host(vm)
            assert host is not None
            cut_at = time.time()
            fleet.agents.cut(host)
            fleet.wait(
                lambda vm=vm, host=host: fleet.vm_host(vm) not in (None, host),
                60,
                f"fault {fault}: {vm} restarted off {host}",
            )
            fleet.agents.reconnect(host)
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
            assert elsewhere is not None
            restart_s.append(elsewhere - cut_at)
            if elsewhere < fenced[0].at:
                late_fences.append(f"fault {fault}: {vm} ran elsewhere before {host} fenced it")
        loop_s = time.monotonic() - loop_started
    doubles = sampler.double_runs(VMS)
    print(
        f"\nsplit brain: {FAULTS} faults injected (controller->agent link cut, lease TTL "
        f"{LEASE_TTL_S} s) in {loop_s:.0f} s; {len(sampler.samples)} samples of every host's "
        f"running domains (100 ms); double-runs: {len(doubles)}; restarts before the fence: "
        f"{len(late_fences)}; restart seen {min(restart_s):.1f}-{max(restart_s):.1f} s after "
        "the cut"
    )
    assert doubles == []
    assert late_fences == []
