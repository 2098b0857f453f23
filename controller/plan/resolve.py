"""Resolve a desired VM into the agent's DomainSpec for one host: no references left.

Identity is stable across passes and hosts: the UUID is derived from the VM name and
each NIC's MAC from the VM and NIC names, so re-defining a VM never changes them and
a VM restarted on another host keeps its identity.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Mapping

from pydantic import ValidationError

from agentapi import DiskSpec, DomainSpec, NicSpec
from controller.plan.expand import DesiredVM
from controller.plan.memo import IdentityMemo
from controller.plan.observe import VM_LABEL
from controller.sharing import share_field_sets
from schemas.host import Host
from schemas.vm import Disk, DiskBus
from schemas.volume import VolumeSpec

MIB = 2**20
VM_NAMESPACE = uuid.UUID("6f1c1a9e-5b8e-4f7a-9a53-3c0e2d1c0a11")
"""Namespace of the name-derived VM UUIDs (uuid5); changing it renames every VM's UUID."""

SERIAL_LOG_DIR = "/var/log/libvirt/qemu"

_TARGET_PREFIX = {
    DiskBus.VIRTIO: "vd",
    DiskBus.SATA: "sd",
    DiskBus.SCSI: "sd",
    DiskBus.IDE: "hd",
}

_SPECS: IdentityMemo[DomainSpec | str] = IdentityMemo()


class ResolveError(ValueError):
    """A VM spec that cannot become a valid DomainSpec; the message names the field."""


def vm_uuid(name: str) -> str:
    """Return the stable UUID of a VM: uuid5 of the fixed namespace and "corral-vm:<name>"."""
    return str(uuid.uuid5(VM_NAMESPACE, f"corral-vm:{name}"))


def nic_mac(vm: str, nic: str) -> str:
    """Return the stable MAC of a NIC: 52:54:00 (QEMU, locally administered) + a name hash."""
    digest = hashlib.sha256(f"corral-mac:{vm}:{nic}".encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def disk_target(prefix: str, index: int) -> str:
    """Return the target device name of the index-th disk on a bus (vda, vdb, ..., vdaa)."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return prefix + letters


def resolve_vm(vm: DesiredVM, host: Host, volumes: Mapping[str, VolumeSpec]) -> DomainSpec:
    """Return the DomainSpec of `vm` on `host`; ResolveError naming the field if impossible.

    Memoised by the identity of the VM, host and volume specs (see memo.IdentityMemo).
    """
    used = tuple(volumes.get(d.volume) for d in vm.spec.disks if d.volume)
    result = _SPECS.get(
        (vm.resource, vm.spec, host, *used),
        len(used),
        lambda: _resolve(vm, host, volumes),
    )
    if isinstance(result, str):
        raise ResolveError(result)
    return result


def _resolve(vm: DesiredVM, host: Host, volumes: Mapping[str, VolumeSpec]) -> DomainSpec | str:
    spec = vm.spec
    disks: list[dict] = []
    counters: dict[str, int] = {}
    for index, disk in enumerate(spec.disks):
        resolved = _disk(disk, volumes, counters)
        if isinstance(resolved, str):
            return f"spec.disks[{index}] ({disk.name}): {resolved}"
        disks.append(resolved)
    nics = [
        NicSpec(
            network=nic.network,
            bridge=None,
            model=nic.model.value,
            mac=nic.mac or nic_mac(vm.name, nic.name),
        )
        for nic in spec.nics
    ]
    boot = spec.boot
    memory = spec.memory or 0
    # Every field is given, defaults too, so that the spec and its disks and NICs share
    # their classes' field-name sets (controller.sharing).
    try:
        domain = DomainSpec(
            name=vm.name,
            uuid=vm_uuid(vm.name),
            vcpus=spec.cpus or 1,
            max_vcpus=spec.max_cpus,
            memory_mib=math.ceil(memory / MIB),
            max_memory_mib=math.ceil(spec.max_memory / MIB) if spec.max_memory else None,
            domain_type=host.spec.virtualization.value,
            machine=None,
            arch="x86_64",
            firmware=(spec.firmware.value if spec.firmware else "bios"),
            kernel=boot.kernel if boot else None,
            initrd=boot.initrd if boot else None,
            cmdline=boot.cmdline if boot else None,
            boot_order=[d.value for d in boot.order] if boot and boot.order else ["hd"],
            disks=[DiskSpec(**d) for d in disks],
            nics=nics,
            serial_log_path=f"{SERIAL_LOG_DIR}/{vm.name}-serial.log",
            graphics=spec.graphics.value if spec.graphics else "none",
            ha=bool(spec.ha and spec.ha.enabled),
            ha_priority=spec.ha.priority if spec.ha else 50,
            labels={VM_LABEL: vm.name},
            hooks=list(spec.hooks),
            description=spec.description,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        return f"domain field {loc}: {first['msg']}"
    share_field_sets(domain)
    return domain


def _disk(disk: Disk, volumes: Mapping[str, VolumeSpec], counters: dict[str, int]) -> dict | str:
    """Return the DiskSpec fields of one disk; a CD-ROM goes on SATA when asked for virtio."""
    bus = disk.bus
    if disk.cdrom and bus is DiskBus.VIRTIO:
        bus = DiskBus.SATA
    prefix = _TARGET_PREFIX[bus]
    target = disk_target(prefix, counters.get(prefix, 0))
    counters[prefix] = counters.get(prefix, 0) + 1
    fields: dict = {
        "target": target,
        "bus": bus.value,
        "cache": disk.cache.value,
        "readonly": disk.readonly or bool(disk.cdrom),
    }
    if disk.cdrom:
        fields.update(path=disk.cdrom, pool=None, volume=None, device="cdrom", format="raw")
        return fields
    volume = volumes.get(disk.volume or "")
    if volume is None:
        return f"Volume {disk.volume} is not defined"
    fields.update(
        path=None, pool=volume.pool, volume=disk.volume, device="disk", format=volume.format.value
    )
    return fields
