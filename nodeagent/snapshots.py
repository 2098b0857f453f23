"""Snapshot verbs: ensure a snapshot exists, list, read, revert, delete.

Snapshots are internal qcow2 snapshots. Their size (the saved memory state) is read
from the images with `qemu-img info -U`, cached per image and set of snapshot names,
so a state read runs qemu-img only when a domain's snapshots change.
"""

from __future__ import annotations

import json
import logging
import subprocess
import xml.etree.ElementTree as ET
from functools import lru_cache

import libvirt

from agentapi import SnapshotSpec, SnapshotState, VerbResult
from nodeagent.context import AgentContext
from nodeagent.domains import lookup_domain, spec_from_xml
from nodeagent.errors import conflict, libvirt_errors, not_found

log = logging.getLogger(__name__)


def build_snapshot(name: str, spec: SnapshotSpec) -> str:
    """Return the snapshot XML.

    <domainsnapshot><name>before-upgrade</name><description>...</description></domainsnapshot>
    """
    root = ET.Element("domainsnapshot")
    ET.SubElement(root, "name").text = name
    if spec.description is not None:
        ET.SubElement(root, "description").text = spec.description
    return ET.tostring(root, encoding="unicode")


QEMU_IMG_TIMEOUT_S = 10.0


def read_snapshot(
    domain: str, snap: libvirt.virDomainSnapshot, sizes: dict[str, int] | None = None
) -> SnapshotState:
    """Return the observed state of one snapshot (`sizes`: name -> saved memory bytes)."""
    root = ET.fromstring(snap.getXMLDesc(0))
    name = snap.getName()
    state = root.findtext("state", "unknown")
    memory = root.find("memory")
    has_memory = (
        memory.get("snapshot") not in (None, "no")
        if memory is not None
        else state in ("running", "paused")
    )
    return SnapshotState(
        name=name,
        domain=domain,
        description=root.findtext("description"),
        created_at=int(root.findtext("creationTime", "0")),
        domain_state=state,
        parent=root.findtext("parent/name"),
        current=bool(snap.isCurrent(0)),
        memory=has_memory,
        size_bytes=sizes.get(name) if sizes is not None else None,
    )


def qcow2_sources(domain_xml: str) -> list[tuple[str, str]]:
    """Return the sources of a domain's writable qcow2 disks (where snapshots live): each
    ("file", path) or ("volume", "pool/volume")."""
    root = ET.fromstring(domain_xml)
    sources = []
    for disk in root.iterfind("devices/disk[@device='disk']"):
        driver, source = disk.find("driver"), disk.find("source")
        if driver is None or driver.get("type") != "qcow2" or source is None:
            continue
        if disk.find("readonly") is not None:
            continue
        if source.get("file"):
            sources.append(("file", source.get("file", "")))
        elif source.get("pool") and source.get("volume"):
            sources.append(("volume", f"{source.get('pool')}/{source.get('volume')}"))
    return sources


def qcow2_paths(conn: libvirt.virConnect, domain_xml: str) -> tuple[str, ...] | None:
    """Return the file paths of a domain's writable qcow2 disks (None: a volume is missing)."""
    paths = []
    for kind, source in qcow2_sources(domain_xml):
        if kind == "file":
            paths.append(source)
            continue
        pool, volume = source.split("/", 1)
        try:
            paths.append(conn.storagePoolLookupByName(pool).storageVolLookupByName(volume).path())
        except libvirt.libvirtError:
            return None
    return tuple(paths)


@lru_cache(maxsize=1024)
def image_snapshot_sizes(path: str, names: tuple[str, ...]) -> dict[str, int] | None:
    """Return snapshot name -> saved VM state bytes of one qcow2 image (None if unreadable).

    `names` is part of the cache key only: a new or deleted snapshot reads the image again.
    """
    try:
        out = subprocess.run(
            ["qemu-img", "info", "-U", "--output=json", path],
            capture_output=True,
            text=True,
            timeout=QEMU_IMG_TIMEOUT_S,
            check=True,
        ).stdout
        info = json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return {s["name"]: int(s.get("vm-state-size", 0)) for s in info.get("snapshots", [])}


def snapshot_sizes(dom: libvirt.virDomain, names: tuple[str, ...]) -> dict[str, int] | None:
    """Return snapshot name -> saved memory bytes summed over the domain's qcow2 disks."""
    paths = qcow2_paths(dom.connect(), dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    if paths is None:
        return None
    total: dict[str, int] = dict.fromkeys(names, 0)
    for path in paths:
        sizes = image_snapshot_sizes(path, names)
        if sizes is None:
            return None
        for name in names:
            total[name] += sizes.get(name, 0)
    return total


def read_domain_snapshots(dom: libvirt.virDomain) -> list[SnapshotState]:
    """Return a domain's snapshots, oldest first ([] at once when it has none)."""
    if dom.snapshotNum(0) == 0:
        return []
    snaps = dom.listAllSnapshots(0)
    names = tuple(sorted(s.getName() for s in snaps))
    sizes = snapshot_sizes(dom, names)
    states = [read_snapshot(dom.name(), s, sizes) for s in snaps]
    return sorted(states, key=lambda s: (s.created_at, s.name))


def _find(dom: libvirt.virDomain, name: str) -> libvirt.virDomainSnapshot | None:
    try:
        return dom.snapshotLookupByName(name, 0)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT:
            return None
        raise


def list_snapshots(ctx: AgentContext, domain: str) -> list[SnapshotState]:
    """Return the snapshots of `domain`, oldest first; not_found if the domain is missing."""
    conn = ctx.connection.get()
    with libvirt_errors(f"listing snapshots of {domain}"):
        return read_domain_snapshots(lookup_domain(conn, domain))


def get_snapshot(ctx: AgentContext, domain: str, name: str) -> SnapshotState:
    """Return snapshot `name` of `domain`; not_found if either is missing."""
    conn = ctx.connection.get()
    with libvirt_errors(f"reading snapshot {domain}/{name}"):
        dom = lookup_domain(conn, domain)
        snap = _find(dom, name)
        if snap is None:
            raise not_found("snapshot", f"{domain}/{name}")
        sizes = snapshot_sizes(dom, (name,))
        return read_snapshot(domain, snap, sizes)


def ensure_snapshot(ctx: AgentContext, domain: str, name: str, spec: SnapshotSpec) -> VerbResult:
    """Make snapshot `name` of `domain` exist (taken now if missing; an existing one is kept).

    A disks-only snapshot (`spec.memory` False) of a running domain is a conflict: QEMU's
    internal snapshot of a running guest always saves its memory.
    """
    conn = ctx.connection.get()
    with ctx.locks.hold("domain", domain), libvirt_errors(f"snapshotting {domain}/{name}"):
        dom = lookup_domain(conn, domain)
        if _find(dom, name) is not None:
            return VerbResult(name=name, changed=False, state="present")
        if spec.memory is False and dom.isActive():
            raise conflict(
                f"a snapshot of {domain} without memory needs the domain stopped: an internal "
                "snapshot of a running guest always saves its memory"
            )
        dom.snapshotCreateXML(build_snapshot(name, spec), 0)
        log.info("took snapshot %s of %s", name, domain)
        return VerbResult(name=name, changed=True, state="present")


def revert_snapshot(ctx: AgentContext, domain: str, name: str) -> VerbResult:
    """Revert `domain` to snapshot `name` (repeating it reverts again to the same point).

    A snapshot of a running HA domain starts it: refused unless the lease is held.
    """
    conn = ctx.connection.get()
    with ctx.locks.hold("domain", domain), libvirt_errors(f"reverting {domain} to {name}"):
        dom = lookup_domain(conn, domain)
        snap = _find(dom, name)
        if snap is None:
            raise not_found("snapshot", f"{domain}/{name}")
        state = read_snapshot(domain, snap)
        spec = spec_from_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        if state.domain_state in ("running", "paused") and spec is not None and spec.ha:
            ctx.lease.check_ha_start(domain)
        dom.revertToSnapshot(snap, 0)
        log.info("reverted %s to snapshot %s", domain, name)
        return VerbResult(name=name, changed=True, state=state.domain_state)


def ensure_snapshot_deleted(ctx: AgentContext, domain: str, name: str) -> VerbResult:
    """Make snapshot `name` of `domain` absent (its children are kept)."""
    conn = ctx.connection.get()
    with ctx.locks.hold("domain", domain), libvirt_errors(f"deleting snapshot {domain}/{name}"):
        snap = _find(lookup_domain(conn, domain), name)
        if snap is None:
            return VerbResult(name=name, changed=False, state="absent")
        snap.delete(0)
        return VerbResult(name=name, changed=True, state="absent")
