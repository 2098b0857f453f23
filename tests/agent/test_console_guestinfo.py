"""Guest information: libvirt's answers mapped to GuestInfo, the source order, the cache,
and the addresses of a running domain in the agent's state (libvirt test driver)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from agentkit import make_spec

from agentapi import GuestFilesystem, GuestInfo, GuestInterface
from controller.agents import AgentClient
from nodeagent import domains
from nodeagent.agent import Agent
from nodeagent.guestinfo import (
    GuestInfoCache,
    details_from_guest_info,
    has_guest_agent_channel,
    interfaces_from_libvirt,
)


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        pytest.param({}, [], id="none"),
        pytest.param(
            {
                "vnet1": {"hwaddr": "52:54:00:00:00:02",
                          "addrs": [{"addr": "10.0.0.7", "prefix": 24, "type": 0}]},
                "vnet0": {"hwaddr": "52:54:00:00:00:01", "addrs": [
                    {"addr": "192.168.1.5", "prefix": 24, "type": 0},
                    {"addr": "fe80::5054:ff:fe00:1", "prefix": 64, "type": 1},
                ]},
            },
            [
                GuestInterface(name="vnet0", mac="52:54:00:00:00:01",
                               addresses=["192.168.1.5/24", "fe80::5054:ff:fe00:1/64"]),
                GuestInterface(name="vnet1", mac="52:54:00:00:00:02", addresses=["10.0.0.7/24"]),
            ],
            id="sorted-by-name-v4-and-v6",
        ),
        pytest.param(
            {"lo": {"hwaddr": None, "addrs": [{"addr": "garbage", "prefix": 8}]}},
            [GuestInterface(name="lo", mac=None, addresses=[])],
            id="non-ip-dropped",
        ),
    ],
)  # fmt: skip
def test_interfaces_from_libvirt(found: dict, expected: list[GuestInterface]) -> None:
    assert interfaces_from_libvirt(found) == expected


def test_ips_skip_loopback_and_duplicates() -> None:
    info = GuestInfo(
        source="agent",
        at=0.0,
        interfaces=[
            GuestInterface(name="lo", addresses=["127.0.0.1/8", "::1/128"]),
            GuestInterface(name="eth0", addresses=["10.0.0.5/24", "fe80::1/64"]),
            GuestInterface(name="eth0.1", addresses=["10.0.0.5/24"]),
        ],
    )
    assert info.ips() == ["10.0.0.5", "fe80::1"]


def test_details_from_guest_agent_parameters() -> None:
    params = {
        "hostname": "web-1",
        "os.id": "debian",
        "os.pretty-name": "Debian GNU/Linux 12 (bookworm)",
        "os.version": "12 (bookworm)",
        "fs.count": 2,
        "fs.0.mountpoint": "/",
        "fs.0.name": "vda1",
        "fs.0.fstype": "ext4",
        "fs.0.total-bytes": 10_000,
        "fs.0.used-bytes": 2_500,
        "fs.1.mountpoint": "/boot/efi",
        "fs.1.fstype": "vfat",
    }
    assert details_from_guest_info(params) == {
        "hostname": "web-1",
        "os_id": "debian",
        "os_name": "Debian GNU/Linux 12 (bookworm)",
        "os_version": "12 (bookworm)",
        "filesystems": [
            GuestFilesystem(
                mountpoint="/", name="vda1", type="ext4", total_bytes=10_000, used_bytes=2_500
            ),
            GuestFilesystem(mountpoint="/boot/efi", type="vfat"),
        ],
    }


@pytest.mark.parametrize(
    ("devices", "expected"),
    [
        ("<channel type='unix'><target name='org.qemu.guest_agent.0'/></channel>", True),
        ("<channel type='spicevmc'><target name='com.redhat.spice.0'/></channel>", False),
        ("", False),
    ],
    ids=["qemu-ga", "spice-channel", "no-channel"],
)  # fmt: skip
def test_guest_agent_channel_detection(devices: str, expected: bool) -> None:
    assert has_guest_agent_channel(f"<domain><devices>{devices}</devices></domain>") is expected


def test_running_domain_reports_its_lease_address(
    agent: Agent, client_for: Callable[[Agent], AgentClient]
) -> None:
    client = client_for(agent)
    spec = make_spec(disks=[])
    client.ensure_domain_defined(spec)
    assert (client.get_domain(spec.name).ips, client.get_domain(spec.name).guest) == ([], None)
    client.ensure_running(spec.name)
    state = client.get_domain(spec.name)
    # The test driver answers lease queries with a fixed address for every NIC.
    assert state.ips == ["192.168.122.3"]
    assert state.guest is not None and state.guest.source == "lease"
    assert state.guest.interfaces[0].mac == "52:54:00:00:00:01"
    assert [d.ips for d in client.get_state().domains if d.name == spec.name] == [["192.168.122.3"]]
    client.ensure_destroyed(spec.name)
    assert client.get_domain(spec.name).ips == []


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_cache_rereads_after_max_age(agent: Agent) -> None:
    conn = agent.ctx.connection.get()
    spec = make_spec(disks=[])
    domains.ensure_domain_defined(agent.ctx, spec.name, spec)
    domains.ensure_running(agent.ctx, spec.name)
    dom = conn.lookupByName(spec.name)
    clock = Clock()
    cache = GuestInfoCache(max_age_s=10, clock=clock)
    first = cache.get(dom, True)
    assert first is not None and first.at == 100.0
    clock.now = 109.0
    assert cache.get(dom, True) is first
    clock.now = 110.0
    again = cache.get(dom, True)
    assert again is not None and again.at == 110.0
    assert cache.get(dom, False) is None
