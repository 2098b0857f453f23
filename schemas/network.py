"""Network: a libvirt network defined on the hosts a selector picks."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from schemas.meta import CorralModel, LabelSelector, Name, ObjectStatus, Resource, quote


class NetworkMode(StrEnum):
    NAT = "nat"  # libvirt bridge with NAT to the host's uplink
    BRIDGE = "bridge"  # attach to an existing host bridge
    ISOLATED = "isolated"  # guests and host only, no forwarding


class DHCPRange(CorralModel):
    start: str
    end: str


class IPv4(CorralModel):
    """The network's IPv4 subnet; the first host address is the gateway unless set."""

    cidr: str
    gateway: str | None = None
    dhcp: DHCPRange | None = None

    @field_validator("cidr")
    @classmethod
    def _valid_cidr(cls, value: str) -> str:
        try:
            net = ipaddress.IPv4Network(value, strict=True)
        except ValueError as exc:
            raise ValueError(
                f'expected an IPv4 subnet like "10.10.0.0/24", got {quote(value)} ({exc})'
            ) from None
        if net.prefixlen > 30:
            raise ValueError(f"subnet {value} is too small for a gateway and guests (max /30)")
        return value

    @model_validator(mode="after")
    def _addresses_inside(self) -> IPv4:
        net = ipaddress.IPv4Network(self.cidr)
        checks = [("gateway", self.gateway)]
        if self.dhcp:
            checks += [("dhcp.start", self.dhcp.start), ("dhcp.end", self.dhcp.end)]
        for field, value in checks:
            if value is None:
                continue
            try:
                addr = ipaddress.IPv4Address(value)
            except ValueError:
                raise ValueError(f"{field}: {quote(value)} is not an IPv4 address") from None
            if addr not in net:
                raise ValueError(f"{field}: {value} is outside the subnet {self.cidr}")
        if self.dhcp and ipaddress.IPv4Address(self.dhcp.start) > ipaddress.IPv4Address(
            self.dhcp.end
        ):
            raise ValueError(f"dhcp.start {self.dhcp.start} is after dhcp.end {self.dhcp.end}")
        return self

    @property
    def gateway_address(self) -> str:
        """Return the gateway: the explicit one or the subnet's first host address."""
        return self.gateway or str(next(ipaddress.IPv4Network(self.cidr).hosts()))


class NetworkSpec(CorralModel):
    """A libvirt network; `bridge` names the host bridge to join (bridge mode) or to create."""

    mode: NetworkMode
    bridge: Name | None = Field(default=None, max_length=15)
    vlan: int | None = Field(default=None, ge=1, le=4094)
    mtu: int | None = Field(default=None, ge=576, le=9216)
    ipv4: IPv4 | None = None
    host_selector: LabelSelector = Field(default_factory=LabelSelector)

    @model_validator(mode="after")
    def _mode_rules(self) -> NetworkSpec:
        if self.mode is NetworkMode.BRIDGE and not self.bridge:
            raise ValueError("mode bridge needs `bridge`: the existing host bridge to attach to")
        if self.mode is NetworkMode.BRIDGE and self.ipv4:
            raise ValueError("mode bridge joins an existing bridge; ipv4 is only for nat/isolated")
        if self.mode is NetworkMode.NAT and not self.ipv4:
            raise ValueError("mode nat needs `ipv4` (the subnet libvirt routes and NATs)")
        if self.vlan is not None and self.mode is not NetworkMode.BRIDGE:
            raise ValueError("vlan tagging needs mode bridge (tags on an Open vSwitch bridge)")
        return self


class NetworkStatus(ObjectStatus):
    hosts: list[str] = Field(default_factory=list, description="Hosts where it is active")


class Network(Resource[NetworkSpec, NetworkStatus]):
    kind: Literal["Network"] = "Network"
