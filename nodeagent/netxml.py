"""Libvirt network XML from a NetworkSpec and back (xml.etree)."""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET

from agentapi import NetworkSpec


class NetworkXMLError(ValueError):
    """Network XML Corral cannot describe (e.g. a forward mode it does not manage)."""


def build_forward(spec: NetworkSpec) -> ET.Element | None:
    """Return the forward element: NAT (optionally through one device), bridge, or None.

    <forward mode='nat' dev='eth0'/>   |   <forward mode='bridge'/>   |   (isolated: none)
    """
    if spec.mode == "isolated":
        return None
    forward = ET.Element("forward", mode=spec.mode)
    if spec.forward_dev is not None:
        forward.set("dev", spec.forward_dev)
    return forward


def build_ip(spec: NetworkSpec) -> ET.Element | None:
    """Return the host-side address with its DHCP range, or None.

    <ip address='192.168.100.1' prefix='24'>
      <dhcp><range start='192.168.100.10' end='192.168.100.200'/></dhcp>
    </ip>
    """
    if spec.ipv4_cidr is None:
        return None
    iface = ipaddress.IPv4Interface(spec.ipv4_cidr)
    ip = ET.Element("ip", address=str(iface.ip), prefix=str(iface.network.prefixlen))
    if spec.dhcp_start is not None and spec.dhcp_end is not None:
        dhcp = ET.SubElement(ip, "dhcp")
        ET.SubElement(dhcp, "range", start=spec.dhcp_start, end=spec.dhcp_end)
    return ip


def build_vlan(spec: NetworkSpec) -> list[ET.Element]:
    """Return the VLAN tag and the Open vSwitch port that carries it, or nothing.

    <virtualport type='openvswitch'/>
    <vlan><tag id='42'/></vlan>
    """
    if spec.vlan_id is None:
        return []
    vlan = ET.Element("vlan")
    ET.SubElement(vlan, "tag", id=str(spec.vlan_id))
    return [ET.Element("virtualport", type="openvswitch"), vlan]


def build_network(spec: NetworkSpec) -> str:
    """Return the network XML document for `spec`."""
    network = ET.Element("network")
    ET.SubElement(network, "name").text = spec.name
    if spec.uuid is not None:
        ET.SubElement(network, "uuid").text = spec.uuid
    forward = build_forward(spec)
    if forward is not None:
        network.append(forward)
    if spec.bridge is not None:
        attrs = {"name": spec.bridge}
        if spec.mode != "bridge":
            attrs.update(stp="on", delay="0")
        ET.SubElement(network, "bridge", attrs)
    network.extend(build_vlan(spec))
    ip = build_ip(spec)
    if ip is not None:
        network.append(ip)
    ET.indent(network)
    return ET.tostring(network, encoding="unicode") + "\n"


def parse_network(xml: str, autostart: bool = True) -> NetworkSpec:
    """Return the NetworkSpec of network XML; NetworkXMLError for modes Corral does not manage."""
    root = ET.fromstring(xml)
    forward = root.find("forward")
    mode = "isolated" if forward is None else forward.get("mode", "nat")
    if mode not in ("nat", "bridge", "isolated"):
        raise NetworkXMLError(f"forward mode {mode!r} is not managed by Corral")
    bridge = root.find("bridge")
    ip = root.find("ip")
    cidr = dhcp_start = dhcp_end = None
    if ip is not None and ip.get("family", "ipv4") == "ipv4":
        prefix = ip.get("prefix") or str(
            ipaddress.IPv4Network(f"0.0.0.0/{ip.get('netmask', '255.255.255.0')}").prefixlen
        )
        cidr = f"{ip.get('address')}/{prefix}"
        dhcp_range = ip.find("dhcp/range")
        if dhcp_range is not None:
            dhcp_start, dhcp_end = dhcp_range.get("start"), dhcp_range.get("end")
    tag = root.find("vlan/tag")
    return NetworkSpec(
        name=root.findtext("name", ""),
        uuid=root.findtext("uuid"),
        mode=mode,
        bridge=bridge.get("name") if bridge is not None else None,
        forward_dev=forward.get("dev") if forward is not None and mode == "nat" else None,
        vlan_id=int(tag.get("id", "0")) if tag is not None else None,
        ipv4_cidr=cidr,
        dhcp_start=dhcp_start,
        dhcp_end=dhcp_end,
        autostart=autostart,
    )
