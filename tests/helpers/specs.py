"""DomainSpecs of the tiny guest, as the controller would send them to an agent."""

from __future__ import annotations

import uuid

from agentapi import DiskSpec, DomainSpec
from controller.lab.guest import GuestImage
from tests.helpers.guests import serial_path


def tiny_domain_spec(
    name: str,
    image: GuestImage,
    memory_mib: int = 96,
    disks: list[DiskSpec] | None = None,
    hooks: list[str] | None = None,
) -> DomainSpec:
    """Returns a one-vCPU TCG DomainSpec booting the tiny guest, serial console to a file."""
    return DomainSpec(
        name=name,
        uuid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"corral-test/{name}")),
        vcpus=1,
        memory_mib=memory_mib,
        domain_type="qemu",
        kernel=str(image.kernel),
        initrd=str(image.initrd),
        cmdline=image.cmdline,
        serial_log_path=serial_path(name),
        disks=disks or [],
        hooks=hooks or [],
    )
