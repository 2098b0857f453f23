"""HA admission (N+1) on real hosts: the verdict matches the arithmetic, and losing a host
proves it right.

A lab of its own (name `adm`, 10.77.95.0/24: 3 hosts, mTLS agents keeping etcd leases, one
etcd member per host) whose Hosts keep back (`spec.reserved.memory`) all the memory their
agents report but room for two tiny VMs (96Mi each, plus 48Mi: never three). Every HA VM is
the same size, so N+1 is plain arithmetic: losing host h restarts as many of its m_h HA VMs
as the other hosts have free slots, highest priority first, and strands the rest; with
3 x 2 slots, n HA VMs survive any one loss exactly while n <= 4.

HA VMs are added one at a time. After each converges, every Host's `status.haAdmission`
(restarts, stranded VMs by name) and the fleet's line (`fleet_admission`, and `corral
status` on the controller's store) must say what the arithmetic says of the placements the
controller chose: "tolerates the loss of any one host" for 1 to 4 VMs, then, at 5, the loss
it names and the VM it would strand.

Then the verdict is made to hold by killing hosts (agent, libvirtd, QEMUs and etcd member,
as a power loss): at 4 HA VMs, a host with two of them is lost and both run elsewhere (the
controller's status, libvirt's running domains, heartbeats from their new hosts); at 5, the
host the fleet's line names is lost, and the VM it names is the one that finds no host
(HARestartImpossible, never running anywhere) while the rest of that host's HA VMs restart;
then, if that host held a single HA VM, a host holding two is lost too, and its own
haAdmission's choice holds (the higher HA priority restarts, the other is stranded). Each
lost host comes back (libvirtd, etcd member, agent), a stranded VM runs again there, and the
verdict is checked again before the next step. At most 5 TCG guests run at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.cli.main import app
from controller.lab.agents import LabAgents
from controller.lab.fleet import DomainSampler, LabFleet, lab_policy, reset_lab, tiny_vm
from controller.lab.guest import GuestImage
from controller.lab.libvirtd import Lab
from controller.plan.admission import ADMISSION_PREFIX, fleet_admission
from controller.plan.reasons import HA_RESTART_IMPOSSIBLE
from schemas.host import Host, Reserved
from tests.lab.ha_lab import agents_lab

pytestmark = [pytest.mark.libvirtd, pytest.mark.lab]

ADM_LAB_NAME = "adm"
ADM_LAB_SUBNET = "10.77.95.0/24"
ADM_LAB_HOSTS = 3
LEASE_TTL_S = 5
MARGIN_S = 2
"""The controller's HA restart margin (SchedulingPolicy haRestartMarginS)."""

MIB = 2**20
VM_MIB = 96
"""tiny_vm's memory, what the scheduler counts against a host."""
SLOTS = 2
"""Tiny VMs each host's allocatable memory holds."""
SPARE_MIB = 48
"""Allocatable beyond SLOTS VMs: less than one VM, so a third never fits."""
VMS = ("ha-1", "ha-2", "ha-3", "ha-4", "ha-5")
PRIORITY = {vm: 100 - 10 * i for i, vm in enumerate(VMS, 1)}
"""Distinct HA priorities (ha-1 highest): restart order, and so who is stranded, is fixed."""
TOLERATED_MAX = (ADM_LAB_HOSTS - 1) * SLOTS
"""The most HA VMs that survive the loss of any one host: what the others can take."""

runner = CliRunner()

AdmissionView = dict[str, tuple[int, tuple[str, ...]]]
"""Per host that is up: (HA VMs its loss would restart, HA VMs it would strand in order)."""


@pytest.fixture(name="adm_lab", scope="session")
def adm_lab_fixture() -> Iterator[tuple[Lab, LabAgents]]:
    """Yields the 3-host `adm` lab with an agent (lease TTL LEASE_TTL_S) in each host."""
    yield from agents_lab(ADM_LAB_NAME, ADM_LAB_SUBNET, ADM_LAB_HOSTS, LEASE_TTL_S)


@pytest.fixture(name="fleet")
def fleet_fixture(adm_lab: tuple[Lab, LabAgents], tmp_path: Path) -> Iterator[LabFleet]:
    """Yields a fresh controller (SQLite in tmp_path/state) over the lab's small hosts, not
    started. Afterwards (also on failure) it stops and every host is restored and emptied."""
    lab, agents = adm_lab
    reset_lab(lab, agents)
    fleet = LabFleet(lab, agents, tmp_path / "state")
    try:
        fleet.apply([*small_hosts(agents), lab_policy(margin_s=MARGIN_S)])
        yield fleet
    finally:
        fleet.close()
        reset_lab(lab, agents)


def host_up(fleet: LabFleet, host: str) -> bool:
    """Returns whether the controller last saw `host` Up (False before its first status)."""
    status = fleet.status("Host", host)
    return status is not None and status.phase == "Up"


def small_hosts(agents: LabAgents) -> list[Host]:
    """Returns the lab's Hosts, each reserving all the memory its agent reports but
    SLOTS x VM_MIB + SPARE_MIB (allocatable = capacity - reserved, no memory overcommit)."""
    hosts = []
    for host in agents.lab.hosts:
        with agents.client(host.name) as client:
            memory_mib = client.get_state().memory_mib
        obj = agents.host_manifest(host.name, lease_ttl_s=LEASE_TTL_S)
        reserved = Reserved(memory=(memory_mib - SLOTS * VM_MIB - SPARE_MIB) * MIB)
        hosts.append(
            obj.model_copy(update={"spec": obj.spec.model_copy(update={"reserved": reserved})})
        )
    return hosts


def expected_admission(placement: dict[str, str], up: list[str]) -> AdmissionView:
    """Returns what losing each host in `up` does by slot arithmetic: its HA VMs restart,
    highest priority first, into the free slots of the other hosts that are up."""
    on = {
        h: sorted((vm for vm, at in placement.items() if at == h), key=lambda vm: -PRIORITY[vm])
        for h in up
    }
    out: AdmissionView = {}
    for h in up:
        free = sum(SLOTS - len(on[other]) for other in up if other != h)
        restarts = min(len(on[h]), free)
        out[h] = (restarts, tuple(on[h][restarts:]))
    return out


def reported_admission(fleet: LabFleet, hosts: list[str]) -> AdmissionView:
    """Returns each host's status.haAdmission as (restarts, stranded), for hosts that have one;
    checks its `tolerated` flag agrees with its stranded list."""
    out: AdmissionView = {}
    for h in hosts:
        entry = fleet.status("Host", h).ha_admission
        if entry is not None:
            assert entry.tolerated == (not entry.stranded), (h, entry)
            out[h] = (entry.restarts, tuple(entry.stranded))
    return out


def fleet_line(fleet: LabFleet, hosts: list[str]) -> tuple[str, bool]:
    """Returns the fleet's verdict line and whether it holds, from the Host statuses."""
    verdict = fleet_admission((h, fleet.status("Host", h).ha_admission) for h in hosts)
    assert verdict is not None, fleet.describe()
    return verdict.line, verdict.tolerated


def status_line(state_dir: Path) -> str:
    """Returns the "HA admission: ..." line `corral status` prints for the controller's store."""
    result = runner.invoke(app, ["status", "--state-dir", str(state_dir)])
    assert result.exit_code == 0, result.output
    [line] = [s.strip() for s in result.output.splitlines() if s.strip().startswith("HA admis")]
    return line


def settle(fleet: LabFleet, vms: list[str], up: list[str]) -> dict[str, str]:
    """Returns where each VM runs once all run on hosts in `up` and two more passes ended
    (the Host statuses then come from a pass that saw every placement)."""
    fleet.wait(lambda: all(fleet.vm_host(vm) in up for vm in vms), 180, f"{vms} running")
    mark = len(fleet.passes)
    fleet.wait(lambda: len(fleet.passes) >= mark + 2, 30, "two passes after convergence")
    placement = {vm: fleet.vm_host(vm) for vm in vms}
    assert all(host in up for host in placement.values()), placement
    return placement


def check_verdict(
    fleet: LabFleet, state_dir: Path, vms: list[str], hosts: list[str], up: list[str]
) -> tuple[dict[str, str], AdmissionView, str]:
    """Returns (placement, per-host admission, fleet line) after asserting that every Host's
    haAdmission and the fleet's line, in the store and in `corral status`, say what the slot
    arithmetic says of the controller's placements."""
    placement = settle(fleet, vms, up)
    expected = expected_admission(placement, up)
    assert reported_admission(fleet, hosts) == expected, (placement, fleet.describe())
    line, tolerated = fleet_line(fleet, hosts)
    failing = {h: stranded for h, (_, stranded) in expected.items() if stranded}
    assert tolerated == (not failing)
    if not failing:
        assert line == (
            f"{ADMISSION_PREFIX}tolerates the loss of any one host ({len(up)} hosts up)"
        )
    else:
        worst = min(failing, key=lambda h: (-len(failing[h]), h))
        first = failing[worst][0]
        assert line.startswith(
            f"{ADMISSION_PREFIX}losing {worst} would leave {', '.join(failing[worst])} without "
            f"a host; {first}: No host has 1 CPU and {VM_MIB}Mi memory free"
        ), line
        # A stranded VM found every other host that is up full: SPARE_MIB left, not a VM.
        assert "hosts filtered: " in line and f"{worst} lost" in line, line
        for h in up:
            if h != worst:
                assert f"{h} memory {SPARE_MIB}Mi free" in line, line
        more = len(failing) - 1
        if more:
            also = f"; losing {more} other host{'s' if more > 1 else ''} would strand HA VMs too"
            assert line.endswith(also), line
        else:
            assert "would strand HA VMs too" not in line, line
    assert status_line(state_dir) == line
    return placement, expected, line


def per_host(placement: dict[str, str], hosts: list[str]) -> str:
    """Returns "host-1: ha-1 ha-3; host-2: ha-2; host-3: -"."""
    return "; ".join(
        f"{h}: {' '.join(sorted(vm for vm, at in placement.items() if at == h)) or '-'}"
        for h in hosts
    )


def kill_host(fleet: LabFleet, host: str) -> float:
    """Returns when (monotonic) `host` lost its agent, libvirtd, QEMUs and etcd member."""
    killed_at = time.monotonic()
    fleet.agents.stop(host, crash=True)
    fleet.lab.kill_host(host)
    fleet.lab.etcd.kill(fleet.lab.host(host))  # a power loss takes its etcd member too
    return killed_at


def restore_host(fleet: LabFleet, host: str, vms: list[str]) -> float:
    """Returns the seconds until `host` (libvirtd, etcd member, agent) is back Up and holds
    no domain but those of `vms` the controller runs there."""
    started = time.monotonic()
    fleet.lab.start_host(host)
    fleet.agents.start(host)
    fleet.wait(lambda: host_up(fleet, host), 60, f"{host} Up again")

    def only_placed() -> bool:
        with fleet.agents.client(host) as client:
            defined = {d.name for d in client.get_state().domains}
        return defined <= {vm for vm in vms if fleet.vm_host(vm) == host}

    fleet.wait(only_placed, 60, f"stale copies on {host} undefined")
    return time.monotonic() - started


def lose_and_check(
    fleet: LabFleet,
    host: str,
    placement: dict[str, str],
    stranded: tuple[str, ...],
    vms: list[str],
    hosts: list[str],
) -> None:
    """Kills `host`, asserts that its HA VMs but `stranded` restart on other hosts and that
    `stranded` never run anywhere (HARestartImpossible), then brings `host` back."""
    restarting = [vm for vm, at in placement.items() if at == host and vm not in stranded]
    others = [h for h in hosts if h != host]

    def ready_reason(vm: str) -> str | None:
        ready = fleet.status("VirtualMachine", vm).condition("Ready")
        return ready.reason if ready else None

    with DomainSampler(fleet.lab) as sampler:
        killed_at = kill_host(fleet, host)
        fleet.wait(
            lambda: (
                all(fleet.vm_host(vm) in others for vm in restarting)
                and all(ready_reason(vm) == HA_RESTART_IMPOSSIBLE for vm in stranded)
            ),
            90,
            f"{restarting} restarted and {stranded} stranded after losing {host}",
        )
        decided_s = time.monotonic() - killed_at
        time.sleep(3)  # a stranded VM must stay down, not just be late
    assert sampler.double_runs() == []
    for vm in stranded:
        assert fleet.vm_host(vm) is None
        assert all(vm not in names for s in sampler.samples[1:] for names in s.running.values())
        message = fleet.status("VirtualMachine", vm).condition("Ready").message
        assert message.startswith(
            f"Cannot restart HA VirtualMachine {vm} from failed host {host}: No host has"
        ), message
    restarted = {vm: fleet.vm_host(vm) for vm in restarting}
    print(
        f"ADM: killed {host} at n={len(vms)}: restarted {restarted or 'none'}, stranded "
        f"{list(stranded)} (as its haAdmission said), decided {decided_s:.1f} s after the kill"
    )
    # The host returns: the stranded VMs run again (there: the only free slots), all HA VMs run.
    back_s = restore_host(fleet, host, vms)
    placement = settle(fleet, vms, hosts)
    assert all(sum(1 for at in placement.values() if at == h) <= SLOTS for h in hosts), placement
    assert all(placement[vm] == host for vm in stranded), placement
    print(f"ADM: {host} back in {back_s:.1f} s [{per_host(placement, hosts)}]")


def test_admission_verdict_flips_at_n_plus_one_and_a_host_loss_proves_it(
    fleet: LabFleet, tiny_guest: GuestImage, tmp_path: Path
) -> None:
    began = time.monotonic()
    state_dir = tmp_path / "state"
    hosts = [h.name for h in fleet.lab.hosts]
    readers = fleet.heartbeats(VMS)
    fleet.start()
    fleet.wait(lambda: all(host_up(fleet, h) for h in hosts), 60, "hosts up")
    print(
        f"\nADM: {len(hosts)} hosts of {SLOTS} x {VM_MIB}Mi (+{SPARE_MIB}Mi) allocatable; "
        f"arithmetic: n HA VMs tolerate any one loss iff n <= {TOLERATED_MAX}"
    )

    # Fill the fleet one HA VM at a time up to the last size that tolerates a loss.
    vms: list[str] = []
    for vm in VMS[:TOLERATED_MAX]:
        vms.append(vm)
        fleet.apply([tiny_vm(vm, tiny_guest, ha=True, priority=PRIORITY[vm])])
        placement, expected, line = check_verdict(fleet, state_dir, vms, hosts, hosts)
        assert all(not stranded for _, stranded in expected.values())
        print(f"ADM: n={len(vms)} [{per_host(placement, hosts)}] -> {line}")

    # Lose a host holding two HA VMs: both must restart in the survivors' free slots.
    on = {h: [vm for vm, at in placement.items() if at == h] for h in hosts}
    victim = min(hosts, key=lambda h: (-len(on[h]), h))
    survivors = [h for h in hosts if h != victim]
    assert len(on[victim]) == SLOTS, placement
    with DomainSampler(fleet.lab) as sampler:
        killed_at = kill_host(fleet, victim)
        fleet.wait(
            lambda: all(fleet.vm_host(vm) in survivors for vm in on[victim]),
            90,
            f"{on[victim]} restarted off {victim}",
        )
        placed_s = time.monotonic() - killed_at
        resumed = {}
        for vm in on[victim]:
            target = fleet.vm_host(vm)
            readers[vm].wait_new(1, timeout_s=60, source=target)
            beats = [b for b in readers[vm].beats if b.source == target]
            resumed[vm] = (target, beats[0].seen_at - killed_at)
    assert sampler.double_runs() == []
    print(
        f"ADM: killed {victim} at n={len(vms)}: "
        + ", ".join(f"{vm} -> {t} (heartbeat {s:.1f} s)" for vm, (t, s) in resumed.items())
        + f"; all running elsewhere {placed_s:.1f} s after the kill "
        f"(lease TTL {LEASE_TTL_S} s, margin {MARGIN_S} s)"
    )
    # The two survivors are full now: losing either would strand both its HA VMs.
    placement, _, line = check_verdict(fleet, state_dir, vms, hosts, survivors)
    print(f"ADM: with {victim} down [{per_host(placement, hosts)}] -> {line}")

    back_s = restore_host(fleet, victim, vms)
    placement, _, line = check_verdict(fleet, state_dir, vms, hosts, hosts)
    print(f"ADM: {victim} back in {back_s:.1f} s [{per_host(placement, hosts)}] -> {line}")

    # One more HA VM than the fleet can protect: the verdict names a loss and its casualty.
    vms.append(VMS[TOLERATED_MAX])
    fleet.apply([tiny_vm(vms[-1], tiny_guest, ha=True, priority=PRIORITY[vms[-1]])])
    placement, expected, line = check_verdict(fleet, state_dir, vms, hosts, hosts)
    print(f"ADM: n={len(vms)} [{per_host(placement, hosts)}] -> {line}")
    failing = {h: stranded for h, (_, stranded) in expected.items() if stranded}
    assert failing, expected
    named = min(failing, key=lambda h: (-len(failing[h]), h))
    assert line.startswith(f"{ADMISSION_PREFIX}losing {named} would leave ")

    # Lose the host the fleet's line names: exactly the VMs it names find no host.
    lose_and_check(fleet, named, placement, expected[named][1], vms, hosts)
    placement, expected, line = check_verdict(fleet, state_dir, vms, hosts, hosts)
    print(f"ADM: after {named} came back [{per_host(placement, hosts)}] -> {line}")

    # Lose a host holding two HA VMs, if the line's host held one: its own haAdmission says
    # which of them restarts (the higher HA priority) and which is stranded.
    full = [h for h in hosts if sum(1 for at in placement.values() if at == h) == SLOTS]
    if sum(1 for at in placement.values() if at == named) < SLOTS and full:
        lose_and_check(fleet, full[0], placement, expected[full[0]][1], vms, hosts)
        placement = settle(fleet, vms, hosts)
    print(
        f"ADM: all back [{per_host(placement, hosts)}]; test ran {time.monotonic() - began:.0f} s"
    )
