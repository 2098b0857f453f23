"""Snapshot verbs: ensure a snapshot exists, list, read, revert, delete."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET

import libvirt

from nodeagent.context import AgentContext
from nodeagent.domains import lookup_domain, spec_from_xml
from nodeagent.errors import libvirt_errors, not_found
from nodeagent.models import SnapshotSpec, SnapshotState, VerbResult

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


def read_snapshot(domain: str, snap: libvirt.virDomainSnapshot) -> SnapshotState:
    """Return the observed state of one snapshot."""
    root = ET.fromstring(snap.getXMLDesc(0))
    return SnapshotState(
        name=snap.getName(),
        domain=domain,
        description=root.findtext("description"),
        created_at=int(root.findtext("creationTime", "0")),
        domain_state=root.findtext("state", "unknown"),
        parent=root.findtext("parent/name"),
        current=bool(snap.isCurrent(0)),
    )


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
        dom = lookup_domain(conn, domain)
        snaps = [read_snapshot(domain, s) for s in dom.listAllSnapshots(0)]
        return sorted(snaps, key=lambda s: (s.created_at, s.name))


def get_snapshot(ctx: AgentContext, domain: str, name: str) -> SnapshotState:
    """Return snapshot `name` of `domain`; not_found if either is missing."""
    conn = ctx.connection.get()
    with libvirt_errors(f"reading snapshot {domain}/{name}"):
        snap = _find(lookup_domain(conn, domain), name)
        if snap is None:
            raise not_found("snapshot", f"{domain}/{name}")
        return read_snapshot(domain, snap)


def ensure_snapshot(ctx: AgentContext, domain: str, name: str, spec: SnapshotSpec) -> VerbResult:
    """Make snapshot `name` of `domain` exist (taken now if missing; an existing one is kept)."""
    conn = ctx.connection.get()
    with ctx.locks.hold("domain", domain), libvirt_errors(f"snapshotting {domain}/{name}"):
        dom = lookup_domain(conn, domain)
        if _find(dom, name) is not None:
            return VerbResult(name=name, changed=False, state="present")
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
