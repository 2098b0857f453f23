"""Xen xl/xm domain configurations (`name = "web"`, `disk = ['...']`, python-like).

Mapped: name, vcpus, memory, firmware (builder hvm/pv, bios ovmf), disks (file
targets), vifs (bridge, mac, model). Reported as warnings: PV guests (they boot a
Xen-aware kernel; a full-virtualised copy needs a normal bootloader), PV drivers
(xen-blkfront/netfront) to be replaced by virtio ones.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from controller.v2v.model import SourceDisk, SourceNic, SourceVM, V2VError

_ASSIGN = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+?)\s*$")


def parse_xl_keys(text: str, source: str) -> dict[str, object]:
    """Return the settings of an xl/xm config; V2VError naming the line of a bad one."""
    keys: dict[str, object] = {}
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0] if not pending else raw
        if not line.strip():
            continue
        pending = f"{pending}\n{line}" if pending else line
        start = start or number
        if pending.count("[") > pending.count("]"):
            continue
        match = _ASSIGN.match(pending.replace("\n", " "))
        if match is None:
            raise V2VError(
                source, f"expected key = value, got {pending.strip()[:60]!r}", f"line {start}"
            )
        try:
            keys[match.group(1)] = ast.literal_eval(match.group(2).rstrip(";"))
        except (ValueError, SyntaxError) as exc:
            raise V2VError(
                source, f"cannot read the value {match.group(2)[:60]!r}", match.group(1)
            ) from exc
        pending, start = "", 0
    if pending:
        raise V2VError(source, "unterminated list", f"line {start}")
    return keys


def _disk_path(spec: str) -> tuple[str | None, bool]:
    """Return (image path, is_cdrom) of an xl disk spec (positional or key=value form)."""
    parts = [p.strip() for p in spec.split(",")]
    named = dict(p.split("=", 1) for p in parts if "=" in p)
    cdrom = named.get("devtype") == "cdrom" or any(
        p == "cdrom" or p.endswith(":cdrom") for p in parts
    )
    target = named.get("target") or (parts[0] if "=" not in parts[0] else None)
    if target and ":" in target.split("/")[0]:
        target = target.split(":", 1)[1]  # file:/path, phy:/dev/..., tap:aio:/path
        target = target.split(":", 1)[-1]
    return target or None, cdrom


def parse_xl(text: str, source: str) -> SourceVM:
    """Return the VM an xl/xm config describes; disk paths as written."""
    keys = parse_xl_keys(text, source)
    if "name" not in keys:
        raise V2VError(source, "missing", "name")
    if "memory" not in keys:
        raise V2VError(source, "missing", "memory")
    try:
        cpus = int(keys.get("vcpus", 1))  # type: ignore[arg-type]
        memory = int(keys["memory"])  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise V2VError(source, f"expected numbers: {exc}", "vcpus/memory") from exc
    hvm = keys.get("builder") == "hvm" or keys.get("type") == "hvm"
    vm = SourceVM(
        name=str(keys["name"]),
        cpus=cpus,
        memory_mib=memory,
        firmware="uefi" if keys.get("bios") == "ovmf" else "bios",
        origin=f"xen config {source}",
    )
    if not hvm:
        vm.warnings.append(
            "a Xen PV guest: it boots a Xen-aware kernel through the host; the imported VM "
            "boots from its disk and needs a bootloader and a kernel with virtio drivers "
            "(virt-v2v makes these changes)"
        )
    for spec in keys.get("disk", []) or []:  # type: ignore[union-attr]
        path, cdrom = _disk_path(str(spec))
        if path is None:
            raise V2VError(source, f"cannot find the image in {spec!r}", "disk")
        if cdrom:
            vm.warnings.append(f"CD-ROM {path!r} is not imported")
            continue
        if path.startswith("/dev/"):
            vm.warnings.append(f"{path} is a block device: it is imported as an image of it")
        vm.disks.append(SourceDisk(path=path))
    for spec in keys.get("vif", []) or []:  # type: ignore[union-attr]
        named = dict(p.strip().split("=", 1) for p in str(spec).split(",") if "=" in p)
        model = {"e1000": "e1000", "rtl8139": "rtl8139"}.get(named.get("model", ""), "virtio")
        mac = named.get("mac")
        vm.nics.append(
            SourceNic(network=named.get("bridge"), model=model, mac=mac.lower() if mac else None)
        )
    vm.warnings.append(
        "Xen PV drivers (xen-blkfront, xen-netfront) are not used under KVM: "
        "the guest needs virtio drivers"
    )
    if not vm.disks:
        raise V2VError(source, "the VM has no disk to import", "disk")
    return vm


def read_xen(path: Path) -> SourceVM:
    """Return the VM of the xl/xm config at `path`, relative disk paths made absolute."""
    if not path.is_file():
        raise V2VError(str(path), "no such file")
    vm = parse_xl(path.read_text(errors="replace"), str(path))
    vm.disks = [SourceDisk(path=str((path.parent / d.path).resolve()), bus=d.bus) for d in vm.disks]
    return vm
