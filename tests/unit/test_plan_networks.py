"""Networks: defined and started on every healthy host their selector picks."""

from __future__ import annotations

import pytest
from fleet_sim import FleetSim, desired_of, summary
from plan_fixtures import POLICY, host, network, plan_after

from controller.plan import plan
from controller.plan.networks import bridge_name, network_spec


def _net_state(sim, h, name="lan"):
    return next(n for n in sim.hosts[h].state.networks if n.name == name)


def _deactivate(sim):
    state = sim.hosts["host-a"].state
    state.networks[0] = state.networks[0].model_copy(update={"active": False})


def _redhcp(sim):
    state = sim.hosts["host-a"].state
    spec = state.networks[0].spec.model_copy(update={"dhcp_start": None, "dhcp_end": None})
    state.networks[0] = state.networks[0].model_copy(update={"spec": spec})


BASE = [host("host-a"), host("host-b", labels={"zone": "b"})]
DHCP = {"ipv4": {"cidr": "10.10.0.0/24", "dhcp": {"start": "10.10.0.10", "end": "10.10.0.99"}}}

ROWS = [
    ("converged-noop", [network(**DHCP)], None, None, []),
    (
        "inactive-is-started",
        [network(**DHCP)],
        None,
        _deactivate,
        [("StartNetwork", "Network/lan", "host-a", "Starting")],
    ),
    (
        "changed-by-hand-is-redefined",
        [network(**DHCP)],
        None,
        _redhcp,
        [("DefineNetwork", "Network/lan", "host-a", "Updating")],
    ),
    (
        "spec-change-redefines-everywhere",
        [network(**DHCP)],
        [network(ipv4={"cidr": "10.20.0.0/24"})],
        None,
        [
            ("DefineNetwork", "Network/lan", "host-a", "Updating"),
            ("DefineNetwork", "Network/lan", "host-b", "Updating"),
        ],
    ),
    (
        "new-network-on-selected-host-only",
        [],
        [network("dmz", mode="isolated", ipv4=None, hostSelector={"matchLabels": {"zone": "b"}})],
        None,
        [
            ("DefineNetwork", "Network/dmz", "host-b", "Creating"),
            ("StartNetwork", "Network/dmz", "host-b", "Starting"),
        ],
    ),
    (
        "unreachable-host-skipped",
        [],
        [network(**DHCP)],
        lambda s: s.kill("host-b"),
        [
            ("DefineNetwork", "Network/lan", "host-a", "Creating"),
            ("StartNetwork", "Network/lan", "host-a", "Starting"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("before", "after", "mutate", "expected"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS]
)
def test_network_plan(before, after, mutate, expected):
    _, p = plan_after(
        BASE + before,
        BASE + after if after is not None else None,
        mutate=mutate,
        hosts=("host-a", "host-b"),
    )
    assert summary(p) == expected


def test_network_payload_and_diff():
    _, p = plan_after(
        [*BASE, network(**DHCP)],
        [*BASE, network(ipv4={"cidr": "10.20.0.0/24", "gateway": "10.20.0.254"})],
        hosts=("host-a", "host-b"),
    )
    action = p.actions[0]
    assert action.payload == {
        "name": "lan",
        "uuid": None,
        "mode": "nat",
        "bridge": "cr-lan",
        "forward_dev": None,
        "vlan_id": None,
        "ipv4_cidr": "10.20.0.254/24",
        "dhcp_start": None,
        "dhcp_end": None,
        "autostart": True,
    }
    assert sorted(op["path"] for op in action.diff) == ["/dhcp_end", "/dhcp_start", "/ipv4_cidr"]
    assert "uuid" not in {op["path"].strip("/") for op in action.diff}


@pytest.mark.parametrize(
    ("name", "expected"),
    [("lan", "cr-lan"), ("backend-1", "cr-backend-1"), ("a-very-long-network-name", None)],
    ids=["short", "fits-15", "hashed-when-long"],
)
def test_bridge_names(name, expected):
    got = bridge_name(name)
    assert len(got) <= 15
    if expected:
        assert got == expected
    else:
        assert got.startswith("cr-a-very") and got != bridge_name(name + "x")


def test_bridge_mode_keeps_the_host_bridge():
    spec = network_spec(network("uplink", mode="bridge", bridge="br0", ipv4=None, vlan=20))
    assert (spec.mode, spec.bridge, spec.vlan_id, spec.ipv4_cidr) == ("bridge", "br0", 20, None)


def test_no_matching_host_is_stalled():
    objects = [host("host-a"), network(hostSelector={"matchLabels": {"zone": "nowhere"}})]
    p = plan(desired_of(*objects), FleetSim.of("host-a").observed(), POLICY)
    v = p.verdicts[("Network", "lan")]
    assert (p.empty, v.ready, v.reason, v.stalled) == (True, False, "NoHosts", True)


def test_verdict_lists_active_hosts_and_unreachable_ones():
    _sim, p = plan_after(
        [*BASE, network()], mutate=lambda s: s.kill("host-b"), hosts=("host-a", "host-b")
    )
    v = p.verdicts[("Network", "lan")]
    assert (v.ready, v.reason, v.fields["hosts"]) == (True, "Converged", ["host-a"])
    assert "not answering: host-b" in v.message
