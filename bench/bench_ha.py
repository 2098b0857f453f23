"""Benchmark: HA restart after host loss, live-migration heartbeat gap, drain of 6 tiny VMs.

On a 3-host lab of its own (`bench`, 10.77.97.0/24; root needed) with real mTLS agents and
the real controller (controller.lab.fleet.LabFleet), tiny TCG guests printing a heartbeat
every second:
- HA: host-1 holds 3 HA VMs and is killed (agent, libvirtd and QEMUs SIGKILLed), lease TTL
  5 s, HA margin 2 s: seconds from the kill to the restart and to each heartbeat resuming
  (target < 15 s);
- migration: a VM's pin moves from host-2 to host-3: largest heartbeat gap (target < 1 s;
  heartbeats come once a second, so a gap just above 1 s means a pause of that excess) and
  the time from the spec change to status Running on host-3;
- drain: 6 VMs over 3 hosts, host-1 put in maintenance: seconds until it reports phase
  Maintenance (target < 60 s).
Figures are printed, not asserted. The lab is removed at the end, also on failure.
    python bench/bench_ha.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.cli.host import set_maintenance
from controller.lab.agents import LabAgents
from controller.lab.fleet import LabFleet, lab_policy, reset_lab, tiny_vm
from controller.lab.guest import GuestImage, ensure_tiny_guest
from controller.lab.heartbeat import HeartbeatWatcher, largest_gap
from controller.lab.libvirtd import Lab

LAB_NAME = "bench"
LAB_SUBNET = "10.77.97.0/24"
LEASE_TTL_S = 5
HA_TARGET_S = 15.0
GAP_TARGET_S = 1.0
DRAIN_TARGET_S = 60.0


def new_fleet(lab: Lab, agents: LabAgents, workdir: Path, maintenance: tuple[str, ...] = ()):
    """Returns a started LabFleet (fresh store) with the lab's hosts and the lab policy."""
    reset_lab(lab, agents)
    fleet = LabFleet(lab, agents, Path(tempfile.mkdtemp(dir=workdir)))
    hosts = []
    for host in lab.hosts:
        obj = agents.host_manifest(host.name, lease_ttl_s=LEASE_TTL_S)
        if host.name in maintenance:
            obj = obj.model_copy(update={"spec": obj.spec.model_copy(update={"maintenance": True})})
        hosts.append(obj)
    fleet.apply([*hosts, lab_policy(margin_s=2)])
    return fleet


def bench_ha(lab: Lab, agents: LabAgents, image: GuestImage, workdir: Path) -> None:
    vms = ("bha-1", "bha-2", "bha-3")
    fleet = new_fleet(lab, agents, workdir, maintenance=("host-2", "host-3"))
    try:
        fleet.apply([tiny_vm(vm, image, ha=True) for vm in vms])
        readers = fleet.heartbeats(vms)
        fleet.start()
        fleet.wait(lambda: all(fleet.vm_host(vm) == "host-1" for vm in vms), 180, "on host-1")
        for vm in vms:
            readers[vm].wait_new(1, timeout_s=90, source="host-1")
        fleet.set_maintenance("host-2", False)
        fleet.set_maintenance("host-3", False)
        fleet.wait(lambda: fleet.status("Host", "host-3").phase == "Up", 30, "hosts up")
        killed = time.monotonic()
        agents.stop("host-1", crash=True)
        lab.kill_host("host-1")
        resumed: dict[str, float] = {}
        while len(resumed) < len(vms) and time.monotonic() - killed < 120:
            for vm in vms:
                new = [b for b in readers[vm].poll() if b.source != "host-1"]
                if new and vm not in resumed:
                    resumed[vm] = new[0].seen_at - killed
            time.sleep(0.05)
        for vm in vms:
            starts = [t for t, ok in fleet.action_times("StartVM", vm, after=killed) if ok]
            restart = f"{starts[0] - killed:.1f}" if starts else "never"
            beat = f"{resumed[vm]:.1f}" if vm in resumed else "never"
            ups = [t - killed for h, t in readers[vm].guest_up.items() if h != "host-1"]
            up = f"{ups[0]:.1f}" if ups else "never"
            print(
                f"HA restart after host loss (TTL {LEASE_TTL_S} s): {vm} started elsewhere "
                f"after {restart} s, guest booted (GUEST-UP) after {up} s, heartbeat after "
                f"{beat} s (target < {HA_TARGET_S:g} s)"
            )
    finally:
        fleet.close()


def bench_migration(lab: Lab, agents: LabAgents, image: GuestImage, workdir: Path) -> None:
    vm = "bmig-1"
    fleet = new_fleet(lab, agents, workdir)
    try:
        fleet.apply([tiny_vm(vm, image, host="host-2")])
        reader = fleet.heartbeats([vm])[vm]
        fleet.start()
        fleet.wait(lambda: fleet.vm_host(vm) == "host-2", 180, "on host-2")
        reader.wait_new(3, timeout_s=90, source="host-2")
        with HeartbeatWatcher(reader):
            started = time.monotonic()
            fleet.apply([tiny_vm(vm, image, host="host-3")])
            fleet.wait(lambda: fleet.vm_host(vm) == "host-3", 120, "on host-3")
            moved_s = time.monotonic() - started
            reader.wait_new(3, timeout_s=30, source="host-3")
        print(
            f"live migration via the controller: largest heartbeat gap "
            f"{largest_gap(reader.beats):.2f} s (1 beat/s; target pause < {GAP_TARGET_S:g} s), "
            f"{moved_s:.1f} s from the spec change to Running on host-3"
        )
    finally:
        fleet.close()


def bench_drain(lab: Lab, agents: LabAgents, image: GuestImage, workdir: Path) -> None:
    vms = tuple(f"bdr-{i}" for i in range(1, 7))
    fleet = new_fleet(lab, agents, workdir)
    try:
        fleet.apply([tiny_vm(vm, image) for vm in vms])
        fleet.start()
        fleet.wait(lambda: all(fleet.vm_host(vm) for vm in vms), 240, "6 VMs running")
        on_host = sum(1 for vm in vms if fleet.vm_host(vm) == "host-1")
        started = time.monotonic()
        set_maintenance(fleet.store, "host-1", True)
        fleet.controller.trigger()
        fleet.wait(lambda: fleet.status("Host", "host-1").phase == "Maintenance", 240, "drain")
        drained_s = time.monotonic() - started
        print(
            f"drain of 6 tiny VMs: host-1 ({on_host} VMs) reached Maintenance in "
            f"{drained_s:.1f} s (target < {DRAIN_TARGET_S:g} s)"
        )
    finally:
        fleet.close()


def main() -> int:
    if os.geteuid() != 0:
        print("bench_ha: needs root (network namespaces, libvirtd)", file=sys.stderr)
        return 2
    image = ensure_tiny_guest()
    lab = Lab(LAB_NAME, LAB_SUBNET)
    lab.down()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            lab.up(3)
            agents = LabAgents(lab, lease_ttl_s=LEASE_TTL_S)
            agents.up()
            bench_ha(lab, agents, image, Path(tmp))
            bench_migration(lab, agents, image, Path(tmp))
            bench_drain(lab, agents, image, Path(tmp))
        finally:
            LabAgents(lab).remove_cuts()
            lab.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
