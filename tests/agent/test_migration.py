"""Migration jobs through the agent. The test driver cannot migrate (p2p unsupported): the
job must fail typed with libvirt's code; real migrations are proven by the lab tests."""

from __future__ import annotations

import time

import libvirt
import pytest

from agentapi import MigrateRequest
from controller.agents import AgentConflict, AgentNotFound

REQUEST = MigrateRequest(
    destination_uri="test:///default", bandwidth_mibps=100, max_downtime_ms=300, timeout_s=30
)


def _finished(client, name):
    deadline = time.monotonic() + 5
    job = client.get_migration(name)
    while job.state == "running" and time.monotonic() < deadline:
        time.sleep(0.02)
        job = client.get_migration(name)
    return job


def test_migration_job_fails_typed_on_a_driver_without_migration(client, spec):
    client.ensure_domain_defined(spec)
    client.ensure_running("web-1")

    started = client.migrate("web-1", REQUEST)
    job = _finished(client, "web-1")

    assert (started.state, started.destination_uri) == ("running", "test:///default")
    assert job.state == "failed"
    assert job.error.type == "libvirt_error"
    assert job.error.libvirt_code == libvirt.VIR_ERR_NO_SUPPORT
    assert client.get_domain("web-1").state == "running"
    assert client.get_domain("web-1").migration.state == "failed"
    assert client.cancel_migration("web-1").changed is False


def test_migrating_a_stopped_domain_is_a_conflict(client, spec):
    client.ensure_domain_defined(spec)
    with pytest.raises(AgentConflict, match="not running"):
        client.migrate("web-1", REQUEST)


def test_migration_of_unknown_domain_is_not_found(client):
    with pytest.raises(AgentNotFound):
        client.migrate("ghost", REQUEST)
    with pytest.raises(AgentNotFound):
        client.get_migration("ghost")
