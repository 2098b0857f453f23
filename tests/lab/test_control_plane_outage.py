"""No VM stops while the control plane is away: the controller, then PostgreSQL.

On the `cp` lab (3 hosts, an etcd member and an agent each) a controller on a private
PostgreSQL runs 3 HA VMs (one per host: hard anti-affinity) and 1 non-HA VM. Then (a) the
controller is stopped for CORRAL_OUTAGE_S seconds (60 unless told) and a new one comes back
on the same store; (b) PostgreSQL is stopped for as long under that controller; (c)
PostgreSQL starts again. Every host's running domains are sampled every 200 ms and every
heartbeat is stamped when first seen (50 ms polls): each VM runs on its original host in
every sample, no VM's heartbeat pauses over MAX_GAP_S, and the returning controller starts,
defines or migrates none of them.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from controller.lab.agents import LabAgents
from controller.lab.fleet import (
    DomainSampler,
    LabFleet,
    anti_affinity,
    lab_policy,
    reset_lab,
    tiny_vm,
)
from controller.lab.guest import GuestImage
from controller.lab.heartbeat import largest_gap
from controller.lab.libvirtd import Lab
from tests.helpers.private_pg import PrivatePostgres, private_pg  # noqa: F401
from tests.lab.cp_lab import MARGIN_S, HeartbeatPoller, cp_lab_fixture, host_objects  # noqa: F401

pytestmark = [pytest.mark.libvirtd, pytest.mark.lab]

OUTAGE_S = float(os.environ.get("CORRAL_OUTAGE_S", "60"))
HA_VMS = ("cpo-a", "cpo-b", "cpo-c")
PLAIN_VM = "cpo-d"
VMS = (*HA_VMS, PLAIN_VM)
MAX_GAP_S = 1.5
REDONE = frozenset({"StartVM", "DefineVM", "MigrateVM"})
SETTLE_S = 15.0
"""How long the returning controller is watched after each return (15 resyncs)."""


def vm_actions(fleet: LabFleet, after: float) -> list[str]:
    """Returns "Type vm on host" of every action on the proof's VMs in passes ended after
    `after` (monotonic seconds)."""
    return [
        f"{o.action.type.value} {o.action.target[1]} on {o.action.host}"
        for end, p in zip(fleet.pass_ends, fleet.passes, strict=True)
        if end > after
        for o in p.outcomes
        if o.action.target[1] in VMS and not o.skipped
    ]


def wait_settled(fleet: LabFleet, since: float, what: str) -> float:
    """Returns the seconds until a pass that ended after `since` converged, then lets the
    controller run SETTLE_S more."""
    took = fleet.wait(
        lambda: any(
            end > since and p.converged
            for end, p in zip(fleet.pass_ends, fleet.passes, strict=True)
        ),
        120,
        what,
    )
    time.sleep(SETTLE_S)
    return took


def test_no_vm_stops_while_controller_or_postgres_is_away(
    cp_lab: tuple[Lab, LabAgents],
    private_pg: PrivatePostgres,  # noqa: F811
    tiny_guest: GuestImage,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="controller.loop")
    lab, agents = cp_lab
    reset_lab(lab, agents)
    db = private_pg.url(private_pg.create_database())
    fleets = [LabFleet(lab, agents, tmp_path / "state-1", db=db)]
    try:
        first = fleets[0]
        first.apply([*host_objects(agents), lab_policy(margin_s=MARGIN_S)])
        first.apply(
            [tiny_vm(vm, tiny_guest, ha=True) for vm in HA_VMS]
            + [tiny_vm(PLAIN_VM, tiny_guest), anti_affinity("cpo-spread", HA_VMS)]
        )
        readers = first.heartbeats(VMS)
        first.start()
        first.wait(lambda: all(first.vm_host(vm) for vm in VMS), 180, "VMs running")
        home = {vm: first.vm_host(vm) for vm in VMS}
        assert len({home[vm] for vm in HA_VMS}) == len(lab.hosts), f"not spread: {home}"
        with HeartbeatPoller(readers):
            for vm in VMS:
                readers[vm].wait_new(2, timeout_s=60, source=home[vm])
            wait_settled(first, 0.0, "first controller settled")
            with DomainSampler(lab, interval_s=0.2) as sampler:
                watched_from = time.monotonic()
                # (a) The controller goes away entirely, then a new one comes back.
                first.close()
                controller_gone = time.monotonic()
                time.sleep(OUTAGE_S)
                back = LabFleet(lab, agents, tmp_path / "state-2", db=db)
                fleets.append(back)
                back.start()
                controller_back = time.monotonic()
                controller_outage_s = controller_back - controller_gone
                converged_a_s = wait_settled(back, controller_back, "returned controller settled")
                # (b) PostgreSQL goes away under the running controller; (c) it returns.
                private_pg.stop()
                pg_gone = time.monotonic()
                time.sleep(OUTAGE_S)
                private_pg.start()
                pg_back = time.monotonic()
                pg_outage_s = pg_back - pg_gone
                converged_c_s = wait_settled(back, pg_back, "controller settled after PostgreSQL")
                watched_to = time.monotonic()

        moved = [
            (round(s.at - watched_from, 1), vm, s.hosts_of(vm))
            for s in sampler.samples
            for vm in VMS
            if s.hosts_of(vm) != [home[vm]]
        ]
        gaps = {}
        for vm in VMS:
            beats = [b for b in readers[vm].beats if watched_from - 2 <= b.seen_at <= watched_to]
            assert {b.source for b in beats} == {home[vm]}, f"{vm} ran off {home[vm]}"
            assert [b.number for b in beats] == sorted({b.number for b in beats}), f"{vm} restarted"
            gaps[vm] = largest_gap(beats)
        after_controller = vm_actions(back, controller_back)
        after_pg = vm_actions(back, pg_back)
        passes_in_pg_outage = sum(1 for end in back.pass_ends if pg_gone < end < pg_back)
        store_failures = sum(1 for r in caplog.records if "store is unavailable" in r.message)
        print(
            f"\ncontrol plane outage ({len(HA_VMS)} HA + 1 non-HA VMs on {len(lab.hosts)} hosts, "
            f"lease TTL {agents.lease_ttl_s:g} s): controller away {controller_outage_s:.1f} s "
            f"(its successor converged {converged_a_s:.1f} s after starting), PostgreSQL away "
            f"{pg_outage_s:.1f} s (converged {converged_c_s:.1f} s after its return; "
            f"{passes_in_pg_outage} passes ended and {store_failures} failed on the store while "
            "it was away); "
            f"{len(sampler.samples)} samples over {watched_to - watched_from:.0f} s, "
            f"{len(moved)} with a VM off its host, sampler errors {sampler.errors}; "
            "largest heartbeat gap "
            + ", ".join(f"{vm} {gap:.2f} s" for vm, gap in gaps.items())
            + f"; VM actions after the controller's return: {after_controller or 'none'}, "
            f"after PostgreSQL's: {after_pg or 'none'} "
            f"({len(back.passes)} passes of the returned controller)"
        )
        assert moved == []
        assert sampler.errors == 0
        assert max(gaps.values()) <= MAX_GAP_S, gaps
        assert [a for a in after_controller if a.split()[0] in REDONE] == []
        assert [a for a in after_pg if a.split()[0] in REDONE] == []
    finally:
        for fleet in fleets:
            fleet.close()
        if not private_pg.is_up():
            private_pg.start()
        reset_lab(lab, agents)
