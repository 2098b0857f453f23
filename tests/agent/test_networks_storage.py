"""Network, pool, volume and snapshot verbs on the test driver, incl. repeats and bad input."""

from __future__ import annotations

import libvirt
import pytest

from agentapi import NetworkSpec, PoolSpec, SnapshotSpec, VolumeSpec
from controller.agents import AgentConflict, AgentLibvirtError, AgentNotFound, InvalidSpec

NAT = NetworkSpec(
    name="lan",
    mode="nat",
    bridge="virbr7",
    ipv4_cidr="10.77.7.1/24",
    dhcp_start="10.77.7.10",
    dhcp_end="10.77.7.99",
)
GIB = 1 << 30


def test_network_define_activate_deactivate_undefine_repeat(client):
    defined = [client.ensure_network_defined(NAT) for _ in range(2)]
    active = [client.ensure_network_active("lan") for _ in range(2)]

    assert [(r.changed, r.created) for r in defined] == [(True, True), (False, False)]
    assert [r.changed for r in active] == [True, False]
    observed = client.get_network("lan")
    assert observed.spec == NAT.model_copy(update={"uuid": observed.uuid})
    assert (observed.active, observed.autostart) == (True, True)

    assert [client.ensure_network_inactive("lan").changed for _ in range(2)] == [True, False]
    assert [client.ensure_network_undefined("lan").changed for _ in range(2)] == [True, False]
    with pytest.raises(AgentNotFound):
        client.get_network("lan")


@pytest.mark.parametrize(
    "spec",
    [
        NetworkSpec(name="iso", mode="isolated", ipv4_cidr="10.8.0.1/24"),
        NetworkSpec(name="br", mode="bridge", bridge="br0"),
        NetworkSpec(name="vlan42", mode="bridge", bridge="ovsbr0", vlan_id=42),
        NetworkSpec(name="nat-dev", mode="nat", forward_dev="eth0", ipv4_cidr="10.9.0.1/24"),
    ],
    ids=["isolated", "bridge", "vlan", "nat-dev"],
)
def test_network_modes_round_trip(client, spec):
    client.ensure_network_defined(spec)
    observed = client.get_network(spec.name).spec
    assert observed.model_copy(update={"uuid": None, "bridge": spec.bridge or None}) == spec


def test_network_change_on_active_network_needs_restart(client):
    client.ensure_network_defined(NAT)
    client.ensure_network_active("lan")

    wider = NAT.model_copy(update={"dhcp_end": "10.77.7.200"})
    result = client.ensure_network_defined(wider)

    # The test driver shows only the running network's XML, not the pending persistent
    # definition (no VIR_NETWORK_XML_INACTIVE), so the read-back is checked in the lab.
    assert (result.changed, result.restart_required) == (True, ["dhcp_end"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mode": "bridge"}, "body"),
        ({"mode": "nat", "ipv4_cidr": "10.0.0.1"}, "ipv4_cidr"),
        ({"mode": "nat", "vlan_id": 5}, "body"),
        (
            {
                "mode": "nat",
                "ipv4_cidr": "10.0.0.1/24",
                "dhcp_start": "10.0.1.2",
                "dhcp_end": "10.0.1.9",
            },
            "body",
        ),
    ],
    ids=["bridge-without-name", "cidr-without-prefix", "vlan-on-nat", "dhcp-outside"],
)
def test_bad_network_is_invalid_spec(client, body, field):
    response = client._http.put("networks/n", json={"name": "n", **body})
    assert response.status_code == 422
    assert (response.json()["type"], response.json()["field"]) == ("invalid_spec", field)


def test_network_in_use_cannot_be_stopped(client, spec):
    client.ensure_domain_defined(spec)
    client.ensure_running("web-1")

    with pytest.raises(AgentConflict, match="web-1"):
        client.ensure_network_inactive("default")
    assert client.get_network("default").active is True


def test_pool_define_build_start_repeat_and_undefine(client):
    spec = PoolSpec(name="vm-disks", type="dir", target_path="/var/lib/corral/vm-disks")

    results = [client.ensure_pool(spec) for _ in range(2)]

    assert [(r.changed, r.created) for r in results] == [(True, True), (False, False)]
    pool = client.get_pool("vm-disks")
    assert (pool.active, pool.autostart, pool.spec.target_path) == (
        True,
        True,
        "/var/lib/corral/vm-disks",
    )
    assert [client.ensure_pool_undefined("vm-disks").changed for _ in range(2)] == [True, False]


def test_volume_create_thin_clone_and_repeat(client):
    base = VolumeSpec(name="base.qcow2", capacity_bytes=GIB)
    clone = VolumeSpec(
        name="web-1.qcow2", capacity_bytes=2 * GIB, backing_path="/var/lib/corral/images/base.qcow2"
    )

    created = [client.ensure_volume("images", base), client.ensure_volume("images", clone)]
    again = client.ensure_volume("images", clone)

    assert [r.created for r in created] == [True, True]
    assert (again.changed, again.created, again.resized) == (False, False, False)
    observed = client.get_volume("images", "web-1.qcow2")
    assert (observed.backing_path, observed.backing_format, observed.format) == (
        "/var/lib/corral/images/base.qcow2",
        "qcow2",
        "qcow2",
    )
    names = [v.name for v in client.get_pool("images").volumes]
    assert names == ["base.qcow2", "web-1.qcow2"]
    assert [client.ensure_volume_deleted("images", "web-1.qcow2").changed for _ in range(2)] == [
        True,
        False,
    ]


def test_volume_shrink_is_invalid_and_keeps_the_volume(client):
    client.ensure_volume("images", VolumeSpec(name="v", capacity_bytes=2 * GIB))

    with pytest.raises(InvalidSpec) as caught:
        client.ensure_volume("images", VolumeSpec(name="v", capacity_bytes=GIB))

    assert caught.value.field == "capacity_bytes"
    assert client.get_volume("images", "v").capacity_bytes == 2 * GIB


def test_volume_with_other_format_is_a_conflict(client):
    client.ensure_volume("images", VolumeSpec(name="v", capacity_bytes=GIB, format="raw"))

    with pytest.raises(AgentConflict, match="format raw"):
        client.ensure_volume("images", VolumeSpec(name="v", capacity_bytes=GIB))


def test_unsupported_driver_call_passes_libvirt_code(client):
    """The test driver cannot resize or stream volumes: libvirt's VIR_ERR_NO_SUPPORT comes
    through typed (the real-libvirtd lab tests cover these verbs)."""
    client.ensure_volume("images", VolumeSpec(name="v", capacity_bytes=GIB))

    for call in (
        lambda: client.ensure_volume("images", VolumeSpec(name="v", capacity_bytes=2 * GIB)),
        lambda: client.upload_volume("images", "v", b"\0" * 4096),
        lambda: b"".join(client.download_volume("images", "v")),
    ):
        with pytest.raises(AgentLibvirtError) as caught:
            call()
        assert caught.value.libvirt_code == libvirt.VIR_ERR_NO_SUPPORT


def test_volume_verbs_on_missing_pool_or_volume(client):
    with pytest.raises(AgentNotFound):
        client.get_volume("nope", "v")
    with pytest.raises(AgentNotFound):
        client.get_volume("images", "nope")
    assert client.ensure_volume_deleted("images", "nope").changed is False


def test_snapshot_create_list_revert_delete(client, spec):
    client.ensure_domain_defined(spec)
    client.ensure_running("web-1")

    made = [client.ensure_snapshot("web-1", "s1", SnapshotSpec(description="before")) for _ in "ab"]
    client.ensure_destroyed("web-1")
    reverted = client.revert_snapshot("web-1", "s1")

    assert [r.changed for r in made] == [True, False]
    assert reverted.state == "running"
    assert client.get_domain("web-1").state == "running"
    snaps = client.list_snapshots("web-1")
    assert [(s.name, s.description, s.domain_state, s.current) for s in snaps] == [
        ("s1", "before", "running", True)
    ]
    assert [client.ensure_snapshot_deleted("web-1", "s1").changed for _ in "ab"] == [True, False]
    with pytest.raises(AgentNotFound):
        client.revert_snapshot("web-1", "s1")
