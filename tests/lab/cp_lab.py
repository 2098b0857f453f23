"""Fixtures of the control-plane and etcd fault proofs: a 3-host lab of their own (name `cp`,
10.77.96.0/24) with real mTLS agents keeping etcd leases of LEASE_TTL_S, one etcd member per
host. Test modules import `cp_lab_fixture` (and `fleet_fixture` for a fresh SQLite-backed
controller per test); tests ask for `cp_lab` and `fleet`.

Everything is torn down also on failure: each test's fleet stops, every host comes back
(libvirtd, etcd member, link, agent) and every domain is removed; the session ends with
`Lab.down`, which kills the agents and members with everything else in the namespaces.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.lab.agents import LabAgents
from controller.lab.fleet import LabFleet, lab_policy, reset_lab
from controller.lab.heartbeat import SerialLogReader
from controller.lab.libvirtd import Lab, LabHost
from schemas.host import Host
from tests.lab.ha_lab import agents_lab

CP_LAB_NAME = "cp"
CP_LAB_SUBNET = "10.77.96.0/24"
CP_LAB_HOSTS = 3
LEASE_TTL_S = 5
MARGIN_S = 2
"""The controller's HA restart margin (SchedulingPolicy haRestartMarginS)."""


@pytest.fixture(name="cp_lab", scope="session")
def cp_lab_fixture() -> Iterator[tuple[Lab, LabAgents]]:
    """Yields the 3-host `cp` lab with an agent (TTL LEASE_TTL_S) in each host."""
    yield from agents_lab(CP_LAB_NAME, CP_LAB_SUBNET, CP_LAB_HOSTS, LEASE_TTL_S)


@pytest.fixture(name="fleet")
def fleet_fixture(cp_lab: tuple[Lab, LabAgents], tmp_path: Path) -> Iterator[LabFleet]:
    """Yields a fresh controller (SQLite) over the lab's hosts, HA margin MARGIN_S, not started.

    Afterwards (also on failure) the controller stops and every host is restored and emptied.
    """
    lab, agents = cp_lab
    reset_lab(lab, agents)
    fleet = LabFleet(lab, agents, tmp_path / "state")
    try:
        fleet.apply([*host_objects(agents), lab_policy(margin_s=MARGIN_S)])
        yield fleet
    finally:
        fleet.close()
        reset_lab(lab, agents)


def host_objects(agents: LabAgents) -> list[Host]:
    """Returns the lab's Host objects with the agents' lease TTL."""
    return [agents.host_manifest(h.name, lease_ttl_s=LEASE_TTL_S) for h in agents.lab.hosts]


def leader_host(lab: Lab) -> LabHost:
    """Returns the host whose etcd member reports itself the cluster's leader."""
    for host in lab.hosts:
        status = lab.etcd.status(host)
        if status["leader"] == status["header"]["member_id"]:
            return host
    raise AssertionError("no etcd member reports itself leader")


class HeartbeatPoller:
    """Polls several SerialLogReaders from one thread every `interval_s`, so each beat's
    first-seen time is precise to that interval. Use as a context manager."""

    def __init__(self, readers: dict[str, SerialLogReader], interval_s: float = 0.05) -> None:
        self.readers = readers
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeat-poller", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            for reader in self.readers.values():
                reader.poll()
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def __enter__(self) -> HeartbeatPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for reader in self.readers.values():
            reader.poll()
