"""Network verbs: define/update, activate, deactivate, undefine; and reading networks."""

from __future__ import annotations

import logging

import libvirt
from pydantic import ValidationError

from nodeagent.context import AgentContext
from nodeagent.errors import conflict, invalid_spec, libvirt_errors, not_found
from nodeagent.models import ApplyResult, NetworkSpec, NetworkState, VerbResult
from nodeagent.netxml import NetworkXMLError, build_network, parse_network

log = logging.getLogger(__name__)

# Left open in a spec (None), libvirt picks them: not drift.
_FILLED_BY_LIBVIRT = ("uuid", "bridge")


def diff_network_specs(desired: NetworkSpec, observed: NetworkSpec) -> list[str]:
    """Return the fields where `observed` differs from `desired` (None = libvirt's choice)."""
    want, have = desired.model_dump(), observed.model_dump()
    return [
        key
        for key, value in want.items()
        if not (key in _FILLED_BY_LIBVIRT and value is None) and value != have[key]
    ]


def find_network(conn: libvirt.virConnect, name: str) -> libvirt.virNetwork | None:
    """Return the network called `name`, or None."""
    try:
        return conn.networkLookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_NETWORK:
            return None
        raise


def _lookup(conn: libvirt.virConnect, name: str) -> libvirt.virNetwork:
    net = find_network(conn, name)
    if net is None:
        raise not_found("network", name)
    return net


def network_xml(net: libvirt.virNetwork) -> str:
    """Return the network's persistent XML (drivers without the INACTIVE flag: its only XML)."""
    try:
        return net.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_INVALID_ARG:
            raise
        return net.XMLDesc(0)


def read_network_state(net: libvirt.virNetwork) -> NetworkState:
    """Return the observed state of a network, its spec parsed from the persistent XML."""
    persistent = bool(net.isPersistent())
    autostart = bool(net.autostart()) if persistent else False
    spec = None
    if persistent:
        try:
            spec = parse_network(network_xml(net), autostart)
        except (NetworkXMLError, ValidationError, ValueError):
            spec = None
    return NetworkState(
        name=net.name(),
        uuid=net.UUIDString(),
        active=bool(net.isActive()),
        persistent=persistent,
        autostart=autostart,
        spec=spec,
    )


def list_networks(ctx: AgentContext) -> list[NetworkState]:
    """Return every network on the host, by name."""
    conn = ctx.connection.get()
    with libvirt_errors("listing networks"):
        nets = conn.listAllNetworks(0)
        return sorted((read_network_state(n) for n in nets), key=lambda n: n.name)


def get_network(ctx: AgentContext, name: str) -> NetworkState:
    """Return the observed state of network `name`; not_found if missing."""
    conn = ctx.connection.get()
    with libvirt_errors(f"reading network {name}"):
        return read_network_state(_lookup(conn, name))


def ensure_network_defined(ctx: AgentContext, name: str, spec: NetworkSpec) -> ApplyResult:
    """Make network `name` defined as `spec` with its autostart flag; it is not started.

    A change to an active network lands in its persistent definition and is
    listed in `restart_required` (restarting it would cut the VMs attached to it).
    """
    if spec.name != name:
        raise invalid_spec("name", f"spec names {spec.name!r} but the path names {name!r}")
    conn = ctx.connection.get()
    with ctx.locks.hold("network", name), libvirt_errors(f"defining network {name}"):
        net = find_network(conn, name)
        created = net is None
        current = read_network_state(net).spec if net is not None else None
        if net is not None and spec.uuid is not None and net.UUIDString() != spec.uuid:
            raise conflict(f"network {name!r} exists with uuid {net.UUIDString()}")
        drift = diff_network_specs(spec, current) if current is not None else ["*"]
        drift_xml = [f for f in drift if f != "autostart"]
        changed = False
        restart: list[str] = []
        if drift_xml:
            desired = spec if net is None else spec.model_copy(update={"uuid": net.UUIDString()})
            if net is not None and current is not None and spec.bridge is None:
                desired = desired.model_copy(update={"bridge": current.bridge})
            net = conn.networkDefineXML(build_network(desired))
            changed = True
            log.info("defined network %s", name)
            if net.isActive() and not created:
                restart = drift_xml
        if bool(net.autostart()) != spec.autostart:
            net.setAutostart(1 if spec.autostart else 0)
            changed = True
        return ApplyResult(name=name, changed=changed, created=created, restart_required=restart)


def ensure_network_active(ctx: AgentContext, name: str) -> VerbResult:
    """Make network `name` active."""
    conn = ctx.connection.get()
    with ctx.locks.hold("network", name), libvirt_errors(f"starting network {name}"):
        net = _lookup(conn, name)
        if net.isActive():
            return VerbResult(name=name, changed=False, state="active")
        net.create()
        return VerbResult(name=name, changed=True, state="active")


def _users(conn: libvirt.virConnect, name: str) -> list[str]:
    """Return the running domains with a NIC on network `name`."""
    from nodeagent.domains import spec_from_xml

    users = []
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
        spec = spec_from_xml(dom.XMLDesc(0))
        if spec and any(nic.network == name for nic in spec.nics):
            users.append(dom.name())
    return sorted(users)


def ensure_network_inactive(ctx: AgentContext, name: str) -> VerbResult:
    """Make network `name` inactive; conflict while running domains are attached to it."""
    conn = ctx.connection.get()
    with ctx.locks.hold("network", name), libvirt_errors(f"stopping network {name}"):
        net = _lookup(conn, name)
        if not net.isActive():
            return VerbResult(name=name, changed=False, state="inactive")
        users = _users(conn, name)
        if users:
            raise conflict(f"network {name!r} is used by running domains: {', '.join(users)}")
        net.destroy()
        return VerbResult(name=name, changed=True, state="inactive")


def ensure_network_undefined(ctx: AgentContext, name: str) -> VerbResult:
    """Make network `name` absent (stopping it first); conflict while in use."""
    conn = ctx.connection.get()
    with ctx.locks.hold("network", name), libvirt_errors(f"undefining network {name}"):
        net = find_network(conn, name)
        if net is None:
            return VerbResult(name=name, changed=False, state="absent")
        if net.isActive():
            users = _users(conn, name)
            if users:
                raise conflict(f"network {name!r} is used by running domains: {', '.join(users)}")
            net.destroy()
        if net.isPersistent():
            net.undefine()
        return VerbResult(name=name, changed=True, state="absent")
