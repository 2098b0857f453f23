"""Wire models of libvirt networks."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator, model_validator

from agentapi.common import NAME_PATTERN, WireModel


class NetworkSpec(WireModel):
    """A libvirt network: NAT, isolated (libvirt-made bridge) or an existing host bridge.

    `ipv4_cidr` is the host side address with its prefix (e.g. 192.168.100.1/24).
    `vlan_id` needs mode bridge; it is set through an Open vSwitch virtualport,
    the only libvirt bridge network that carries a VLAN tag.
    """

    name: str = Field(pattern=NAME_PATTERN)
    uuid: str | None = None
    mode: Literal["nat", "bridge", "isolated"]
    bridge: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,15}$")
    forward_dev: str | None = None
    vlan_id: int | None = Field(default=None, ge=1, le=4094)
    ipv4_cidr: str | None = None
    dhcp_start: str | None = None
    dhcp_end: str | None = None
    autostart: bool = True

    @field_validator("ipv4_cidr")
    @classmethod
    def _cidr(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            iface = ipaddress.IPv4Interface(value)
        except ValueError as exc:
            raise ValueError(f"expected an address/prefix like 10.0.0.1/24, got {value!r}") from exc
        if "/" not in value:
            raise ValueError(f"expected an address/prefix like 10.0.0.1/24, got {value!r}")
        return str(iface)

    @model_validator(mode="after")
    def _mode_rules(self) -> NetworkSpec:
        if self.mode == "bridge":
            if self.bridge is None:
                raise ValueError("mode bridge needs the name of an existing host bridge")
            if self.ipv4_cidr or self.dhcp_start or self.dhcp_end:
                raise ValueError("mode bridge takes no ipv4_cidr or DHCP (the bridge has its own)")
        elif self.vlan_id is not None:
            raise ValueError("vlan_id needs mode bridge")
        if self.mode == "nat" and self.ipv4_cidr is None:
            # libvirt refuses the definition ("nat forwarding requested, but no IP address").
            raise ValueError("mode nat needs ipv4_cidr (the host side address/prefix)")
        if self.forward_dev is not None and self.mode != "nat":
            raise ValueError("forward_dev needs mode nat")
        if (self.dhcp_start is None) != (self.dhcp_end is None):
            raise ValueError("set both dhcp_start and dhcp_end, or neither")
        if self.dhcp_start is not None:
            if self.ipv4_cidr is None:
                raise ValueError("a DHCP range needs ipv4_cidr")
            net = ipaddress.IPv4Interface(self.ipv4_cidr).network
            for bound in (self.dhcp_start, self.dhcp_end):
                try:
                    address = ipaddress.IPv4Address(bound)
                except ValueError as exc:
                    raise ValueError(f"DHCP bound is not an IPv4 address: {bound!r}") from exc
                if address not in net:
                    raise ValueError(f"DHCP bound {bound} is outside {net}")
        return self


class NetworkState(WireModel):
    """A libvirt network as observed: `spec` parsed back from its persistent XML."""

    name: str
    uuid: str
    active: bool
    persistent: bool
    autostart: bool
    spec: NetworkSpec | None = None
