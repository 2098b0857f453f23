"""resolve_vm: a desired VM becomes the agent's DomainSpec, stably and per host."""

from __future__ import annotations

import pytest
from fleet_sim import manifest

from controller.plan.expand import DesiredVM
from controller.plan.resolve import ResolveError, disk_target, nic_mac, resolve_vm, vm_uuid

HOST_QEMU = manifest("Host", "h1", {"address": "https://h1", "virtualization": "qemu"})
HOST_KVM = manifest("Host", "h2", {"address": "https://h2"})
VOLUMES = {
    "root": manifest("Volume", "root", {"pool": "p", "size": "1Gi"}).spec,
    "data": manifest("Volume", "data", {"pool": "q", "size": "2Gi", "format": "raw"}).spec,
}


def desired_vm(name: str = "web-1", **spec: object) -> DesiredVM:
    body = {"cpus": 2, "memory": "1Gi", **spec}
    vm = manifest("VirtualMachine", name, body)
    return DesiredVM(name, vm, vm.spec)


def test_uuid_is_stable_and_name_derived():
    assert vm_uuid("web-1") == vm_uuid("web-1")
    assert vm_uuid("web-1") != vm_uuid("web-2")
    assert resolve_vm(desired_vm(), HOST_QEMU, VOLUMES).uuid == vm_uuid("web-1")


def test_mac_is_stable_locally_administered_qemu_prefix():
    mac = nic_mac("web-1", "eth0")
    assert mac == nic_mac("web-1", "eth0")
    assert mac.startswith("52:54:00:")
    assert mac != nic_mac("web-1", "eth1")
    assert mac != nic_mac("web-2", "eth0")


@pytest.mark.parametrize(
    ("prefix", "index", "expected"),
    [("vd", 0, "vda"), ("vd", 1, "vdb"), ("sd", 25, "sdz"), ("hd", 26, "hdaa"), ("vd", 27, "vdab")],
    ids=["first", "second", "26th", "27th-two-letters", "28th"],
)
def test_disk_targets(prefix, index, expected):
    assert disk_target(prefix, index) == expected


@pytest.mark.parametrize(
    ("spec", "field", "expected"),
    [
        ({"memory": "1000Mi"}, "memory_mib", 1000),
        ({"memory": "1G"}, "memory_mib", 954),
        ({"maxMemory": "2Gi"}, "max_memory_mib", 2048),
        ({"maxCpus": 4}, "max_vcpus", 4),
        ({"maxCpus": 2}, "max_vcpus", None),
        ({"firmware": "uefi"}, "firmware", "uefi"),
        ({"boot": {"order": ["cdrom", "hd"]}}, "boot_order", ["cdrom", "hd"]),
        ({"boot": {"kernel": "/k", "cmdline": "console=ttyS0"}}, "cmdline", "console=ttyS0"),
        ({"ha": {"enabled": True, "priority": 80}}, "ha_priority", 80),
        ({"ha": {"enabled": True}}, "ha", True),
        ({"hooks": ["b", "a"]}, "hooks", ["a", "b"]),
        ({"graphics": "vnc"}, "graphics", "vnc"),
        ({"description": "web"}, "description", "web"),
        ({}, "serial_log_path", "/var/log/libvirt/qemu/web-1-serial.log"),
        ({}, "labels", {"corral.dev/vm": "web-1"}),
        ({}, "boot_order", ["hd"]),
    ],
    ids=[
        "memory-mib",
        "memory-decimal-rounds-up",
        "max-memory",
        "max-cpus",
        "max-cpus-equal-is-none",
        "firmware",
        "boot-order",
        "direct-kernel-boot",
        "ha-priority",
        "ha-on",
        "hooks-sorted",
        "graphics",
        "description",
        "serial-log",
        "labels-name-only",
        "default-boot-hd",
    ],
)
def test_fields(spec, field, expected):
    assert getattr(resolve_vm(desired_vm(**spec), HOST_QEMU, VOLUMES), field) == expected


def test_domain_type_follows_host_virtualization():
    vm = desired_vm()
    assert resolve_vm(vm, HOST_QEMU, VOLUMES).domain_type == "qemu"
    assert resolve_vm(vm, HOST_KVM, VOLUMES).domain_type == "kvm"


def test_disks_by_bus_with_pool_volume_and_format():
    vm = desired_vm(
        disks=[
            {"name": "root", "volume": "root"},
            {"name": "data", "volume": "data", "bus": "scsi"},
            {"name": "iso", "cdrom": "/isos/install.iso"},
            {"name": "extra", "volume": "data", "bus": "virtio", "readonly": True},
        ]
    )
    disks = resolve_vm(vm, HOST_QEMU, VOLUMES).disks
    assert [(d.target, d.bus, d.pool, d.volume, d.path, d.format, d.device) for d in disks] == [
        ("vda", "virtio", "p", "root", None, "qcow2", "disk"),
        ("sda", "scsi", "q", "data", None, "raw", "disk"),
        ("sdb", "sata", None, None, "/isos/install.iso", "raw", "cdrom"),
        ("vdb", "virtio", "q", "data", None, "raw", "disk"),
    ]
    assert [d.readonly for d in disks] == [False, False, True, True]


def test_nics_get_network_model_and_stable_mac():
    vm = desired_vm(
        nics=[
            {"name": "eth0", "network": "lan"},
            {"name": "eth1", "network": "dmz", "model": "e1000", "mac": "52:54:00:00:00:01"},
        ]
    )
    nics = resolve_vm(vm, HOST_QEMU, VOLUMES).nics
    assert [(n.network, n.model, n.mac) for n in nics] == [
        ("lan", "virtio", nic_mac("web-1", "eth0")),
        ("dmz", "e1000", "52:54:00:00:00:01"),
    ]


def test_missing_volume_is_a_typed_error_naming_the_disk():
    vm = desired_vm(disks=[{"name": "root", "volume": "nope"}])
    with pytest.raises(ResolveError, match=r"spec.disks\[0\] \(root\): Volume nope is not defined"):
        resolve_vm(vm, HOST_QEMU, VOLUMES)


def test_resolving_twice_gives_the_same_object():
    vm = desired_vm()
    assert resolve_vm(vm, HOST_QEMU, VOLUMES) is resolve_vm(vm, HOST_QEMU, VOLUMES)
