"""Network verbs: define/update, activate, deactivate, undefine; and reading networks."""

from __future__ import annotations

import libvirt
from pydantic import ValidationError

from agentapi import ApplyResult, NetworkSpec, NetworkState, VerbResult
from nodeagent.context import AgentContext
from nodeagent.definitions import (
    check_path_name,
    define_or_update,
    drifted_fields,
    ensure_removed,
    lookup_or_none,
    lookup_or_not_found,
    persistent_xml,
)
from nodeagent.errors import conflict, libvirt_errors
from nodeagent.netxml import NetworkXMLError, build_network, parse_network

# Left open in a spec (None), libvirt picks them: not drift.
_FILLED_BY_LIBVIRT = ("uuid", "bridge")


def diff_network_specs(desired: NetworkSpec, observed: NetworkSpec) -> list[str]:
    """Return the fields where `observed` differs from `desired` (None = libvirt's choice)."""
    return drifted_fields(desired, observed, _FILLED_BY_LIBVIRT)


def _xml_drift(desired: NetworkSpec, observed: NetworkSpec) -> list[str]:
    """Return the drifted fields that need a redefinition (autostart is a flag, not XML)."""
    return [f for f in diff_network_specs(desired, observed) if f != "autostart"]


def find_network(conn: libvirt.virConnect, name: str) -> libvirt.virNetwork | None:
    """Return the network called `name`, or None."""
    return lookup_or_none(conn.networkLookupByName, name, libvirt.VIR_ERR_NO_NETWORK)


def _lookup(conn: libvirt.virConnect, name: str) -> libvirt.virNetwork:
    return lookup_or_not_found(
        conn.networkLookupByName, name, libvirt.VIR_ERR_NO_NETWORK, "network"
    )


def network_xml(net: libvirt.virNetwork) -> str:
    """Return the network's persistent XML (drivers without the INACTIVE flag: its only XML)."""
    return persistent_xml(net, libvirt.VIR_NETWORK_XML_INACTIVE)


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
    check_path_name(spec.name, name)
    conn = ctx.connection.get()
    with ctx.locks.hold("network", name), libvirt_errors(f"defining network {name}"):
        net = find_network(conn, name)
        current = read_network_state(net).spec if net is not None else None
        if net is not None and spec.uuid is not None and net.UUIDString() != spec.uuid:
            raise conflict(f"network {name!r} exists with uuid {net.UUIDString()}")

        def define(desired: NetworkSpec) -> libvirt.virNetwork:
            if current is not None and desired.bridge is None:
                # libvirt named the bridge when the network was first defined: keep it.
                desired = desired.model_copy(update={"bridge": current.bridge})
            return conn.networkDefineXML(build_network(desired))

        done = define_or_update(f"network {name}", net, current, spec, _xml_drift, define)
        return done.finish(name, spec.autostart)


def ensure_network_active(ctx: AgentContext, name: str) -> VerbResult:
    """Make network `name` active."""
    conn = ctx.connection.get()
    with ctx.locks.hold("network", name), libvirt_errors(f"starting network {name}"):
        net = _lookup(conn, name)
        if net.isActive():
            return VerbResult(name=name, changed=False, state="active")
        net.create()
        return VerbResult(name=name, changed=True, state="active")


def _refuse_if_used(conn: libvirt.virConnect, name: str) -> None:
    """Raise conflict naming the running domains with a NIC on network `name`, if any."""
    from nodeagent.domains import spec_from_xml

    users = []
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
        spec = spec_from_xml(dom.XMLDesc(0))
        if spec and any(nic.network == name for nic in spec.nics):
            users.append(dom.name())
    if users:
        raise conflict(f"network {name!r} is used by running domains: {', '.join(sorted(users))}")


def ensure_network_inactive(ctx: AgentContext, name: str) -> VerbResult:
    """Make network `name` inactive; conflict while running domains are attached to it."""
    conn = ctx.connection.get()
    with ctx.locks.hold("network", name), libvirt_errors(f"stopping network {name}"):
        net = _lookup(conn, name)
        if not net.isActive():
            return VerbResult(name=name, changed=False, state="inactive")
        _refuse_if_used(conn, name)
        net.destroy()
        return VerbResult(name=name, changed=True, state="inactive")


def ensure_network_undefined(ctx: AgentContext, name: str) -> VerbResult:
    """Make network `name` absent (stopping it first); conflict while in use."""
    conn = ctx.connection.get()
    with ctx.locks.hold("network", name), libvirt_errors(f"undefining network {name}"):
        return ensure_removed(name, find_network(conn, name), lambda: _refuse_if_used(conn, name))
