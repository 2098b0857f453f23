"""A tiny guest on an isolated network with DHCP (inside a lab host of its own) gets a lease,
and the agent reports its address in the domain's state."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator

import pytest

from agentapi import NetworkSpec, NicSpec
from controller.lab.guest import GuestImage
from controller.lab.libvirtd import Lab
from tests.helpers.agent_server import serving_agent
from tests.helpers.prereq import host_skip_reason
from tests.helpers.services import require
from tests.helpers.specs import tiny_domain_spec

pytestmark = [pytest.mark.libvirtd, pytest.mark.lab]

LAB_NAME, LAB_SUBNET = "gip", "10.77.93.0/24"
"""A lab of its own: the shared `lab` fixture's hosts stay untouched by this test."""
NET, BRIDGE = "corral-t-dhcp", "clt-dhcp0"
VM = "corral-t-guestip"
DHCP_RANGE = [ipaddress.ip_address(f"10.77.92.{n}") for n in range(100, 151)]


@pytest.fixture(scope="module")
def host_uri() -> Iterator[str]:
    require("libvirt", host_skip_reason())
    lab = Lab(LAB_NAME, LAB_SUBNET)
    lab.down()
    try:
        [host] = lab.up(1)
        yield host.uri
    finally:
        lab.down()


def test_dhcp_lease_address_appears_in_state(host_uri: str, tiny_guest: GuestImage) -> None:
    network = NetworkSpec(
        name=NET,
        mode="isolated",
        bridge=BRIDGE,
        ipv4_cidr="10.77.92.1/24",
        dhcp_start="10.77.92.100",
        dhcp_end="10.77.92.150",
    )
    spec = tiny_domain_spec(VM, tiny_guest).model_copy(
        update={"nics": [NicSpec(network=NET, mac="52:54:00:77:92:01")]}
    )
    with serving_agent(host_uri) as agent:
        try:
            agent.ensure_network_defined(network)
            agent.ensure_network_active(NET)
            agent.ensure_domain_defined(spec)
            started = time.monotonic()
            agent.ensure_running(VM)
            state = agent.get_domain(VM)
            while not state.ips and time.monotonic() - started < 150:
                time.sleep(2)
                state = agent.get_domain(VM)
            print(f"guest address {state.ips} after {time.monotonic() - started:.1f} s")
            assert len(state.ips) == 1, state.guest
            assert ipaddress.ip_address(state.ips[0]) in DHCP_RANGE
            assert state.guest is not None and state.guest.source == "lease"
            assert state.guest.interfaces[0].mac == "52:54:00:77:92:01"
            assert [d.ips for d in agent.get_state().domains if d.name == VM] == [state.ips]
        finally:
            agent.ensure_undefined(VM, force=True)
            agent.ensure_network_inactive(NET)
            agent.ensure_network_undefined(NET)
