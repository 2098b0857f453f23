"""Import a foreign VM: read its description, convert its disks, write its manifests.

All or nothing: disks are converted into a staging directory beside the output
and only moved into place (with the manifests) once every disk converted and
validated; on any failure the staging directory is removed and nothing of the
import remains.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError
from ruamel.yaml import YAML

from controller.v2v.convert import convert_disk, virt_v2v_available
from controller.v2v.manifests import build_manifests, manifest_name
from controller.v2v.model import SourceVM, V2VError
from controller.v2v.vmware import read_vmware
from controller.v2v.xen import read_xen
from schemas import VirtualMachine, Volume


@dataclass
class ImportReport:
    """What an import did: files written, how each disk was converted, and warnings."""

    vm: str
    manifest: Path
    disks: list[Path] = field(default_factory=list)
    conversions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_source(kind: str, path: Path, scratch: Path) -> SourceVM:
    """Return the VM described at `path` (`kind` vmware or xen)."""
    if kind == "vmware":
        return read_vmware(path, scratch)
    if kind == "xen":
        return read_xen(path)
    raise V2VError(kind, "unknown source kind (vmware or xen)", "kind")


def import_vm(
    kind: str,
    path: Path,
    out_dir: Path,
    *,
    pool: str = "default",
    network: str = "default",
    disk_dir: Path | None = None,
) -> ImportReport:
    """Import the VM at `path` into `out_dir` (manifest) and `disk_dir` (qcow2 disks).

    `disk_dir` is where the Volumes' source paths point (default: out_dir/disks),
    so it must be readable by the hosts that copy them into `pool`. Raises
    V2VError (nothing written) when the description or a disk is bad, or the
    output exists already.
    """
    disk_dir = (disk_dir or out_dir / "disks").resolve()
    out_dir = out_dir.resolve()
    disk_dir.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=disk_dir, prefix=".import-") as tmp:
        staging = Path(tmp)
        vm = read_source(kind, path, staging / "source")
        name = manifest_name(vm.name)
        manifest = out_dir / f"{name}.yaml"
        finals = [disk_dir / f"{name}-disk{i}.qcow2" for i in range(len(vm.disks))]
        for existing in [manifest, *finals]:
            if existing.exists():
                raise V2VError(str(existing), "already exists: remove it or choose another --out")
        report = ImportReport(vm=name, manifest=manifest, warnings=list(vm.warnings))
        if virt_v2v_available():
            report.conversions.append(
                "virt-v2v is installed, but this import copies disks with qemu-img only: run "
                "virt-v2v on the result to install virtio drivers and remove guest tools"
            )
        else:
            report.warnings.append(
                "virt-v2v is not installed: disks were copied with qemu-img, the guest itself "
                "was not changed (drivers, bootloader, guest tools)"
            )
        sizes = []
        for index, disk in enumerate(vm.disks):
            staged = staging / finals[index].name
            info = convert_disk(Path(disk.path), staged)
            sizes.append(info.virtual_size)
            report.conversions.append(
                f"disk{index}: {disk.path} -> {finals[index]} (qemu-img convert to qcow2, "
                f"{info.virtual_size} bytes virtual)"
            )
        try:
            objects = build_manifests(vm, [str(p) for p in finals], sizes, pool, network)
        except ValidationError as exc:
            raise V2VError(str(path), f"the VM does not map onto a Corral manifest: {exc}") from exc
        staged_manifest = staging / manifest.name
        write_manifests(objects, staged_manifest)
        for final in finals:
            (staging / final.name).rename(final)
            report.disks.append(final)
        staged_manifest.rename(manifest)
    return report


def write_manifests(objects: list[VirtualMachine | Volume], path: Path) -> None:
    """Write the objects as a multi-document YAML file at `path`."""
    yaml = YAML()
    yaml.default_flow_style = False
    with path.open("w") as out:
        yaml.dump_all([obj.to_manifest() for obj in objects], out)
