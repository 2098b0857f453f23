"""share_field_sets: models with every field set share one field-name set per class,
and nothing a caller can observe changes."""

from __future__ import annotations

from agentapi import DiskSpec, DomainSpec, DomainState, NicSpec
from controller.sharing import share_field_sets, share_strings

FULL_DISK = {
    "target": "vda",
    "path": None,
    "pool": "shared",
    "volume": "vm1-root",
    "format": "qcow2",
    "bus": "virtio",
    "device": "disk",
    "readonly": False,
    "cache": "none",
}


def full_domain(name: str) -> DomainSpec:
    fields = {
        field: info.get_default(call_default_factory=True)
        for field, info in DomainSpec.model_fields.items()
    }
    fields.update(name=name, uuid="6d1dc548-9699-559f-9c5b-c752242c4c97", vcpus=1, memory_mib=1024)
    fields["disks"] = [DiskSpec(**FULL_DISK)]
    fields["nics"] = [NicSpec(network="lan", model="virtio")]
    return DomainSpec(**fields)


def test_full_models_share_one_set_and_partial_ones_keep_theirs() -> None:
    a, b = full_domain("vm1"), full_domain("vm2")
    before = (set(a.model_fields_set), set(a.nics[0].model_fields_set))
    share_field_sets(a)
    share_field_sets(b)
    assert a.model_fields_set is b.model_fields_set
    assert a.disks[0].model_fields_set is b.disks[0].model_fields_set
    assert a.nics[0].model_fields_set is not b.nics[0].model_fields_set
    assert (a.model_fields_set, a.nics[0].model_fields_set) == before


def test_dumps_copies_and_assignment_are_unchanged() -> None:
    a, b = full_domain("vm1"), full_domain("vm2")
    dumps = (a.model_dump(exclude_unset=True), a.nics[0].model_dump(exclude_unset=True))
    share_field_sets(a)
    share_field_sets(b)
    assert (a.model_dump(exclude_unset=True), a.nics[0].model_dump(exclude_unset=True)) == dumps
    copied = a.model_copy(update={"vcpus": 2})
    assert copied.vcpus == 2 and a.vcpus == 1
    b.description = "changed"
    assert a.description is None
    assert a.model_fields_set == set(DomainSpec.model_fields)


def test_nested_models_share() -> None:
    spec = full_domain("vm1")
    domain = DomainState.model_validate(
        {
            "name": "vm1",
            "uuid": spec.uuid,
            "state": "running",
            "reason": "booted",
            "persistent": True,
            "autostart": False,
            "ha": False,
            "spec": spec.model_dump(),
            "live": spec.model_dump(),
        }
    )
    share_field_sets(domain)
    assert domain.spec is not None and domain.live is not None
    assert domain.spec.model_fields_set is domain.live.model_fields_set
    assert domain.spec.disks[0].model_fields_set is domain.live.disks[0].model_fields_set


def test_equal_short_strings_become_one_object() -> None:
    a, b = full_domain("vm1"), full_domain("vm2")
    pool = "".join(["sha", "red"])
    b.disks[0].pool = pool
    long_path = "/var/log/libvirt/qemu/" + "x" * 40
    a.serial_log_path, b.serial_log_path = long_path, "".join(long_path)
    before = (a.model_dump(), b.model_dump())
    share_strings(a)
    share_strings(b)
    assert (a.model_dump(), b.model_dump()) == before
    assert a.disks[0].pool is b.disks[0].pool
    assert a.nics[0].network is b.nics[0].network
    assert a.serial_log_path is not b.serial_log_path
