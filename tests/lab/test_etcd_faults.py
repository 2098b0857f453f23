"""etcd member faults against the agents' fencing leases (TTL 5 s, agent margin 1 s).

On the `cp` lab (3 hosts, one etcd member and one agent each), 3 HA VMs (one per host) and 1
non-HA VM run under the controller:

- one member killed for FAULT_S (the leader's, or a follower's), then restarted: the other
  two keep a quorum, so every keepalive finds a member that acknowledges it; no agent fences,
  no VM stops, nothing is restarted;
- two members killed for QUORUM_LOSS_S: no keepalive can be acknowledged, so every agent
  fences its HA VM TTL - margin after its last acknowledged keepalive; the non-HA VM runs on;
  the controller restarts nothing while etcd cannot answer it, and starts the HA VMs again
  once the quorum is back (the leases survived: their keys never went).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from controller.lab.agents import LeasePoller
from controller.lab.fleet import DomainSampler, LabFleet, anti_affinity, serial_log, tiny_vm
from controller.lab.guest import GuestImage
from controller.lab.heartbeat import largest_gap, parse_heartbeats
from controller.lab.libvirtd import Lab, LabHost
from tests.lab.cp_lab import (  # noqa: F401
    LEASE_TTL_S,
    HeartbeatPoller,
    cp_lab_fixture,
    fleet_fixture,
    leader_host,
)

pytestmark = [pytest.mark.libvirtd, pytest.mark.lab]

HA_VMS = ("ef-a", "ef-b", "ef-c")
PLAIN_VM = "ef-d"
VMS = (*HA_VMS, PLAIN_VM)
FAULT_S = 10.0
QUORUM_LOSS_S = 15.0
AFTER_S = LEASE_TTL_S + 5.0
"""How long a fault's aftermath is watched: past any lease the fault could have let lapse."""
VM_ACTIONS = ("StartVM", "DefineVM", "MigrateVM", "StopVM", "DestroyVM", "UndefineVM")


def start_vms(fleet: LabFleet, tiny_guest: GuestImage) -> tuple[dict[str, str], dict]:
    """Returns each VM's host and its heartbeat reader once all run and beat."""
    fleet.apply(
        [tiny_vm(vm, tiny_guest, ha=True) for vm in HA_VMS]
        + [tiny_vm(PLAIN_VM, tiny_guest), anti_affinity("ef-spread", HA_VMS)]
    )
    readers = fleet.heartbeats(VMS)
    fleet.start()
    fleet.wait(lambda: all(fleet.vm_host(vm) for vm in VMS), 180, "VMs running")
    home = {vm: fleet.vm_host(vm) for vm in VMS}
    assert len({home[vm] for vm in HA_VMS}) == len(fleet.lab.hosts), f"not spread: {home}"
    for vm in VMS:
        readers[vm].wait_new(2, timeout_s=60, source=home[vm])
    return home, readers


def fences_since(fleet: LabFleet, wall: float) -> dict[str, list]:
    """Returns, per host, its agent's self-fence records stamped at or after `wall`."""
    found = {}
    for host in fleet.lab.hosts:
        with fleet.agents.client(host.name) as client:
            found[host.name] = [r for r in client.get_lease().fenced if r.at >= wall]
    return found


def vm_actions(fleet: LabFleet, after: float) -> list[tuple[float, str, str, bool]]:
    """Returns (end of pass, type, vm, ok) of every VM action in passes ended after `after`."""
    return [
        (end, action, vm, ok)
        for vm in VMS
        for action in VM_ACTIONS
        for end, ok in fleet.action_times(action, vm, after)
    ]


def follower_host(lab: Lab) -> LabHost:
    """Returns the first host whose etcd member is not the leader."""
    leader = leader_host(lab)
    return next(h for h in lab.hosts if h.name != leader.name)


@pytest.mark.parametrize("victim", ["leader", "follower"])
def test_one_member_crash_fences_nothing(
    fleet: LabFleet, tiny_guest: GuestImage, victim: str
) -> None:
    lab = fleet.lab
    home, readers = start_vms(fleet, tiny_guest)
    member = leader_host(lab) if victim == "leader" else follower_host(lab)
    with HeartbeatPoller(readers), DomainSampler(lab, interval_s=0.2) as sampler:
        with LeasePoller(fleet.agents, [h.name for h in fleet.lab.hosts]) as leases:
            fault_wall, fault_at = time.time(), time.monotonic()
            lab.etcd.kill(member)
            time.sleep(FAULT_S)
            restarted_at = time.monotonic()
            lab.etcd.start(member)
            rejoin_s = time.monotonic() - restarted_at
            new_leader = leader_host(lab).name
            time.sleep(AFTER_S)
        watched_to = time.monotonic()
    fenced = fences_since(fleet, fault_wall)
    moved = [
        (round(s.at - fault_at, 1), vm, s.hosts_of(vm))
        for s in sampler.samples
        for vm in VMS
        if s.hosts_of(vm) != [home[vm]]
    ]
    gaps = {
        vm: largest_gap(b for b in readers[vm].beats if b.seen_at >= fault_at - 2) for vm in VMS
    }
    actions = vm_actions(fleet, fault_at)
    print(
        f"\netcd {victim} member ({member.name}) killed for {FAULT_S:g} s, rejoined healthy "
        f"{rejoin_s:.1f} s after its restart; leader afterwards {new_leader}; lease TTL "
        f"{LEASE_TTL_S} s: least time left before a self-fence per agent "
        + ", ".join(f"{h} {s:.2f} s" for h, s in sorted(leases.least.items()))
        + f"; lease ever not held: {sorted(leases.lapsed) or 'none'}; fences: "
        f"{sum(len(r) for r in fenced.values())}; samples with a VM off its host: {len(moved)} "
        f"of {len(sampler.samples)} over {watched_to - fault_at:.0f} s; largest heartbeat gap "
        + ", ".join(f"{vm} {g:.2f} s" for vm, g in gaps.items())
        + f"; VM actions: {len(actions)}"
    )
    assert fenced == {h.name: [] for h in lab.hosts}
    assert leases.lapsed == set()
    assert moved == []
    assert actions == []
    assert max(gaps.values()) < 2.0, gaps


class NewBoots:
    """Watches the VMs' serial logs on every host from their current ends: the first
    heartbeat written after that is the new boot's (the logs are appended to across
    restarts, and its numbers start at 1 again, so SerialLogReader would skip them)."""

    def __init__(self, lab: Lab, vms: tuple[str, ...]) -> None:
        self.paths = {vm: [h.outside(serial_log(vm)) for h in lab.hosts] for vm in vms}
        self.offsets = {path: size_of(path) for paths in self.paths.values() for path in paths}
        self.first: dict[str, float] = {}

    def poll(self) -> bool:
        """Records each VM's first new heartbeat seen now; returns whether every VM has one."""
        for vm, paths in self.paths.items():
            if vm not in self.first and any(self._beats(path) for path in paths):
                self.first[vm] = time.monotonic()
        return len(self.first) == len(self.paths)

    def _beats(self, path: Path) -> bool:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return False
        offset = self.offsets[path] if len(data) >= self.offsets[path] else 0
        return bool(parse_heartbeats(data[offset:]))


def size_of(path: Path) -> int:
    """Returns the file's size, 0 when it does not exist."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def test_quorum_loss_fences_ha_vms_and_they_run_again_with_the_quorum(
    fleet: LabFleet, tiny_guest: GuestImage
) -> None:
    lab = fleet.lab
    home, readers = start_vms(fleet, tiny_guest)
    leader = leader_host(lab)
    victims = [leader, next(h for h in lab.hosts if h.name != leader.name)]
    with HeartbeatPoller(readers), DomainSampler(lab, interval_s=0.1) as sampler:
        lost_wall, lost_at = time.time(), time.monotonic()
        for member in victims:
            lab.etcd.kill(member)
        time.sleep(QUORUM_LOSS_S)
        fenced = fences_since(fleet, lost_wall)
        during = vm_actions(fleet, lost_at)
        boots = NewBoots(lab, HA_VMS)
        restart_wall, restart_at = time.time(), time.monotonic()
        lab.etcd.up(victims)
        quorum_s = time.monotonic() - restart_at
        fleet.wait(boots.poll, 120, "HA VMs beating again after the quorum returned", 0.05)
        time.sleep(3)
    fence_s = {h: records[0].at - lost_wall for h, records in sorted(fenced.items()) if records}
    fenced_vms = sorted(r.vm for records in fenced.values() for r in records if r.ok)
    last_seen_running = {
        vm: max((s.at for s in sampler.samples if s.hosts_of(vm)), default=0.0) for vm in HA_VMS
    }
    down_s = {
        vm: min(s.at for s in sampler.samples if s.at > lost_at and not s.hosts_of(vm)) - lost_at
        for vm in HA_VMS
        if any(s.at > lost_at and not s.hosts_of(vm) for s in sampler.samples)
    }
    plain_moved = [s.at for s in sampler.samples if s.hosts_of(PLAIN_VM) != [home[PLAIN_VM]]]
    beats_again = {vm: boots.first[vm] - restart_at for vm in HA_VMS}
    starts = {
        vm: ", ".join(
            f"{'ok' if ok else 'refused'} {end - restart_at:.1f} s"
            for end, ok in fleet.action_times("StartVM", vm, restart_at)
        )
        for vm in HA_VMS
    }
    refused = sum(1 for _, a, _, ok in during if a == "StartVM" and not ok)
    refusals = sorted(
        {
            str(o.error)
            for end, p in zip(fleet.pass_ends, fleet.passes, strict=True)
            if end > lost_at
            for o in p.outcomes
            if o.action.type.value == "StartVM" and not o.ok and not o.skipped
        }
    )
    back_on = {
        vm: sorted({h for s in sampler.samples[-5:] for h in s.hosts_of(vm)}) for vm in HA_VMS
    }
    print(
        f"\netcd quorum loss: members of {[m.name for m in victims]} (leader {leader.name}) "
        f"killed for {QUORUM_LOSS_S:g} s (lease TTL {LEASE_TTL_S} s, agent margin 1 s): "
        "self-fence after the loss "
        + ", ".join(f"{h} {s:.1f} s" for h, s in fence_s.items())
        + f" (median {statistics.median(fence_s.values()):.1f} s); libvirt reported the HA VMs "
        "stopped "
        + ", ".join(f"{vm} {s:.1f} s" for vm, s in down_s.items())
        + f" after it; non-HA VM off its host in {len(plain_moved)} samples; during the loss "
        f"{refused} StartVMs refused and {len(during) - refused} other VM actions; quorum "
        f"healthy {quorum_s:.1f} s after the members restarted; then StartVM "
        + "; ".join(f"{vm} {s or 'none'}" for vm, s in starts.items())
        + " and heartbeats again "
        + ", ".join(f"{vm} {s:.1f} s" for vm, s in beats_again.items())
        + f" after the restart, on {back_on} (before the loss: {home}); refusals: {refusals}"
    )
    assert sorted(fence_s) == sorted(home[vm] for vm in HA_VMS)
    assert fenced_vms == sorted(HA_VMS)
    assert all(s <= LEASE_TTL_S for s in fence_s.values()), fence_s
    assert set(down_s) == set(HA_VMS)
    assert all(last_seen_running[vm] > restart_at for vm in HA_VMS)
    assert plain_moved == []
    assert [(a, vm) for _, a, vm, ok in during if ok and a in ("StartVM", "MigrateVM")] == []
    assert sampler.double_runs(VMS) == []
    assert restart_wall > max(r.at for records in fenced.values() for r in records)
