"""Pools on their hosts; volumes where they are used; thin clones; grow, never shrink."""

from __future__ import annotations

import pytest
from fleet_sim import FleetSim, converge, desired_of, manifest, summary
from plan_fixtures import (
    POLICY,
    fleet,
    host,
    network,
    plan_after,
    pool,
    shared_pool,
    verdict,
    volume,
)
from plan_fixtures import vm as make_vm

from controller.plan import plan


def _fresh(objects, hosts=("host-a",), shared=()):
    sim = FleetSim.of(*hosts, shared_pools=set(shared))
    return sim, plan(desired_of(*objects), sim.observed(), POLICY)


def test_iscsi_pool_is_unsupported_and_stalled():
    iscsi = pool("san", type="iscsi", shared=True, source={"host": "portal", "iqn": "iqn.x"})
    _, p = _fresh([host("host-a"), iscsi, volume("v1", "san")])
    assert summary(p) == []
    assert verdict(p, "StoragePool", "san") == (False, "Unsupported", True)
    assert "iSCSI" in p.verdicts[("StoragePool", "san")].message
    assert verdict(p, "Volume", "v1") == (False, "DependencyNotReady", True)


def test_logical_pool_payload():
    lvm = pool("vg", type="logical", source={"volumeGroup": "vg0", "devices": ["/dev/sdb"]})
    _, p = _fresh([host("host-a"), lvm])
    (action,) = p.actions
    assert action.payload == {
        "name": "vg",
        "uuid": None,
        "type": "logical",
        "target_path": "/var/lib/corral/vg",
        "source_host": None,
        "source_path": None,
        "source_device": "/dev/sdb",
        "source_name": "vg0",
        "autostart": True,
    }


def test_shared_volume_is_created_once_on_first_healthy_host():
    objects = [host("host-a"), host("host-b"), shared_pool(), volume("img", "shared")]
    _, p = _fresh(objects, hosts=("host-a", "host-b"), shared=("shared",))
    assert summary(p) == [
        ("DefinePool", "StoragePool/shared", "host-a", "Creating"),
        ("DefinePool", "StoragePool/shared", "host-b", "Creating"),
        ("CreateVolume", "Volume/img", "host-a", "Creating"),
    ]
    assert p.actions[2].params == {"pool": "shared"}


def test_shared_volume_skips_an_unreachable_first_host():
    objects = [host("host-a"), host("host-b"), shared_pool(), volume("img", "shared")]
    sim = FleetSim.of("host-a", "host-b", shared_pools={"shared"})
    sim.kill("host-a")
    p = plan(desired_of(*objects), sim.observed(), POLICY)
    assert [a for a in summary(p) if a[0] == "CreateVolume"] == [
        ("CreateVolume", "Volume/img", "host-b", "Creating")
    ]


def test_local_volume_goes_to_its_vms_host():
    objects = fleet(make_vm("web-1", placement={"host": "host-b"}), hosts=("host-a", "host-b"))
    _, p = _fresh(objects, hosts=("host-a", "host-b"))
    assert [a for a in summary(p) if a[0] in ("CreateVolume", "DefineVM")] == [
        ("CreateVolume", "Volume/web-1-root", "host-b", "Creating"),
        ("DefineVM", "VirtualMachine/web-1", "host-b", "Creating"),
    ]


def test_unused_local_volume_goes_to_first_matching_host():
    objects = [host("host-a"), host("host-b"), pool(), volume("spare")]
    _, p = _fresh(objects, hosts=("host-a", "host-b"))
    assert [a for a in summary(p) if a[0] == "CreateVolume"] == [
        ("CreateVolume", "Volume/spare", "host-a", "Creating")
    ]


def test_thin_clone_waits_for_its_base_then_backs_on_its_path():
    objects = [host("host-a"), pool(), volume("base"), volume("clone", source={"volume": "base"})]
    sim, p = _fresh(objects)
    assert summary(p) == [
        ("DefinePool", "StoragePool/local", "host-a", "Creating"),
        ("CreateVolume", "Volume/base", "host-a", "Creating"),
    ]
    assert verdict(p, "Volume", "clone") == (False, "DependencyNotReady", False)
    assert "waiting for base volume base" in p.verdicts[("Volume", "clone")].message
    sim.apply(p)
    p2 = plan(desired_of(*objects), sim.observed(), POLICY)
    assert summary(p2) == [("CreateVolume", "Volume/clone", "host-a", "Creating")]
    assert p2.actions[0].payload["backing_path"] == "/var/lib/corral/local/base"
    assert p2.actions[0].payload["backing_format"] == "qcow2"


def test_template_disks_become_per_vm_thin_clones():
    objects = fleet(
        volume("base", size="2Gi"),
        manifest(
            "Template",
            "small",
            {"cpus": 1, "memory": "256Mi", "disks": [{"name": "root", "volume": "base"}]},
        ),
        manifest("VirtualMachine", "web-1", {"template": "small"}),
    )
    sim = FleetSim.of("host-a")
    plans = converge(sim, desired_of(*objects), POLICY)
    assert plans[-1].empty and not sim.errors
    vols = {v.name: v for v in sim.hosts["host-a"].state.pools[0].volumes}
    assert vols["web-1-root"].backing_path == vols["base"].path
    assert vols["web-1-root"].capacity_bytes == 2 * 2**30
    dom = sim.hosts["host-a"].state.domains[0]
    assert [(d.pool, d.volume) for d in dom.spec.disks] == [("local", "web-1-root")]


def _set_capacity(sim, size):
    pool_state = sim.hosts["host-a"].state.pools[0]
    pool_state.volumes[0] = pool_state.volumes[0].model_copy(update={"capacity_bytes": size})


ROWS = [
    ("same-size-noop", "1Gi", None, [], (True, "Converged", False)),
    (
        "grow-resizes",
        "2Gi",
        None,
        [("ResizeVolume", "Volume/data", "host-a", "Resizing")],
        (False, "Resizing", False),
    ),
    ("shrink-refused", "512Mi", None, [], (False, "ShrinkRefused", True)),
    (
        "grown-by-hand-spec-smaller-refused",
        "1Gi",
        lambda s: _set_capacity(s, 3 * 2**30),
        [],
        (False, "ShrinkRefused", True),
    ),
]


@pytest.mark.parametrize(
    ("size", "mutate", "expected", "expected_verdict"),
    [r[1:] for r in ROWS],
    ids=[r[0] for r in ROWS],
)
def test_volume_size(size, mutate, expected, expected_verdict):
    before = [host("host-a"), pool(), volume("data")]
    after = [host("host-a"), pool(), volume("data", size=size)]
    _, p = plan_after(before, after, mutate=mutate)
    assert summary(p) == expected
    assert verdict(p, "Volume", "data") == expected_verdict


def test_shrink_message_says_what_to_do():
    _, p = plan_after(
        [host("host-a"), pool(), volume("data", size="2Gi")],
        [host("host-a"), pool(), volume("data", size="1Gi")],
    )
    assert p.verdicts[("Volume", "data")].message == (
        "Volume data on host-a is 2Gi; the spec asks for 1Gi and volumes never shrink: set size "
        "to at least 2Gi"
    )


def test_format_change_is_refused():
    _, p = plan_after(
        [host("host-a"), pool(), volume("data")],
        [host("host-a"), pool(), volume("data", format="raw")],
    )
    assert summary(p) == []
    assert verdict(p, "Volume", "data") == (False, "FormatMismatch", True)


def test_pool_changed_by_hand_is_redefined_inactive_restarted():
    def deactivate(sim):
        state = sim.hosts["host-a"].state
        state.pools[0] = state.pools[0].model_copy(update={"active": False})

    _, p = plan_after([host("host-a"), pool()], mutate=deactivate)
    assert summary(p) == [("DefinePool", "StoragePool/local", "host-a", "Updating")]
    assert "inactive" in p.actions[0].message


def test_vm_waits_for_a_volume_that_waits():
    objects = [
        host("host-a"),
        network(),
        pool(),
        volume("clone", source={"volume": "missing-base"}),
        manifest(
            "VirtualMachine",
            "web-1",
            {"cpus": 1, "memory": "256Mi", "disks": [{"name": "root", "volume": "clone"}]},
        ),
    ]
    _, p = _fresh(objects)
    assert [a for a in summary(p) if a[1] == "VirtualMachine/web-1"] == []
    assert verdict(p, "VirtualMachine", "web-1") == (False, "DependencyNotReady", False)
