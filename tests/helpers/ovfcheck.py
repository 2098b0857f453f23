"""A structural check of an OVF 2.x package, as DSP0243 and its schemas require it.

It checks what an OVF reader relies on and Corral's own parser does not look at:
element order (References, sections, then the VirtualSystem), every File present with
its declared size, every Disk's fileRef and every disk Item's HostResource resolving,
unique RASD InstanceIDs with their elements in the schema's (alphabetical) order, NICs
naming declared networks, and the manifest's SHA256 lines matching the files.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from pathlib import Path

from controller.ovf import OvfSystem, parse_envelope
from controller.ovf.envelope import NAMESPACES, OVF

SECTIONS = ("DiskSection", "NetworkSection")


def _ovf(name: str) -> str:
    return f"{{{OVF}}}{name}"


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def check_package(descriptor: Path) -> OvfSystem:
    """Return the package's parsed system; AssertionError naming the first broken rule."""
    root = ET.fromstring(descriptor.read_text())
    directory = descriptor.parent
    assert root.tag == _ovf("Envelope"), root.tag
    order = [_local(child.tag) for child in root]
    assert order[0] == "References", order
    assert order[-1] == "VirtualSystem" and order.count("VirtualSystem") == 1, order
    assert all(tag in SECTIONS for tag in order[1:-1]), order

    files: dict[str, Path] = {}
    for file in root.iterfind("ovf:References/ovf:File", NAMESPACES):
        href, size = file.get(_ovf("href")), file.get(_ovf("size"))
        assert href and "/" not in href, href
        path = directory / href
        assert path.is_file(), f"File {href} is missing"
        assert size is not None and int(size) == path.stat().st_size, (href, size)
        files[file.get(_ovf("id")) or ""] = path
    disks = set()
    for disk in root.iterfind("ovf:DiskSection/ovf:Disk", NAMESPACES):
        assert disk.get(_ovf("fileRef")) in files, disk.attrib
        assert int(disk.get(_ovf("capacity")) or "0") > 0, disk.attrib
        assert disk.get(_ovf("format")), disk.attrib
        disks.add(disk.get(_ovf("diskId")))
    networks = {
        n.get(_ovf("name")) for n in root.iterfind("ovf:NetworkSection/ovf:Network", NAMESPACES)
    }

    for section in root.iter():
        if _local(section.tag).endswith("Section"):
            assert _local(section[0].tag) == "Info", f"{section.tag}: Info must come first"
    system = root.find("ovf:VirtualSystem", NAMESPACES)
    assert system is not None and system.get(_ovf("id")), "VirtualSystem needs ovf:id"
    instance_ids = []
    for item in system.iterfind("ovf:VirtualHardwareSection/ovf:Item", NAMESPACES):
        names = [_local(child.tag) for child in item]
        assert names == sorted(names), f"RASD elements out of schema order: {names}"
        fields = {_local(child.tag): (child.text or "") for child in item}
        instance_ids.append(fields["InstanceID"])
        assert fields["ResourceType"].isdigit(), fields
        if fields["ResourceType"] == "17":
            assert fields["HostResource"].removeprefix("ovf:/disk/") in disks, fields
        if fields["ResourceType"] == "10":
            assert fields["Connection"] in networks, fields
    assert len(instance_ids) == len(set(instance_ids)), instance_ids

    manifest = descriptor.with_suffix(".mf")
    listed = {}
    for line in manifest.read_text().splitlines():
        name, _, digest = line.removeprefix("SHA256(").partition(")= ")
        listed[name] = digest
    wanted = {p.name for p in (descriptor, *files.values())}
    assert set(listed) == wanted, (listed, wanted)
    for name, digest in listed.items():
        assert hashlib.sha256((directory / name).read_bytes()).hexdigest() == digest, name
    return parse_envelope(descriptor.read_text())
