"""The node agent manages a libvirt network on a lab host (its bridge lives in that host's
network namespace, so the machine's own network is untouched)."""

from __future__ import annotations

import subprocess

import pytest

from agentapi import NetworkSpec
from controller.lab.libvirtd import Lab
from tests.helpers.agent_server import serving_agent

pytestmark = [pytest.mark.libvirtd, pytest.mark.lab]

NET = "corral-t-iso"
BRIDGE = "clt-iso0"


def bridge_addresses(lab: Lab, host: str) -> str | None:
    """Returns `ip -br addr` of the bridge inside the lab host, or None if it does not exist."""
    proc = lab.run_in_host(
        host,
        ["ip", "-br", "addr", "show", BRIDGE],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    out, _ = proc.communicate(timeout=30)
    return out if proc.returncode == 0 else None


def test_isolated_network_define_activate_deactivate_undefine(lab: Lab) -> None:
    host = lab.host("host-1")
    spec = NetworkSpec(name=NET, mode="isolated", bridge=BRIDGE, ipv4_cidr="10.77.98.1/24")
    with serving_agent(host.uri) as agent:
        try:
            assert agent.ensure_network_defined(spec).created is True
            assert agent.ensure_network_defined(spec).changed is False
            assert agent.ensure_network_active(NET).changed is True
            assert agent.ensure_network_active(NET).changed is False
            state = agent.get_network(NET)
            assert (state.active, state.spec and state.spec.ipv4_cidr) == (True, "10.77.98.1/24")
            assert "10.77.98.1/24" in (bridge_addresses(lab, host.name) or "")

            assert agent.ensure_network_inactive(NET).changed is True
            assert bridge_addresses(lab, host.name) is None
            assert agent.ensure_network_undefined(NET).changed is True
            assert NET not in [n.name for n in agent.list_networks()]
        finally:
            agent.ensure_network_undefined(NET)
