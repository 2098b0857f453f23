"""Agents inside two lab hosts live-migrate a tiny guest; its heartbeats go on."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agentapi import MigrateRequest
from controller.agents import AgentNotFound
from controller.lab.guest import GuestImage
from controller.lab.heartbeat import (
    HeartbeatWatcher,
    SerialLogReader,
    concurrent_runs,
    largest_gap,
    numbering_continues,
)
from controller.lab.libvirtd import Lab
from tests.helpers.guests import serial_path
from tests.helpers.lab_agents import agents_in_lab
from tests.helpers.specs import tiny_domain_spec

pytestmark = [pytest.mark.libvirtd, pytest.mark.lab]

NAME = "corral-t-agentmig"


def test_agent_live_migration_between_lab_hosts(
    lab: Lab, tiny_guest: GuestImage, tmp_path: Path
) -> None:
    source, target = lab.host("host-1"), lab.host("host-2")
    reader = SerialLogReader({h.name: h.outside(serial_path(NAME)) for h in (source, target)})
    with agents_in_lab(lab, [source.name, target.name], tmp_path) as agents:
        src, dst = agents[source.name], agents[target.name]
        try:
            src.ensure_domain_defined(tiny_domain_spec(NAME, tiny_guest))
            src.ensure_running(NAME)
            reader.wait_new(2, timeout_s=90, source=source.name)
            with HeartbeatWatcher(reader):
                started = time.monotonic()
                job = src.migrate(NAME, MigrateRequest(destination_uri=target.uri, timeout_s=60))
                while job.state == "running" and time.monotonic() - started < 90:
                    time.sleep(0.1)
                    job = src.get_migration(NAME)
                total_s = time.monotonic() - started
                reader.wait_new(3, timeout_s=30, source=target.name)
            beats = reader.beats
            print(
                f"\nagent live migration: job {job.state} in {job.elapsed_s:.2f} s "
                f"({total_s:.2f} s seen by the client), downtime {job.downtime_ms} ms, largest "
                f"heartbeat gap {largest_gap(beats):.2f} s (one heartbeat per 1 s)"
            )
            assert job.state == "completed", job.error
            assert dst.get_domain(NAME).state == "running"
            with pytest.raises(AgentNotFound):
                src.get_domain(NAME)
            assert numbering_continues(beats)
            assert concurrent_runs(beats) == []
        finally:
            for agent in (src, dst):
                agent.ensure_undefined(NAME, force=True)
            for host in (source, target):
                host.outside(serial_path(NAME)).unlink(missing_ok=True)
