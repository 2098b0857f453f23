"""Benchmark: HA restart after host loss, live-migration heartbeat gap, drain of 6 tiny VMs.

On a 3-host lab of its own (`bench`, 10.77.91.0/24; root needed) with real mTLS agents keeping
their fencing leases in the lab's etcd (one member per host) and the real controller
(controller.lab.fleet.LabFleet), tiny TCG guests printing a heartbeat every second:
- HA: host-1 holds 3 HA VMs and is killed (its agent, libvirtd, QEMUs and etcd member
  SIGKILLed, as a power loss would), for lease TTL 5 s (the floor that outlasts an etcd
  leader change) with HA margin 1 s and 2 s, and TTL 10 s with margin 2 s, `--runs` times
  each: seconds from the kill to host-1's key gone in etcd, to the
  restart and to each VM's first heartbeat on another host (min/median/max; target < 15 s),
  and how close the surviving agents came to their own self-fence meanwhile;
- migration: a VM's pin moves from host-2 to host-3: largest heartbeat gap (target < 1 s;
  heartbeats come once a second, so a gap just above 1 s means a pause of that excess) and
  the time from the spec change to status Running on host-3;
- drain: 6 VMs over 3 hosts, host-1 put in maintenance: seconds until it reports phase
  Maintenance (target < 60 s).
Figures are printed, not asserted. The lab is removed at the end, also on failure.
    python bench/bench_ha.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.cli.host import set_maintenance
from controller.lab.agents import LabAgents, LeasePoller
from controller.lab.fleet import LabFleet, lab_policy, reset_lab, tiny_vm
from controller.lab.guest import GuestImage, ensure_tiny_guest
from controller.lab.heartbeat import HeartbeatWatcher, largest_gap
from controller.lab.libvirtd import Lab

LAB_NAME = "bench"
LAB_SUBNET = "10.77.91.0/24"
HA_SETTINGS = ((5, 1), (5, 2), (10, 2))
"""(lease TTL s, controller HA margin s) of each HA series."""
LEASE_TTL_S = 5
"""The lease TTL of the migration and drain benchmarks."""
VICTIM = "host-1"
LEADER_SETTLE_S = 3.0
HA_TARGET_S = 15.0
GAP_TARGET_S = 1.0
DRAIN_TARGET_S = 60.0


def new_fleet(
    lab: Lab,
    agents: LabAgents,
    workdir: Path,
    maintenance: tuple[str, ...] = (),
    margin_s: int = 2,
) -> LabFleet:
    """Returns a LabFleet (fresh store, not started) with the lab's hosts (the agents' lease
    TTL) and the lab policy with HA margin `margin_s`."""
    reset_lab(lab, agents)
    fleet = LabFleet(lab, agents, Path(tempfile.mkdtemp(dir=workdir)))
    hosts = []
    for host in lab.hosts:
        obj = agents.host_manifest(host.name, lease_ttl_s=int(agents.lease_ttl_s))
        if host.name in maintenance:
            obj = obj.model_copy(update={"spec": obj.spec.model_copy(update={"maintenance": True})})
        hosts.append(obj)
    fleet.apply([*hosts, lab_policy(margin_s=margin_s)])
    return fleet


def restart_agents(lab: Lab, agents: LabAgents | None, lease_ttl_s: int) -> LabAgents:
    """Returns the lab's agents running with `lease_ttl_s`, after stopping `agents`, removing
    their stored leases (a restored lease would keep its old TTL in etcd) and bringing every
    host's libvirtd and etcd member back."""
    if agents is not None:
        agents.down()
    for host in lab.hosts:
        lab.start_host(host.name)
    for host in lab.hosts:
        (host.plan.root / "lease.json").unlink(missing_ok=True)
    fresh = LabAgents(lab, lease_ttl_s=lease_ttl_s)
    fresh.up()
    return fresh


def leader(lab: Lab) -> str:
    """Returns the name of the host whose etcd member leads the cluster."""
    for host in lab.hosts:
        status = lab.etcd.status(host)
        if status["leader"] == status["header"]["member_id"]:
            return host.name
    raise RuntimeError(f"lab {lab.name}: no etcd member leads")


def place_leader(lab: Lab, on_victim: bool, timeout_s: float = 15.0) -> None:
    """Moves etcd leadership onto host-1's member (or off it, to host-2's) unless it is
    there already, then waits LEADER_SETTLE_S for the agents' keepalives to settle."""
    current = leader(lab)
    if (current == VICTIM) == on_victim:
        return
    target = VICTIM if on_victim else "host-2"
    target_id = lab.etcd.status(lab.host(target))["header"]["member_id"]
    with lab.etcd.client([lab.host(current)]) as client:
        client.call("maintenance/transfer-leadership", {"targetID": target_id})
    deadline = time.monotonic() + timeout_s
    while leader(lab) != target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"etcd leadership did not move to {target} in {timeout_s:g}s")
        time.sleep(0.2)
    time.sleep(LEADER_SETTLE_S)


def ha_run(
    lab: Lab, agents: LabAgents, image: GuestImage, workdir: Path, margin_s: int, lead: bool
) -> dict:
    """Kills host-1 under 3 HA VMs once, its etcd member the leader if `lead`; returns what
    was measured (seconds from the kill)."""
    vms = ("bha-1", "bha-2", "bha-3")
    others = ["host-2", "host-3"]
    fleet = new_fleet(lab, agents, workdir, maintenance=tuple(others), margin_s=margin_s)
    try:
        fleet.apply([tiny_vm(vm, image, ha=True) for vm in vms])
        readers = fleet.heartbeats(vms)
        fleet.start()
        fleet.wait(lambda: all(fleet.vm_host(vm) == VICTIM for vm in vms), 180, "on host-1")
        for vm in vms:
            readers[vm].wait_new(1, timeout_s=90, source=VICTIM)
        for host in others:
            fleet.set_maintenance(host, False)
        fleet.wait(lambda: all(fleet.status("Host", h).phase == "Up" for h in others), 30, "up")
        place_leader(lab, lead)
        led = leader(lab) == VICTIM
        member = lab.host(VICTIM)
        with LeasePoller(agents, others) as survivors:
            killed, killed_wall = time.monotonic(), time.time()
            agents.stop(VICTIM, crash=True)
            lab.kill_host(VICTIM)
            lab.etcd.kill(member)
            resumed: dict[str, float] = {}
            while len(resumed) < len(vms) and time.monotonic() - killed < 120:
                for vm in vms:
                    new = [b for b in readers[vm].poll() if b.source != VICTIM]
                    if new and vm not in resumed:
                        resumed[vm] = new[0].seen_at - killed
                time.sleep(0.05)
        assert fleet.controller.lease_watch is not None
        gone = fleet.controller.lease_watch.view().gone_since.get(VICTIM)
        starts: dict[str, float | None] = {}
        booted: dict[str, float | None] = {}
        for vm in vms:
            ok = [t - killed for t, done in fleet.action_times("StartVM", vm, killed) if done]
            starts[vm] = ok[0] if ok else None
            ups = [t - killed for h, t in readers[vm].guest_up.items() if h != VICTIM]
            booted[vm] = min(ups) if ups else None
        return {
            "leader": led,
            "key_gone": gone.timestamp() - killed_wall if gone else None,
            "start": starts,
            "guest_up": booted,
            "beat": {vm: resumed.get(vm) for vm in vms},
            "survivor_least": survivors.least,
            "survivor_lapsed": sorted(survivors.lapsed),
        }
    finally:
        fleet.close()


def spread(values: list[float]) -> str:
    """Returns "min/median/max" of `values` (seconds), or "none"."""
    if not values:
        return "none"
    return f"{min(values):.1f}/{statistics.median(values):.1f}/{max(values):.1f}"


def summarize(results: list[dict]) -> str:
    """Returns min/median/max (s from the kill) of each stage over `results`' VMs."""
    keys = [r["key_gone"] for r in results if r["key_gone"] is not None]
    stages = {
        stage: [t for r in results for t in r[stage].values() if t is not None]
        for stage in ("start", "guest_up", "beat")
    }
    missing = sum(1 for r in results for t in r["beat"].values() if t is None)
    lapsed = sum(1 for r in results if r["survivor_lapsed"])
    return (
        f"key gone {spread(keys)}, StartVM {spread(stages['start'])}, GUEST-UP "
        f"{spread(stages['guest_up'])}, first heartbeat elsewhere {spread(stages['beat'])}"
        + (f" ({missing} never)" if missing else "")
        + f"; runs with a survivor's lease lapsed: {lapsed}"
    )


def bench_ha(
    lab: Lab, agents: LabAgents | None, image: GuestImage, workdir: Path, runs: int
) -> LabAgents:
    """Runs every HA series, host-1's etcd member the leader in odd runs and a follower in
    even ones; returns the agents it leaves running."""
    for ttl_s, margin_s in HA_SETTINGS:
        agents = restart_agents(lab, agents, ttl_s)
        results = []
        for run in range(1, runs + 1):
            found = ha_run(lab, agents, image, workdir, margin_s, lead=run % 2 == 1)
            results.append(found)
            beats = ", ".join(
                f"{vm} {t:.1f}" if t is not None else f"{vm} never"
                for vm, t in found["beat"].items()
            )
            key = f"{found['key_gone']:.1f}" if found["key_gone"] is not None else "never"
            print(
                f"HA run {run} (TTL {ttl_s} s, margin {margin_s} s, host-1's etcd member "
                f"{'the leader' if found['leader'] else 'a follower'}): key gone {key} s, "
                f"heartbeat elsewhere after {beats} s; survivors' least time before a "
                "self-fence "
                + ", ".join(f"{h} {t:.2f} s" for h, t in sorted(found["survivor_least"].items()))
                + (f", LAPSED: {found['survivor_lapsed']}" if found["survivor_lapsed"] else ""),
                flush=True,
            )
        led = [r for r in results if r["leader"]]
        followed = [r for r in results if not r["leader"]]
        print(
            f"HA restart after host loss (agent, libvirtd, QEMUs and etcd member killed), TTL "
            f"{ttl_s} s, margin {margin_s} s, {runs} runs x 3 VMs, min/median/max s from the "
            f"kill (target < {HA_TARGET_S:g} s): all runs: {summarize(results)} | its member "
            f"the leader ({len(led)} runs): {summarize(led)} | a follower ({len(followed)} "
            f"runs): {summarize(followed)}",
            flush=True,
        )
    return agents


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6, help="host kills per HA setting")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_ha: needs root (network namespaces, libvirtd)", file=sys.stderr)
        return 2
    image = ensure_tiny_guest()
    lab = Lab(LAB_NAME, LAB_SUBNET)
    lab.down()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            lab.up(3)
            agents = bench_ha(lab, None, image, Path(tmp), args.runs)
            agents = restart_agents(lab, agents, LEASE_TTL_S)
            bench_migration(lab, agents, image, Path(tmp))
            bench_drain(lab, agents, image, Path(tmp))
        finally:
            LabAgents(lab).remove_cuts()
            lab.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
