"""OVF 2.x envelopes (DMTF DSP0243): build one from a VM's description, parse one back.

The envelope holds References (one File per disk image), a DiskSection, a
NetworkSection and one VirtualSystem with an OperatingSystemSection and a
VirtualHardwareSection of CIM RASD items: CPU (ResourceType 3), memory (4), disk
drive (17, its HostResource pointing at a Disk) and Ethernet adapter (10). Disk
images are qcow2 or raw, named by the `ovf:format` URIs below. Direct kernel boot
(kernel, initrd, command line), which OVF has no words for, travels in a Corral
section marked `ovf:required="false"`, so other OVF tools may ignore it.
Pure: text in, text out; parse errors are OvfError naming the element or attribute.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

OVF = "http://schemas.dmtf.org/ovf/envelope/2"
RASD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
VSSD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
CORRAL = "https://corral.dev/ovf/1"
NAMESPACES = {"ovf": OVF, "rasd": RASD, "vssd": VSSD, "corral": CORRAL}
# Registration is process-wide: the Corral section is written as "covf" so that it never
# takes the "corral" prefix the domain XML builder registers for its own metadata namespace.
for _prefix, _uri in {**NAMESPACES, "covf": CORRAL}.items():
    if _prefix != "corral":
        ET.register_namespace(_prefix, _uri)

FORMATS = {
    "qcow2": "https://www.qemu.org/docs/master/interop/qcow2.html",
    "raw": "https://www.qemu.org/docs/master/system/images.html#disk-image-file-formats",
}
"""ovf:format URI of each disk image format this envelope carries."""
OTHER_OS = "1"
"""CIM_OperatingSystem id 1: "Other" (the guest OS is not known to Corral)."""
CPU, MEMORY, DISK_DRIVE, ETHERNET, OTHER_STORAGE = 3, 4, 17, 10, 20
"""CIM ResourceType values of the RASD items (DSP1041). Disk drives hang off one
"other storage device" controller (virtio): OVF readers place a disk by its Parent."""


class OvfError(ValueError):
    """An OVF envelope Corral cannot read; `where` names the element or attribute."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where


@dataclass(frozen=True)
class OvfDisk:
    """One disk: its image file (href, bytes), format and virtual capacity (bytes)."""

    name: str
    href: str
    format: str
    capacity_bytes: int
    file_bytes: int | None = None


@dataclass(frozen=True)
class OvfSystem:
    """One virtual system: sizes, disks in order, networks of its NICs, boot."""

    name: str
    cpus: int
    memory_bytes: int
    disks: list[OvfDisk] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    description: str | None = None
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None


def _q(ns: str, tag: str) -> str:
    return f"{{{NAMESPACES[ns]}}}{tag}"


def _sub(
    parent: ET.Element, ns: str, tag: str, text: str | None = None, **attrs: str
) -> ET.Element:
    element = ET.SubElement(parent, _q(ns, tag), {_q("ovf", k): v for k, v in attrs.items()})
    if text is not None:
        element.text = text
    return element


def _item(hardware: ET.Element, kind: int, instance: int, name: str, **rasd: str) -> ET.Element:
    """Return one RASD <Item> (elements in the alphabetical order the CIM schema uses)."""
    item = _sub(hardware, "ovf", "Item")
    values = {"ElementName": name, "InstanceID": str(instance), "ResourceType": str(kind), **rasd}
    for key in sorted(values):
        _sub(item, "rasd", key, values[key])
    return item


def build_envelope(system: OvfSystem) -> str:
    """Return the OVF descriptor (XML text) of `system`."""
    root = ET.Element(_q("ovf", "Envelope"))
    refs = _sub(root, "ovf", "References")
    for disk in system.disks:
        attrs = {"id": f"file-{disk.name}", "href": disk.href}
        if disk.file_bytes is not None:
            attrs["size"] = str(disk.file_bytes)
        _sub(refs, "ovf", "File", **attrs)
    disks = _sub(root, "ovf", "DiskSection")
    _sub(disks, "ovf", "Info", "Virtual disk images")
    for disk in system.disks:
        _sub(disks, "ovf", "Disk", diskId=f"disk-{disk.name}", fileRef=f"file-{disk.name}",
             capacity=str(disk.capacity_bytes), format=FORMATS[disk.format])  # fmt: skip
    if system.networks:
        nets = _sub(root, "ovf", "NetworkSection")
        _sub(nets, "ovf", "Info", "Networks the NICs attach to")
        for net in dict.fromkeys(system.networks):
            _sub(_sub(nets, "ovf", "Network", name=net), "ovf", "Description", f"network {net}")
    vs = _sub(root, "ovf", "VirtualSystem", id=system.name)
    _sub(vs, "ovf", "Info", "A virtual machine exported by Corral")
    _sub(vs, "ovf", "Name", system.name)
    if system.description:
        annotation = _sub(vs, "ovf", "AnnotationSection")
        _sub(annotation, "ovf", "Info", "Description")
        _sub(annotation, "ovf", "Annotation", system.description)
    os_section = _sub(vs, "ovf", "OperatingSystemSection", id=OTHER_OS)
    _sub(os_section, "ovf", "Info", "Guest operating system")
    hardware = _sub(vs, "ovf", "VirtualHardwareSection")
    _sub(hardware, "ovf", "Info", "Virtual hardware requirements")
    system_el = _sub(hardware, "ovf", "System")
    _sub(system_el, "vssd", "ElementName", "Virtual Hardware Family")
    _sub(system_el, "vssd", "InstanceID", "0")
    _sub(system_el, "vssd", "VirtualSystemType", "corral-qemu")
    instance = 1
    _item(hardware, CPU, instance, f"{system.cpus} virtual CPU(s)",
          AllocationUnits="hertz * 10^6", VirtualQuantity=str(system.cpus))  # fmt: skip
    instance += 1
    mib = str(system.memory_bytes // 2**20)
    _item(hardware, MEMORY, instance, f"{mib} MiB of memory",
          AllocationUnits="byte * 2^20", VirtualQuantity=mib)  # fmt: skip
    if system.disks:
        instance += 1
        controller = str(instance)
        _item(hardware, OTHER_STORAGE, instance, "virtio disk controller",
              ResourceSubType="virtio")  # fmt: skip
    for index, disk in enumerate(system.disks):
        instance += 1
        _item(hardware, DISK_DRIVE, instance, disk.name, AddressOnParent=str(index),
              HostResource=f"ovf:/disk/disk-{disk.name}", Parent=controller)  # fmt: skip
    for net in system.networks:
        instance += 1
        _item(hardware, ETHERNET, instance, f"NIC on {net}", AutomaticAllocation="true",
              Connection=net, ResourceSubType="virtio")  # fmt: skip
    if system.kernel:
        boot = _sub(vs, "corral", "BootSection", required="false")
        _sub(boot, "ovf", "Info", "Direct kernel boot (Corral)")
        _sub(boot, "corral", "Kernel", system.kernel)
        if system.initrd:
            _sub(boot, "corral", "Initrd", system.initrd)
        if system.cmdline:
            _sub(boot, "corral", "Cmdline", system.cmdline)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _attr(element: ET.Element, name: str, where: str) -> str:
    value = element.get(_q("ovf", name))
    if value is None or value == "":
        raise OvfError(f"{where}/@ovf:{name}", "missing")
    return value


def _int(text: str | None, where: str) -> int:
    try:
        value = int((text or "").strip())
    except ValueError:
        raise OvfError(where, f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise OvfError(where, f"must be positive, got {value}")
    return value


def _rasd(item: ET.Element, key: str) -> str | None:
    found = item.find(f"rasd:{key}", NAMESPACES)
    return found.text.strip() if found is not None and found.text else None


def _memory_bytes(item: ET.Element, where: str) -> int:
    quantity = _int(_rasd(item, "VirtualQuantity"), f"{where}/rasd:VirtualQuantity")
    units = (_rasd(item, "AllocationUnits") or "byte * 2^20").replace(" ", "").lower()
    scale = {"byte*2^20": 2**20, "mb": 2**20, "byte*2^30": 2**30, "gb": 2**30, "byte": 1,
             "byte*2^10": 2**10, "kb": 2**10}.get(units)  # fmt: skip
    if scale is None:
        raise OvfError(f"{where}/rasd:AllocationUnits", f"unknown memory unit {units!r}")
    return quantity * scale


def parse_envelope(text: str) -> OvfSystem:
    """Return the one virtual system an OVF descriptor describes; OvfError naming the part."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise OvfError("descriptor", f"not well-formed XML ({exc})") from None
    if root.tag != _q("ovf", "Envelope"):
        raise OvfError("descriptor", f"the root element is {root.tag}, not an OVF 2 Envelope")
    files = {
        _attr(f, "id", "References/File"): f
        for f in root.iterfind("ovf:References/ovf:File", NAMESPACES)
    }
    disk_defs = {}
    for disk in root.iterfind("ovf:DiskSection/ovf:Disk", NAMESPACES):
        disk_id = _attr(disk, "diskId", "DiskSection/Disk")
        where = f"DiskSection/Disk[{disk_id}]"
        file_ref = _attr(disk, "fileRef", where)
        if file_ref not in files:
            raise OvfError(f"{where}/@ovf:fileRef", f"{file_ref!r} is not in References")
        fmt_uri = _attr(disk, "format", where)
        fmt = next((k for k, v in FORMATS.items() if v == fmt_uri), None)
        if fmt is None:
            raise OvfError(
                f"{where}/@ovf:format", f"unsupported disk format {fmt_uri!r} (qcow2, raw)"
            )
        size = files[file_ref].get(_q("ovf", "size"))
        disk_defs[disk_id] = (
            _attr(files[file_ref], "href", f"References/File[{file_ref}]"),
            fmt,
            _int(_attr(disk, "capacity", where), f"{where}/@ovf:capacity"),
            int(size) if size and size.isdigit() else None,
        )
    systems = root.findall("ovf:VirtualSystem", NAMESPACES)
    if len(systems) != 1:
        raise OvfError("VirtualSystem", f"expected exactly one, found {len(systems)}")
    vs = systems[0]
    name = _attr(vs, "id", "VirtualSystem")
    hardware = vs.find("ovf:VirtualHardwareSection", NAMESPACES)
    if hardware is None:
        raise OvfError(f"VirtualSystem[{name}]", "has no VirtualHardwareSection")
    cpus = memory = None
    disks: list[OvfDisk] = []
    networks: list[str] = []
    for item in hardware.iterfind("ovf:Item", NAMESPACES):
        instance = _rasd(item, "InstanceID") or "?"
        where = f"VirtualHardwareSection/Item[{instance}]"
        kind = _rasd(item, "ResourceType")
        if kind == str(CPU):
            cpus = _int(_rasd(item, "VirtualQuantity"), f"{where}/rasd:VirtualQuantity")
        elif kind == str(MEMORY):
            memory = _memory_bytes(item, where)
        elif kind == str(DISK_DRIVE):
            resource = _rasd(item, "HostResource") or ""
            disk_id = resource.rsplit("/", 1)[-1]
            if disk_id not in disk_defs:
                raise OvfError(f"{where}/rasd:HostResource", f"{resource!r} names no Disk")
            href, fmt, capacity, size = disk_defs[disk_id]
            label = (_rasd(item, "ElementName") or disk_id).lower()
            disks.append(OvfDisk(_label(label, len(disks)), href, fmt, capacity, size))
        elif kind == str(ETHERNET):
            networks.append(_rasd(item, "Connection") or "default")
    if cpus is None:
        raise OvfError("VirtualHardwareSection", "has no CPU item (ResourceType 3)")
    if memory is None:
        raise OvfError("VirtualHardwareSection", "has no memory item (ResourceType 4)")
    boot = vs.find("corral:BootSection", NAMESPACES)
    annotation = vs.find("ovf:AnnotationSection/ovf:Annotation", NAMESPACES)
    return OvfSystem(
        name=name,
        cpus=cpus,
        memory_bytes=memory,
        disks=disks,
        networks=networks,
        description=annotation.text if annotation is not None else None,
        kernel=boot.findtext("corral:Kernel", None, NAMESPACES) if boot is not None else None,
        initrd=boot.findtext("corral:Initrd", None, NAMESPACES) if boot is not None else None,
        cmdline=boot.findtext("corral:Cmdline", None, NAMESPACES) if boot is not None else None,
    )


def _label(text: str, index: int) -> str:
    """Return a disk name usable in manifests (DNS label), from the item's name."""
    cleaned = "".join(c if c.isalnum() else "-" for c in text).strip("-")[:40]
    return cleaned or f"disk{index}"
