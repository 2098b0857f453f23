"""Fixtures for end-to-end tests on this machine's real libvirtd: stores, agents, cleanup.

Every name a test creates on libvirt (domains, networks, pools) starts with a per-test
prefix, so parallel or leftover runs never collide, and the `libvirt_objects` finalizer
removes all of them, also when the test fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.e2ekit import (
    AgentProcess,
    LibvirtObjects,
    start_agent,
    stop_agent,
)
from tests.helpers.db_urls import db_url_fixtures

pg_schema_url, db_url = db_url_fixtures("corral_e2e", "pg_schema_url")


@pytest.fixture
def libvirt_objects(system_libvirt: str) -> Iterator[LibvirtObjects]:
    """Yield a recorder of libvirt objects with a unique name prefix; remove them all after."""
    import libvirt

    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    conn = libvirt.open(system_libvirt)
    made = LibvirtObjects(conn, f"e2e{uuid.uuid4().hex[:6]}")
    try:
        yield made
    finally:
        made.cleanup()
        conn.close()


@pytest.fixture
def real_agent(system_libvirt: str, tmp_path: Path) -> Iterator[AgentProcess]:
    """Yield a running `corral agent` over qemu:///system; stopped afterwards."""
    agent = start_agent(system_libvirt, tmp_path / "agent.log")
    try:
        yield agent
    finally:
        stop_agent(agent.process)
