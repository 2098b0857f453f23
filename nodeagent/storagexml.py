"""Libvirt storage pool and volume XML from specs and back (xml.etree)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from agentapi import PoolSpec, VolumeSpec, VolumeState


def build_pool_source(spec: PoolSpec) -> ET.Element | None:
    """Return the pool source: an NFS export or an LVM volume group, None for dir.

    <source><host name='nfs.example'/><dir path='/export/images'/><format type='nfs'/></source>
    <source><device path='/dev/sdb'/><name>vg0</name><format type='lvm2'/></source>
    """
    if spec.type == "dir":
        return None
    source = ET.Element("source")
    if spec.type == "netfs":
        ET.SubElement(source, "host", name=spec.source_host or "")
        ET.SubElement(source, "dir", path=spec.source_path or "")
        ET.SubElement(source, "format", type="nfs")
    else:
        if spec.source_device is not None:
            ET.SubElement(source, "device", path=spec.source_device)
        if spec.source_name is not None:
            ET.SubElement(source, "name").text = spec.source_name
        ET.SubElement(source, "format", type="lvm2")
    return source


def build_pool(spec: PoolSpec) -> str:
    """Return the storage pool XML document for `spec`.

    <pool type='dir'><name>images</name><target><path>/var/lib/corral/images</path></target></pool>
    """
    pool = ET.Element("pool", type=spec.type)
    ET.SubElement(pool, "name").text = spec.name
    if spec.uuid is not None:
        ET.SubElement(pool, "uuid").text = spec.uuid
    source = build_pool_source(spec)
    if source is not None:
        pool.append(source)
    target = ET.SubElement(pool, "target")
    ET.SubElement(target, "path").text = spec.target_path
    ET.indent(pool)
    return ET.tostring(pool, encoding="unicode") + "\n"


def parse_pool(xml: str, autostart: bool = True) -> PoolSpec:
    """Return the PoolSpec of pool XML; ValueError for pool types Corral does not manage."""
    root = ET.fromstring(xml)
    kind = root.get("type", "")
    if kind not in ("dir", "netfs", "logical"):
        raise ValueError(f"pool type {kind!r} is not managed by Corral")
    host = root.find("source/host")
    src_dir = root.find("source/dir")
    device = root.find("source/device")
    return PoolSpec(
        name=root.findtext("name", ""),
        uuid=root.findtext("uuid"),
        type=kind,
        target_path=root.findtext("target/path", ""),
        source_host=host.get("name") if host is not None else None,
        source_path=src_dir.get("path") if src_dir is not None else None,
        source_device=device.get("path") if device is not None else None,
        source_name=root.findtext("source/name") if kind == "logical" else None,
        autostart=autostart,
    )


def build_volume(spec: VolumeSpec) -> str:
    """Return the volume XML document; a thin clone carries its backing store.

    <volume>
      <name>web-1.qcow2</name>
      <capacity unit='bytes'>10737418240</capacity>
      <allocation unit='bytes'>0</allocation>
      <target><format type='qcow2'/></target>
      <backingStore>
        <path>/var/lib/corral/images/base.qcow2</path><format type='qcow2'/>
      </backingStore>
    </volume>
    """
    volume = ET.Element("volume")
    ET.SubElement(volume, "name").text = spec.name
    ET.SubElement(volume, "capacity", unit="bytes").text = str(spec.capacity_bytes)
    # Allocation 0 asks for a sparse file: thin provisioning, not a preallocated one.
    ET.SubElement(volume, "allocation", unit="bytes").text = "0"
    target = ET.SubElement(volume, "target")
    ET.SubElement(target, "format", type=spec.format)
    if spec.backing_path is not None:
        backing = ET.SubElement(volume, "backingStore")
        ET.SubElement(backing, "path").text = spec.backing_path
        ET.SubElement(backing, "format", type=spec.backing_format or "qcow2")
    ET.indent(volume)
    return ET.tostring(volume, encoding="unicode") + "\n"


def _bytes(element: ET.Element | None) -> int:
    if element is None or element.text is None:
        return 0
    unit = element.get("unit", "bytes").lower()
    factor = {"bytes": 1, "b": 1, "kib": 1 << 10, "k": 1 << 10, "mib": 1 << 20, "m": 1 << 20}
    return int(element.text) * factor.get(unit, 1 << 30)


def parse_volume(xml: str) -> VolumeState:
    """Return the VolumeState of volume XML (capacity and allocation in bytes)."""
    root = ET.fromstring(xml)
    fmt = root.find("target/format")
    backing_fmt = root.find("backingStore/format")
    return VolumeState(
        name=root.findtext("name", ""),
        path=root.findtext("target/path", ""),
        capacity_bytes=_bytes(root.find("capacity")),
        allocation_bytes=_bytes(root.find("allocation")),
        format=fmt.get("type") if fmt is not None else None,
        backing_path=root.findtext("backingStore/path"),
        backing_format=backing_fmt.get("type") if backing_fmt is not None else None,
    )
