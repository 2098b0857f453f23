"""VMware descriptions: a .vmx file (beside its .vmdk disks) and an .ova (OVF + disks).

Mapped: name, vCPUs, memory, firmware, disks (scsi/sata/ide/nvme), NICs (model,
port group, static MAC). Reported as warnings: VMware Tools, paravirtual devices
(pvscsi, vmxnet3) whose drivers the guest needs replaced by virtio ones.
"""

from __future__ import annotations

import re
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

from controller.v2v.model import SourceDisk, SourceNic, SourceVM, V2VError

_LINE = re.compile(r'^\s*([A-Za-z0-9_.:\-]+)\s*=\s*"(.*)"\s*$')
_NIC_MODELS = {"e1000": "e1000", "e1000e": "e1000", "vmxnet3": "virtio", "vlance": "rtl8139"}
_DISK_PREFIXES = ("scsi", "sata", "ide", "nvme")


def parse_vmx_keys(text: str, source: str) -> dict[str, str]:
    """Return the key -> value pairs of a .vmx text (keys lower-cased).

    Raises V2VError naming the line number of a line that is not `key = "value"`.
    """
    keys: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise V2VError(
                source, f'expected key = "value", got {line.strip()[:60]!r}', f"line {number}"
            )
        keys[match.group(1).lower()] = match.group(2)
    return keys


def _int(keys: dict[str, str], key: str, source: str, default: int | None = None) -> int:
    value = keys.get(key)
    if value is None:
        if default is None:
            raise V2VError(source, "missing", key)
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise V2VError(source, f"expected a whole number, got {value!r}", key) from exc


def parse_vmx(text: str, source: str) -> SourceVM:
    """Return the VM a .vmx text describes; disk paths are as written (relative to the .vmx)."""
    keys = parse_vmx_keys(text, source)
    vm = SourceVM(
        name=keys.get("displayname") or Path(source).stem,
        cpus=_int(keys, "numvcpus", source, 1),
        memory_mib=_int(keys, "memsize", source),
        firmware="uefi" if keys.get("firmware", "bios").lower() == "efi" else "bios",
        origin=f"vmware vmx {source}",
    )
    if vm.memory_mib < 16:
        raise V2VError(source, f"memory of {vm.memory_mib} MiB is too small", "memsize")
    for controller in sorted(k[: -len(".virtualdev")] for k in keys if k.endswith(".virtualdev")):
        if keys[f"{controller}.virtualdev"].lower() == "pvscsi":
            vm.warnings.append(
                f"{controller} is a VMware paravirtual SCSI controller (pvscsi): its disks are "
                "attached as virtio; the guest needs virtio drivers to boot from them"
            )
    slots = sorted(
        k[: -len(".filename")]
        for k in keys
        if k.endswith(".filename") and k.startswith(_DISK_PREFIXES) and ":" in k
    )
    for slot in slots:
        if keys.get(f"{slot}.present", "true").lower() != "true":
            continue
        device = keys.get(f"{slot}.devicetype", "disk").lower()
        filename = keys[f"{slot}.filename"]
        if "cdrom" in device or filename.lower().endswith(".iso"):
            vm.warnings.append(f"{slot}: CD-ROM {filename!r} is not imported")
            continue
        bus = slot.split(":")[0].rstrip("0123456789")
        vm.disks.append(SourceDisk(path=filename, bus={"nvme": "virtio"}.get(bus, bus)))
    for index in range(10):
        prefix = f"ethernet{index}"
        if keys.get(f"{prefix}.present", "false").lower() != "true":
            continue
        device = keys.get(f"{prefix}.virtualdev", "e1000").lower()
        model = _NIC_MODELS.get(device, "virtio")
        if device == "vmxnet3":
            vm.warnings.append(
                f"{prefix}: vmxnet3 is VMware's paravirtual NIC; mapped to virtio, which the "
                "guest needs drivers for"
            )
        mac = keys.get(f"{prefix}.address") or None
        vm.nics.append(
            SourceNic(
                network=keys.get(f"{prefix}.networkname"),
                model=model,
                mac=mac.lower() if mac else None,
            )
        )
    if keys.get("tools.synctime") is not None or any(k.startswith("tools.") for k in keys):
        vm.warnings.append("VMware Tools settings are ignored: remove VMware Tools from the guest")
    if not vm.disks:
        raise V2VError(source, "the VM has no disk to import", "scsi0:0.fileName")
    return vm


_OVF = "http://schemas.dmtf.org/ovf/envelope/1"
_RASD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
_VSSD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
_RESOURCE_CPU, _RESOURCE_MEMORY, _RESOURCE_NIC, _RESOURCE_DISK = "3", "4", "10", "17"


def parse_ovf(text: str, source: str) -> SourceVM:
    """Return the VM an OVF envelope describes; disk paths are the files it references."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise V2VError(source, f"not well-formed XML: {exc}") from exc
    ns = {"ovf": _OVF, "rasd": _RASD, "vssd": _VSSD}
    files = {
        f.get(f"{{{_OVF}}}id"): f.get(f"{{{_OVF}}}href")
        for f in root.iterfind("ovf:References/ovf:File", ns)
    }
    disks = {
        d.get(f"{{{_OVF}}}diskId"): files.get(d.get(f"{{{_OVF}}}fileRef"))
        for d in root.iterfind("ovf:DiskSection/ovf:Disk", ns)
    }
    system = root.find("ovf:VirtualSystem", ns)
    if system is None:
        raise V2VError(source, "no VirtualSystem", "Envelope.VirtualSystem")
    name = (
        system.findtext("ovf:Name", default=None, namespaces=ns)
        or system.get(f"{{{_OVF}}}id")
        or Path(source).stem
    )
    vm = SourceVM(name=name, cpus=1, memory_mib=0, origin=f"vmware ova {source}")
    for item in system.iterfind("ovf:VirtualHardwareSection/ovf:Item", ns):
        kind = item.findtext("rasd:ResourceType", default="", namespaces=ns)
        quantity = item.findtext("rasd:VirtualQuantity", default="", namespaces=ns)
        if kind == _RESOURCE_CPU:
            vm.cpus = int(quantity or 1)
        elif kind == _RESOURCE_MEMORY:
            units = item.findtext("rasd:AllocationUnits", default="byte * 2^20", namespaces=ns)
            vm.memory_mib = int(quantity) * (1024 if "2^30" in units else 1)
        elif kind == _RESOURCE_DISK:
            ref = item.findtext("rasd:HostResource", default="", namespaces=ns).rsplit("/", 1)[-1]
            if disks.get(ref) is None:
                raise V2VError(source, f"disk {ref!r} references no file", "DiskSection")
            vm.disks.append(SourceDisk(path=disks[ref]))
        elif kind == _RESOURCE_NIC:
            model = item.findtext("rasd:ResourceSubType", default="e1000", namespaces=ns).lower()
            vm.nics.append(
                SourceNic(
                    network=item.findtext("rasd:Connection", namespaces=ns),
                    model=_NIC_MODELS.get(model, "virtio"),
                )
            )
            if model == "vmxnet3":
                vm.warnings.append("a vmxnet3 NIC is mapped to virtio: the guest needs its driver")
    if vm.memory_mib <= 0:
        raise V2VError(source, "no memory item (ResourceType 4)", "VirtualHardwareSection")
    if not vm.disks:
        raise V2VError(source, "the VM has no disk to import", "DiskSection")
    return vm


def read_ova(path: Path, into: Path) -> SourceVM:
    """Unpack the .ova tar at `path` into `into` and return its VM, disk paths inside `into`."""
    try:
        with tarfile.open(path) as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            for member in members:
                if Path(member.name).is_absolute() or ".." in Path(member.name).parts:
                    raise V2VError(str(path), f"unsafe member name {member.name!r}")
            tar.extractall(into, members=members, filter="data")
    except tarfile.TarError as exc:
        raise V2VError(str(path), f"not a readable OVA (tar) archive: {exc}") from exc
    ovfs = sorted(into.rglob("*.ovf"))
    if not ovfs:
        raise V2VError(str(path), "the archive holds no .ovf descriptor")
    vm = parse_ovf(ovfs[0].read_text(errors="replace"), f"{path}:{ovfs[0].name}")
    vm.disks = [SourceDisk(path=str(ovfs[0].parent / d.path), bus=d.bus) for d in vm.disks]
    return vm


def read_vmware(path: Path, into: Path) -> SourceVM:
    """Return the VM at `path`: a .vmx file, a directory holding one, or an .ova.

    Disk paths come back absolute. Raises V2VError for anything unreadable.
    """
    if path.is_dir():
        found = sorted(path.glob("*.vmx"))
        if not found:
            raise V2VError(str(path), "no .vmx file in this directory")
        path = found[0]
    if path.suffix.lower() == ".ova":
        return read_ova(path, into)
    if not path.is_file():
        raise V2VError(str(path), "no such file")
    vm = parse_vmx(path.read_text(errors="replace"), str(path))
    vm.disks = [SourceDisk(path=str((path.parent / d.path).resolve()), bus=d.bus) for d in vm.disks]
    return vm
