"""Manifests of an imported VM: one Volume per converted disk and the VirtualMachine."""

from __future__ import annotations

import re

from controller.v2v.model import SourceVM, V2VError
from schemas import VirtualMachine, Volume
from schemas.meta import API_VERSION

_NAME_BAD = re.compile(r"[^a-z0-9-]+")


def manifest_name(name: str) -> str:
    """Return `name` as a Corral object name (lower case, dashes, at most 53 characters)."""
    cleaned = _NAME_BAD.sub("-", name.lower()).strip("-")[:53].strip("-")
    if not cleaned:
        raise V2VError(name, "cannot make an object name of it", "name")
    return cleaned


def build_manifests(
    vm: SourceVM,
    disk_paths: list[str],
    disk_sizes: list[int],
    pool: str,
    network: str,
    networks: dict[str, str] | None = None,
) -> list[VirtualMachine | Volume]:
    """Return the Volumes (one per converted disk, copied from its qcow2) and the VM.

    NICs go to `networks[source network]`, else to `network`. Validated by the
    schema models: a value Corral cannot take raises pydantic's ValidationError.
    """
    name = manifest_name(vm.name)
    annotations = {"corral.dev/imported-from": vm.origin[:250]}
    volumes: list[VirtualMachine | Volume] = []
    disks = []
    for index, (path, size) in enumerate(zip(disk_paths, disk_sizes, strict=True)):
        volume = f"{name}-disk{index}"
        volumes.append(
            Volume.model_validate(
                {
                    "apiVersion": API_VERSION,
                    "kind": "Volume",
                    "metadata": {"name": volume, "annotations": annotations},
                    "spec": {
                        "pool": pool,
                        "size": size,
                        "format": "qcow2",
                        "source": {"path": path},
                    },
                }
            )
        )
        bus = (
            vm.disks[index].bus
            if vm.disks[index].bus in ("virtio", "sata", "scsi", "ide")
            else "virtio"
        )
        disks.append({"name": f"disk{index}", "volume": volume, "bus": bus})
    nics = [
        {
            "name": f"nic{index}",
            "network": (networks or {}).get(nic.network or "", network),
            "model": nic.model,
            **({"mac": nic.mac} if nic.mac else {}),
        }
        for index, nic in enumerate(vm.nics)
    ]
    machine = VirtualMachine.model_validate(
        {
            "apiVersion": API_VERSION,
            "kind": "VirtualMachine",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {
                "cpus": vm.cpus,
                "memory": f"{vm.memory_mib}Mi",
                "firmware": vm.firmware,
                "disks": disks,
                "nics": nics,
                "runStrategy": "Manual",
            },
        }
    )
    return [*volumes, machine]
