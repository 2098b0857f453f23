"""Domain verbs: define/update, start, stop, destroy, undefine; and reading a domain's state.

Each verb is level-triggered: it reads what is there, changes only what differs,
and answers `changed: false` when repeated. Defining goes through one
`defineXML`, which libvirt applies atomically: a refused definition leaves the
existing one as it was.
"""

from __future__ import annotations

import logging
import time
import xml.etree.ElementTree as ET
from functools import lru_cache

import libvirt
from pydantic import ValidationError

from agentapi import (
    ApplyResult,
    DomainSpec,
    DomainState,
    FenceRecord,
    VerbResult,
    diff_domain_specs,
)
from nodeagent.context import AgentContext
from nodeagent.domxml import (
    CORRAL_NS,
    DomainXMLError,
    build_corral_vm,
    build_domain,
    parse_domain,
)
from nodeagent.errors import AgentFailure, conflict, invalid_spec, libvirt_errors, not_found
from nodeagent.vocab import domain_reason_name, domain_state_name

log = logging.getLogger(__name__)

_METADATA_FIELDS = {"ha", "ha_priority", "labels", "hooks"}


def lookup_domain(conn: libvirt.virConnect, name: str) -> libvirt.virDomain:
    """Return the domain called `name`; not_found if there is none."""
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            raise not_found("domain", name) from exc
        raise AgentFailure("libvirt_error", str(exc), libvirt_code=exc.get_error_code()) from exc


def find_domain(conn: libvirt.virConnect, name: str) -> libvirt.virDomain | None:
    """Return the domain called `name`, or None."""
    try:
        return lookup_domain(conn, name)
    except AgentFailure as exc:
        if exc.error.type == "not_found":
            return None
        raise


@lru_cache(maxsize=4096)
def spec_from_xml(xml: str) -> DomainSpec | None:
    """Return the DomainSpec of domain XML, or None if Corral cannot describe it.

    Cached by the XML text: a full state read re-parses only domains whose XML
    changed (parsing and validating is ~1 ms per domain; libvirt's XML ~0.03 ms).
    Callers must not mutate the returned spec (model_copy it instead).
    """
    try:
        return parse_domain(xml)
    except (DomainXMLError, ValidationError, ValueError):
        return None


def persistent_spec(dom: libvirt.virDomain) -> DomainSpec | None:
    """Return the spec of the domain's persistent definition (None if transient/unreadable)."""
    if not dom.isPersistent():
        return None
    return spec_from_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))


def live_spec(dom: libvirt.virDomain) -> DomainSpec | None:
    """Return the spec of the running configuration (None when not running)."""
    if not dom.isActive():
        return None
    return spec_from_xml(dom.XMLDesc(0))


def read_domain_state(
    ctx: AgentContext, dom: libvirt.virDomain, state: tuple[int, int] | None = None
) -> DomainState:
    """Return the observed state of one domain: state, reason, persistent and live specs."""
    code, reason = state if state is not None else dom.state()
    persistent = bool(dom.isPersistent())
    active = code not in (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_NOSTATE) or bool(
        dom.isActive()
    )
    spec = spec_from_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)) if persistent else None
    live = spec_from_xml(dom.XMLDesc(0)) if active else None
    shown = spec or live
    name = dom.name()
    guest = ctx.guest_info.get(dom, active)
    # Every value below is already typed (specs validated when parsed): constructing
    # without re-validation keeps a 200-domain state read within its budget.
    return DomainState.model_construct(
        name=name,
        uuid=dom.UUIDString(),
        state=domain_state_name(code),  # type: ignore[arg-type]
        reason=domain_reason_name(code, reason),
        persistent=persistent,
        autostart=bool(dom.autostart()) if persistent else False,
        ha=bool((spec and spec.ha) or (live and live.ha)),
        spec=spec,
        live=live,
        metadata=dict(shown.labels) if shown else {},
        migration=ctx.migrations.get(name),
        ips=guest.ips() if guest else [],
        guest=guest,
    )


def get_domain(ctx: AgentContext, name: str) -> DomainState:
    """Return the observed state of domain `name`; not_found if missing."""
    conn = ctx.connection.get()
    with libvirt_errors(f"reading domain {name}"):
        return read_domain_state(ctx, lookup_domain(conn, name))


def ensure_domain_defined(ctx: AgentContext, name: str, spec: DomainSpec) -> ApplyResult:
    """Make the persistent definition of `name` equal `spec`; apply what can change live.

    Live: memory within the running balloon maximum, vCPUs within the running
    maximum, and Corral's metadata and description. Every other difference from
    the running configuration is listed in `restart_required`. Conflict if a
    domain of that name exists with another UUID.
    """
    if spec.name != name:
        raise invalid_spec("name", f"spec names {spec.name!r} but the path names {name!r}")
    conn = ctx.connection.get()
    with ctx.locks.hold("domain", name), libvirt_errors(f"defining domain {name}"):
        dom = find_domain(conn, name)
        if dom is not None and dom.UUIDString() != spec.uuid:
            raise conflict(f"domain {name!r} exists with uuid {dom.UUIDString()}, not {spec.uuid}")
        created = dom is None
        current = persistent_spec(dom) if dom is not None else None
        changed = False
        if current is None or diff_domain_specs(spec, current):
            dom = conn.defineXML(build_domain(spec))
            changed = True
            log.info("defined domain %s (%s)", name, "created" if created else "updated")
        applied: list[str] = []
        restart: list[str] = []
        if dom.isActive():
            applied, restart = _apply_live(dom, spec)
        return ApplyResult(
            name=name,
            changed=changed or bool(applied),
            created=created,
            applied_live=applied,
            restart_required=restart,
        )


def _apply_live(dom: libvirt.virDomain, spec: DomainSpec) -> tuple[list[str], list[str]]:
    """Apply live-changeable fields to a running domain; return (applied, restart_required)."""
    live = spec_from_xml(dom.XMLDesc(0))
    if live is None:
        return [], ["*"]
    drift = diff_domain_specs(spec, live)
    applied: list[str] = []
    restart: list[str] = []
    live_flag = libvirt.VIR_DOMAIN_AFFECT_LIVE
    for field in drift:
        if field == "memory_mib" and live.max_memory_mib and spec.memory_mib <= live.max_memory_mib:
            dom.setMemoryFlags(spec.memory_mib * 1024, live_flag)
            applied.append(field)
        elif field == "vcpus" and spec.vcpus <= (live.max_vcpus or live.vcpus):
            dom.setVcpusFlags(spec.vcpus, live_flag)
            applied.append(field)
        elif field == "max_vcpus" and spec.vcpus <= (live.max_vcpus or live.vcpus):
            restart.append(field)
        elif field in _METADATA_FIELDS:
            if "metadata" not in applied:
                dom.setMetadata(
                    libvirt.VIR_DOMAIN_METADATA_ELEMENT,
                    ET.tostring(build_corral_vm(spec), encoding="unicode"),
                    "corral",
                    CORRAL_NS,
                    live_flag,
                )
            applied.append(field)
        elif field == "description":
            dom.setMetadata(
                libvirt.VIR_DOMAIN_METADATA_DESCRIPTION, spec.description, None, None, live_flag
            )
            applied.append(field)
        else:
            restart.append(field)
    return applied, restart


def ensure_running(ctx: AgentContext, name: str) -> VerbResult:
    """Make domain `name` run: start it (through before/after_vm_start hooks) or resume it.

    HA domains start only while this host holds its fencing lease (conflict otherwise).
    """
    conn = ctx.connection.get()
    with ctx.locks.hold("domain", name), libvirt_errors(f"starting domain {name}"):
        dom = lookup_domain(conn, name)
        code, _ = dom.state()
        if code == libvirt.VIR_DOMAIN_PAUSED:
            dom.resume()
            return VerbResult(name=name, changed=True, state="running", message="resumed")
        if dom.isActive():
            return VerbResult(name=name, changed=False, state=domain_state_name(code))
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
        spec = spec_from_xml(xml)
        wanted = spec.hooks if spec else []
        if spec is not None and spec.ha:
            ctx.lease.check_ha_start(name)
        uuid = dom.UUIDString()
        ctx.hooks.check_installed(name, wanted)
        start_xml = ctx.hooks.run_before("before_vm_start", xml, name, uuid, wanted)
        if start_xml != xml:
            # Start with the hook's XML as the live configuration; the persistent
            # definition stays as the controller wrote it (live then shows the rewrite).
            dom = conn.createXML(start_xml, 0)
        else:
            dom.create()
        log.info("started domain %s", name)
        ctx.hooks.run_after("after_vm_start", dom.XMLDesc(0), name, uuid, wanted)
        return VerbResult(name=name, changed=True, state=domain_state_name(dom.state()[0]))


def _hooks_of(dom: libvirt.virDomain) -> list[str]:
    spec = spec_from_xml(dom.XMLDesc(0)) if dom.isActive() else None
    return spec.hooks if spec else []


def _stop(ctx: AgentContext, dom: libvirt.virDomain, name: str, timeout_s: float | None) -> str:
    """Stop a running domain gracefully (None: destroy at once); return how it stopped."""
    wanted = _hooks_of(dom)
    uuid = dom.UUIDString()
    xml = dom.XMLDesc(0)
    ctx.hooks.run_before("before_vm_destroy", xml, name, uuid, wanted)
    graceful = bool(timeout_s) and dom.state()[0] != libvirt.VIR_DOMAIN_PAUSED
    if graceful:
        dom.shutdown()
        deadline = time.monotonic() + (timeout_s or 0)
        while _active(dom) and time.monotonic() < deadline:
            time.sleep(0.1)
    how = "shut down"
    if _active(dom):
        try:
            dom.destroy()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID or _active(dom):
                raise
        how = f"destroyed after {timeout_s:g} s of graceful shutdown" if graceful else "destroyed"
    log.info("domain %s %s", name, how)
    ctx.hooks.run_after("after_vm_destroy", xml, name, uuid, wanted)
    return how


def _active(dom: libvirt.virDomain) -> bool:
    try:
        return bool(dom.isActive())
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return False  # a transient domain is gone once stopped
        raise


def ensure_stopped(ctx: AgentContext, name: str, timeout_s: float) -> VerbResult:
    """Make domain `name` stopped: ACPI shutdown, then destroy after `timeout_s` seconds."""
    conn = ctx.connection.get()
    with ctx.locks.hold("domain", name), libvirt_errors(f"stopping domain {name}"):
        dom = lookup_domain(conn, name)
        if not dom.isActive():
            return VerbResult(name=name, changed=False, state="shutoff")
        how = _stop(ctx, dom, name, timeout_s)
        return VerbResult(name=name, changed=True, state="shutoff", message=how)


def ensure_destroyed(ctx: AgentContext, name: str) -> VerbResult:
    """Make domain `name` not running, by destroy (hard power-off) if it runs."""
    conn = ctx.connection.get()
    with ctx.locks.hold("domain", name), libvirt_errors(f"destroying domain {name}"):
        dom = lookup_domain(conn, name)
        if not dom.isActive():
            return VerbResult(name=name, changed=False, state="shutoff")
        how = _stop(ctx, dom, name, None)
        return VerbResult(name=name, changed=True, state="shutoff", message=how)


def ensure_undefined(ctx: AgentContext, name: str, force: bool) -> VerbResult:
    """Make domain `name` absent with its snapshot metadata and NVRAM.

    A running domain is refused (conflict) unless `force`, which destroys it first.
    """
    conn = ctx.connection.get()
    with ctx.locks.hold("domain", name), libvirt_errors(f"undefining domain {name}"):
        dom = find_domain(conn, name)
        if dom is None:
            return VerbResult(name=name, changed=False, state="absent")
        if dom.isActive():
            if not force:
                raise conflict(f"domain {name!r} is running; stop it first or pass force=true")
            _stop(ctx, dom, name, None)
            dom = find_domain(conn, name)
            if dom is None:
                return VerbResult(name=name, changed=True, state="absent")
        flags = libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
        xml_root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        if (
            xml_root.find("os/nvram") is not None
            or xml_root.find("os[@firmware='efi']") is not None
        ):
            flags |= libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
        if dom.hasManagedSaveImage(0):
            flags |= libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
        dom.undefineFlags(flags)
        log.info("undefined domain %s", name)
        return VerbResult(name=name, changed=True, state="absent")


def running_ha_domains(ctx: AgentContext) -> list[str]:
    """Return the names of the running HA domains."""
    names = []
    for dom in ctx.connection.get().listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
        try:
            spec = spec_from_xml(dom.XMLDesc(0))
            if spec is not None and spec.ha:
                names.append(dom.name())
        except libvirt.libvirtError:
            continue
    return names


def fence_ha_domains(ctx: AgentContext, killed: set[str] | None = None) -> list[FenceRecord]:
    """Destroy every running HA domain at once (no hooks, no grace); return what was done.

    Domains in `killed` had their QEMU killed a moment ago: libvirt may still list them
    as running, and an error destroying one of them is no failure of the fence.
    """
    conn = ctx.connection.get()
    killed = killed or set()
    records: list[FenceRecord] = []
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
        try:
            spec = spec_from_xml(dom.XMLDesc(0))
            stored = persistent_spec(dom)
            if not ((spec and spec.ha) or (stored and stored.ha)):
                continue
            dom.destroy()
            if dom.name() not in killed:
                records.append(
                    FenceRecord(vm=dom.name(), at=time.time(), ok=True, message="destroyed")
                )
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_OPERATION_INVALID:
                continue  # it stopped between the listing and the destroy: nothing to fence
            if dom.name() not in killed:
                records.append(
                    FenceRecord(vm=dom.name(), at=time.time(), ok=False, message=str(exc))
                )
    return records
