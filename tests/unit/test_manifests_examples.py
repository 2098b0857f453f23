"""Every file in examples/manifests loads clean, and the fleet is the one the README shows."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from controller.manifests import load_paths
from schemas import VirtualMachine

EXAMPLES = Path(__file__).parents[2] / "examples" / "manifests"
FILES = sorted(p.relative_to(EXAMPLES) for p in EXAMPLES.rglob("*.yaml"))


def test_whole_fleet_loads_clean() -> None:
    result = load_paths([EXAMPLES], root=EXAMPLES)
    assert [str(e) for e in result.errors] == []
    assert sorted(result.files) == sorted(str(p) for p in FILES)
    assert Counter(o.resource.kind for o in result.objects) == {
        "Host": 3,
        "Network": 2,
        "StoragePool": 2,
        "Volume": 6,
        "Template": 1,
        "VirtualMachine": 7,
        "AffinityGroup": 2,
        "SchedulingPolicy": 1,
        "Snapshot": 1,
    }


@pytest.mark.parametrize("path", FILES, ids=str)
def test_each_example_file_is_valid_on_its_own(path: Path) -> None:
    result = load_paths([path], root=EXAMPLES)
    assert [e for e in result.errors if e.type != "reference"] == []
    assert result.objects


def test_fleet_shows_what_a_newcomer_needs() -> None:
    objects = {o.ref: o.resource for o in load_paths([EXAMPLES]).objects}
    hosts = [r for r in objects.values() if r.kind == "Host"]
    assert {h.spec.virtualization.value for h in hosts} == {"qemu"}
    assert sorted(h.spec.fencing.method.value for h in hosts) == ["ipmi", "lease", "lease"]
    assert {h.spec.fencing.lease_ttl_s for h in hosts if h.spec.fencing.method == "lease"} == {5}
    assert {h.metadata.labels.keys() >= {"zone", "rack"} for h in hosts} == {True}
    vms = [r for r in objects.values() if isinstance(r, VirtualMachine)]
    assert {vm.spec.run_strategy.value for vm in vms} == {
        "Always",
        "RerunOnFailure",
        "Manual",
        "Halted",
    }
    assert sum(1 for vm in vms if vm.spec.ha and vm.spec.ha.enabled) >= 2
    assert any(vm.spec.template for vm in vms)
    apart = objects["AffinityGroup/web-apart"].spec.vm_rule
    assert (apart.polarity.value, apart.enforcement.value) == ("negative", "hard")
    soft = objects["AffinityGroup/db-in-zone-a"].spec.host_rule
    assert (soft.polarity.value, soft.enforcement.value) == ("positive", "soft")
    pools = {r.spec.type.value: r.spec.shared for r in objects.values() if r.kind == "StoragePool"}
    assert pools == {"netfs": True, "dir": False}
    policy = objects["SchedulingPolicy/default"].spec
    assert policy.balancer.type.value == "EvenDistribution"
    assert [w.name.value for w in policy.weights] == ["Spread", "SoftAffinity"]
