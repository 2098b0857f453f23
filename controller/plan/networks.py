"""Networks: define and start each desired network on every healthy host its selector picks."""

from __future__ import annotations

import hashlib
import ipaddress

from agentapi import NetworkSpec as AgentNetworkSpec
from controller.plan import reasons
from controller.plan.builder import PlanBuilder
from controller.plan.diff import make_diff
from controller.plan.memo import IdentityMemo
from controller.plan.model import ActionType
from controller.plan.world import World
from schemas.network import Network, NetworkMode

BRIDGE_MAX = 15
"""Linux interface names are at most 15 characters (IFNAMSIZ - 1)."""

_SPECS: IdentityMemo[AgentNetworkSpec] = IdentityMemo()


def bridge_name(network: str) -> str:
    """Return the bridge Corral names for a network: "cr-<name>", hashed when too long."""
    name = f"cr-{network}"
    if len(name) <= BRIDGE_MAX:
        return name
    digest = hashlib.sha256(network.encode()).hexdigest()[:4]
    return f"cr-{network[: BRIDGE_MAX - 8]}-{digest}"


def network_spec(net: Network) -> AgentNetworkSpec:
    """Return the agent NetworkSpec of a desired Network (the gateway is the host address)."""
    return _SPECS.get((net,), None, lambda: _build_spec(net))


def _build_spec(net: Network) -> AgentNetworkSpec:
    spec = net.spec
    cidr = dhcp_start = dhcp_end = None
    if spec.ipv4 is not None:
        prefix = ipaddress.IPv4Network(spec.ipv4.cidr).prefixlen
        cidr = f"{spec.ipv4.gateway_address}/{prefix}"
        if spec.ipv4.dhcp is not None:
            dhcp_start, dhcp_end = spec.ipv4.dhcp.start, spec.ipv4.dhcp.end
    bridge = spec.bridge
    if spec.mode is not NetworkMode.BRIDGE and bridge is None:
        bridge = bridge_name(net.name)
    return AgentNetworkSpec(
        name=net.name,
        mode=spec.mode.value,
        bridge=bridge,
        vlan_id=spec.vlan,
        ipv4_cidr=cidr,
        dhcp_start=dhcp_start,
        dhcp_end=dhcp_end,
    )


def network_drift(desired: AgentNetworkSpec, observed: AgentNetworkSpec | None) -> list[str]:
    """Return the fields where the observed network differs (a uuid left open is not drift)."""
    if observed is None:
        return ["*"]
    want, have = desired.model_dump(), observed.model_dump()
    return [
        key
        for key, value in want.items()
        if not (key == "uuid" and value is None) and value != have.get(key)
    ]


def plan_networks(world: World, out: PlanBuilder) -> None:
    """Add DefineNetwork/StartNetwork where a network is missing, different or inactive."""
    for name, net in world.desired.networks.items():
        key = ("Network", name)
        spec = network_spec(net)
        payload = spec.model_dump(mode="json")
        hosts = world.matching_hosts(net.spec.host_selector)
        active: list[str] = []
        pending: list[str] = []
        unreachable: list[str] = []
        for host in hosts:
            if not world.actionable(host):
                unreachable.append(host)
                continue
            state = world.observed.networks.get((host, name))
            drift = network_drift(spec, state.spec if state else None)
            if drift:
                observed_dump = state.spec.model_dump(mode="json") if state and state.spec else None
                what = "missing" if state is None else f"differs in {', '.join(drift)}"
                out.add(
                    ActionType.DEFINE_NETWORK,
                    key,
                    host,
                    reasons.CREATING if state is None else reasons.UPDATING,
                    f"Network {name} is {what} on {host}; defining it",
                    payload=payload,
                    diff=make_diff(_comparable(observed_dump, payload), payload),
                )
            if state is None or not state.active:
                out.add(
                    ActionType.START_NETWORK,
                    key,
                    host,
                    reasons.STARTING,
                    f"Network {name} is not active on {host}; starting it",
                )
            if drift or state is None or not state.active:
                pending.append(host)
            else:
                active.append(host)
            out.networks_ready.add((host, name))
        _verdict(out, key, hosts, active, pending, unreachable)


def _comparable(observed: dict | None, desired: dict) -> dict | None:
    """Return the observed dump with values the desired spec leaves to libvirt left open."""
    if observed is None:
        return None
    return {k: None if k == "uuid" and desired.get(k) is None else v for k, v in observed.items()}


def _verdict(
    out: PlanBuilder,
    key: tuple[str, str],
    hosts: list[str],
    active: list[str],
    pending: list[str],
    unreachable: list[str],
) -> None:
    name = key[1]
    if not hosts:
        out.verdict(
            key,
            False,
            reasons.NO_HOSTS,
            f"No desired host matches the host selector of Network {name}",
            stalled=True,
            hosts=[],
        )
        return
    note = f"; not answering: {', '.join(unreachable)}" if unreachable else ""
    if pending:
        out.verdict(
            key,
            False,
            reasons.CREATING,
            f"Defining or starting Network {name} on {', '.join(pending)}{note}",
            hosts=active,
        )
    elif not active:
        out.verdict(
            key,
            False,
            reasons.AGENT_UNREACHABLE,
            f"No host of Network {name} answers ({', '.join(unreachable)})",
            hosts=[],
        )
    else:
        out.verdict(
            key,
            True,
            reasons.CONVERGED,
            f"Network {name} is active on {len(active)} host(s){note}",
            hosts=active,
        )
