"""Deletion: stop before undefine, then what the VM used, only when nothing else uses it."""

from __future__ import annotations

from fleet_sim import converge, desired_of, manifest, summary
from plan_fixtures import POLICY, converged, fleet, network, verdict, vm, volume

from controller.plan import plan


def test_deleted_vm_is_stopped_then_undefined_and_its_volume_kept_unless_deleted():
    objects = fleet(vm("web-1"), vm("web-2"))
    sim = converged(objects)
    web1, web1_root = vm("web-1")
    keep = fleet(vm("web-2"), web1_root)
    p = plan(desired_of(*keep, deleted=(web1,)), sim.observed(), POLICY)
    assert summary(p) == [
        ("StopVM", "VirtualMachine/web-1", "host-a", "Deleting"),
        ("UndefineVM", "VirtualMachine/web-1", "host-a", "Deleting"),
    ]
    assert [a.wave for a in p.actions] == [0, 1]
    assert verdict(p, "VirtualMachine", "web-1") == (False, "Deleting", False)
    sim.apply(p)
    assert not sim.errors
    p2 = plan(desired_of(*keep, deleted=(web1,)), sim.observed(), POLICY)
    assert p2.empty
    assert verdict(p2, "VirtualMachine", "web-1") == (True, "Deleted", False)


def test_deleting_vm_and_volume_together_orders_undefine_before_delete():
    objects = fleet(vm("web-1"))
    sim = converged(objects)
    web1, web1_root = vm("web-1")
    p = plan(desired_of(*fleet(), deleted=(web1, web1_root)), sim.observed(), POLICY)
    assert summary(p) == [
        ("StopVM", "VirtualMachine/web-1", "host-a", "Deleting"),
        ("UndefineVM", "VirtualMachine/web-1", "host-a", "Deleting"),
        ("DeleteVolume", "Volume/web-1-root", "host-a", "Deleting"),
    ]
    assert p.actions[2].params == {"pool": "local"}
    sim.apply(p)
    assert not sim.errors
    assert plan(desired_of(*fleet(), deleted=(web1, web1_root)), sim.observed(), POLICY).empty


def test_volume_still_used_is_kept():
    objects = fleet(vm("web-1"))
    sim = converged(objects)
    p = plan(desired_of(*objects, deleted=(("Volume", "web-1-root"),)), sim.observed(), POLICY)
    assert summary(p) == []
    assert verdict(p, "Volume", "web-1-root") == (False, "InUse", False)
    assert "VirtualMachine web-1" in p.verdicts[("Volume", "web-1-root")].message


def test_network_used_by_a_desired_vm_is_kept_then_deleted_when_free():
    objects = fleet(vm("web-1"))
    sim = converged(objects)
    lan = network()
    rest = [o for o in objects if o.kind != "Network"]
    p = plan(desired_of(*rest, deleted=(lan,)), sim.observed(), POLICY)
    assert verdict(p, "Network", "lan") == (False, "InUse", False)
    web1, _root = vm("web-1")
    rest = [o for o in rest if o.kind != "VirtualMachine"]
    desired = desired_of(*rest, deleted=(lan, web1))
    p2 = plan(desired, sim.observed(), POLICY)
    assert summary(p2) == [
        ("StopVM", "VirtualMachine/web-1", "host-a", "Deleting"),
        ("UndefineVM", "VirtualMachine/web-1", "host-a", "Deleting"),
        ("DeleteNetwork", "Network/lan", "host-a", "Deleting"),
    ]
    plans = converge(sim, desired, POLICY)
    assert plans[-1].empty and not sim.errors
    assert verdict(plans[-1], "Network", "lan") == (True, "Deleted", False)


def test_pool_with_desired_volumes_is_kept():
    objects = fleet(volume("data"))
    sim = converged(objects)
    pool_obj = next(o for o in objects if o.kind == "StoragePool")
    rest = [o for o in objects if o.kind != "StoragePool"]
    p = plan(desired_of(*rest, deleted=(pool_obj,)), sim.observed(), POLICY)
    assert summary(p) == []
    assert verdict(p, "StoragePool", "local") == (False, "InUse", False)


def test_deleted_template_vm_takes_its_clones_along():
    base = [
        volume("base"),
        manifest(
            "Template",
            "t",
            {"cpus": 1, "memory": "256Mi", "disks": [{"name": "root", "volume": "base"}]},
        ),
    ]
    web = manifest("VirtualMachine", "web-1", {"template": "t"})
    sim = converged(fleet(*base, web))
    p = plan(desired_of(*fleet(*base), deleted=(web,)), sim.observed(), POLICY)
    assert summary(p) == [
        ("StopVM", "VirtualMachine/web-1", "host-a", "Deleting"),
        ("UndefineVM", "VirtualMachine/web-1", "host-a", "Deleting"),
        ("DeleteVolume", "Volume/web-1-root", "host-a", "Deleting"),
    ]


def test_vm_on_unreachable_host_waits_for_the_host():
    sim = converged(fleet(vm("web-1")))
    sim.kill("host-a")
    web1, root = vm("web-1")
    p = plan(desired_of(*fleet(root), deleted=(web1,)), sim.observed(), POLICY)
    assert summary(p) == []
    assert verdict(p, "VirtualMachine", "web-1") == (False, "AgentUnreachable", False)
