"""Fixtures of the HA, migration, drain and split-brain proofs: a 3-host lab with real mTLS
agents, and a fresh controller (LabFleet) per test. Test modules import
`ha_lab_fixture` and `fleet_fixture`; tests ask for `ha_lab` and `fleet`.

The lab is its own (name `ha`, 10.77.98.0/24), apart from the shared `lab` fixture's, so its
faults never hit another suite. Everything is torn down also on failure: each test's fleet
stops, every host comes back (libvirtd, link, agent) and every domain is removed; the session
ends by lifting any agent-link cut and `Lab.down`, which kills the agents with everything
else in the namespaces.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.lab.agents import LabAgents
from controller.lab.fleet import LabFleet, lab_policy, reset_lab
from controller.lab.libvirtd import Lab
from schemas.host import Host
from tests.helpers.prereq import host_skip_reason
from tests.helpers.services import require

HA_LAB_NAME = "ha"
HA_LAB_SUBNET = "10.77.98.0/24"
HA_LAB_HOSTS = 3
LEASE_TTL_S = 5


def netns_skip_reason() -> str | None:
    """Returns why network namespaces cannot be made here (None when they can)."""
    probe = "corral-probe-ns"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"no network namespace support: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def agents_lab(
    name: str, subnet: str, hosts: int, lease_ttl_s: int
) -> Iterator[tuple[Lab, LabAgents]]:
    """Yields a lab of `hosts` hosts, each with a Corral agent (mTLS, etcd lease of
    `lease_ttl_s`); lifts any cut and removes the lab afterwards, also on failure."""
    require("libvirt", host_skip_reason())
    require("netns", netns_skip_reason())
    lab = Lab(name, subnet)
    lab.down()  # whatever a crashed earlier run left
    try:
        lab.up(hosts)
        agents = LabAgents(lab, lease_ttl_s=lease_ttl_s)
        agents.up()
        yield lab, agents
    finally:
        LabAgents(lab).remove_cuts()
        lab.down()


@pytest.fixture(name="ha_lab", scope="session")
def ha_lab_fixture() -> Iterator[tuple[Lab, LabAgents]]:
    """Yields a 3-host lab with a Corral agent (mTLS) in each host; removed at session end."""
    yield from agents_lab(HA_LAB_NAME, HA_LAB_SUBNET, HA_LAB_HOSTS, LEASE_TTL_S)


@pytest.fixture(name="fleet")
def fleet_fixture(ha_lab: tuple[Lab, LabAgents], tmp_path: Path) -> Iterator[LabFleet]:
    """Yields a fresh controller over the lab's hosts (TTL 5 s, HA margin 2 s), not started.

    Afterwards (also on failure) the controller stops and every host is restored and emptied.
    """
    lab, agents = ha_lab
    reset_lab(lab, agents)
    fleet = LabFleet(lab, agents, tmp_path / "state")
    try:
        fleet.apply(host_objects(agents))
        fleet.apply([lab_policy(margin_s=2)])
        yield fleet
    finally:
        fleet.close()
        reset_lab(lab, agents)


def host_objects(
    agents: LabAgents, maintenance: tuple[str, ...] = (), lease_ttl_s: int = LEASE_TTL_S
) -> list[Host]:
    """Returns the lab's Host objects, those named in `maintenance` drained."""
    hosts = []
    for host in agents.lab.hosts:
        obj = agents.host_manifest(host.name, lease_ttl_s=lease_ttl_s)
        if host.name in maintenance:
            obj = obj.model_copy(update={"spec": obj.spec.model_copy(update={"maintenance": True})})
        hosts.append(obj)
    return hosts
