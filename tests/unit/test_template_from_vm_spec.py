"""The Template spec made from a VM: its settings without placement and MACs, its
writable disks on the new base volumes, read-only disks and CD-ROMs as they were."""

from __future__ import annotations

from controller.cli.template import base_volume_name, template_spec
from schemas.vm import VirtualMachineSpec


def test_a_vm_spec_becomes_a_template_spec() -> None:
    vm = VirtualMachineSpec.model_validate(
        {
            "cpus": 2,
            "memory": "512Mi",
            "maxMemory": "1Gi",
            "guaranteedMemory": "256Mi",
            "runStrategy": "Halted",
            "placement": {"host": "host-a"},
            "hooks": ["pin-cpus"],
            "nics": [{"name": "eth0", "network": "lan", "mac": "52:54:00:00:00:01"}],
            "disks": [
                {"name": "root", "volume": "web-1-root"},
                {"name": "iso", "cdrom": "/srv/iso/tools.iso"},
                {"name": "shared", "volume": "common", "readonly": True},
            ],
        }
    )
    bases = {"root": base_volume_name("web", "root")}
    assert template_spec(vm, bases) == {
        "cpus": 2,
        "memory": "512Mi",
        "maxMemory": "1Gi",
        "guaranteedMemory": "256Mi",
        "hooks": ["pin-cpus"],
        "nics": [{"name": "eth0", "network": "lan"}],
        "disks": [
            {"name": "root", "volume": "web-root"},
            {"name": "iso", "cdrom": "/srv/iso/tools.iso"},
            {"name": "shared", "volume": "common", "readonly": True},
        ],
    }
