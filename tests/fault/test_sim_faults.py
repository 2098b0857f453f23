"""Fault injection on the simulated fleet: after each fault the fleet converges with no VM
lost, running twice, defined twice or started twice. Each test prints the faults it
injected and the violations it found (run with -s to see them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from tests.fault.faultkit import ControllerKilled, FaultFleet


@pytest.fixture
def fault_fleet(tmp_path: Path) -> Iterator[FaultFleet]:
    fleet = FaultFleet(tmp_path)
    yield fleet
    fleet.close()


def finish(fleet: FaultFleet, name: str) -> None:
    report = fleet.check()
    report.print(name)
    assert report.faults, "the test injected no fault"
    assert report.violations == []


@pytest.mark.parametrize("after", [1, 7, 40, 95])
def test_controller_killed_between_actions(fault_fleet: FaultFleet, after: int) -> None:
    fault_fleet.kill_budget = [after]
    first = fault_fleet.controller()
    with pytest.raises(ControllerKilled):
        fault_fleet.converge(first)
    fault_fleet.report.add("controller killed mid-plan")
    fault_fleet.kill_budget = None
    fault_fleet.converge(fault_fleet.controller())
    finish(fault_fleet, f"kill after {after} actions")


def test_agent_links_cut_and_answers_lost(fault_fleet: FaultFleet) -> None:
    ctl = fault_fleet.controller()
    sim = fault_fleet.fleet
    cut = fault_fleet.names[::3]

    def faults(i: int) -> None:
        if i == 0:
            for name in cut:
                sim.cut(name)
            for name in fault_fleet.names[1::3]:
                sim.faults[name].lose_answers = 2
            fault_fleet.report.add("links cut", len(cut))
        if i == 2:
            for name in cut:
                sim.cut(name, False)

    fault_fleet.converge(ctl, faults)
    fault_fleet.report.faults.update(sim.injected.counts)
    finish(fault_fleet, "links cut, answers lost")


def test_duplicated_verbs_and_stale_state_reads(fault_fleet: FaultFleet) -> None:
    sim = fault_fleet.fleet
    for name in fault_fleet.names:
        sim.faults[name].duplicate = 5
        sim.faults[name].stale_reads = 2
    fault_fleet.converge(fault_fleet.controller())
    fault_fleet.report.faults.update(sim.injected.counts)
    finish(fault_fleet, "duplicated verbs, stale (reordered) state reads")


def test_clock_jumps_forward_and_back(fault_fleet: FaultFleet) -> None:
    ctl = fault_fleet.controller()
    fault_fleet.converge(ctl)
    for seconds in (3600, -7200, 86400):
        fault_fleet.clock.jump(seconds)
        fault_fleet.report.add("clock jump")
        result = ctl.reconcile()
        assert not result.plan.actions, [a.message for a in result.plan.actions[:3]]
        assert result.converged
    finish(fault_fleet, "clock jumps")


@pytest.mark.postgres
def test_postgres_connections_dropped_mid_pass(tmp_path: Path, pg_url: str) -> None:
    fleet = FaultFleet(tmp_path, url=pg_url)
    try:
        ctl = fleet.controller()
        libpq = "host=127.0.0.1 port=5432 dbname=test"
        application = parse_qs(urlsplit(pg_url).query)["application_name"][0]
        dropped = [0]

        def drop_connections() -> None:
            with psycopg.connect(libpq, autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s AND pid <> pg_backend_pid()",
                    (application,),
                ).fetchall()
                dropped[0] += len(rows)

        original = ctl.executor.run

        def run_and_drop(plan, on_outcome=None):
            drop_connections()
            return original(plan, on_outcome)

        ctl.executor.run = run_and_drop
        fleet.converge(ctl)
        assert dropped[0] > 0, "no connection of the store was terminated: the fault never struck"
        fleet.report.add("PostgreSQL backends terminated", dropped[0])
        finish(fleet, "PostgreSQL connections dropped mid-pass")
    finally:
        fleet.close()
