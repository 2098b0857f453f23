"""Guest information of running domains: addresses, hostname, OS and filesystems.

Sources, best first: the QEMU guest agent (only when the domain has its channel
`org.qemu.guest_agent.0` and the agent answers), then the DHCP lease libvirt's
network handed out, then the host's ARP table. Reads go through `GuestInfoCache`,
which re-reads a domain at most every `max_age_s` seconds so that a full state
read does not query every guest every time.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import libvirt

from agentapi import GuestFilesystem, GuestInfo, GuestInterface

log = logging.getLogger(__name__)

GUEST_AGENT_CHANNEL = "org.qemu.guest_agent.0"
AGENT_TIMEOUT_S = 2
"""Guest agent calls wait this long at most: a hung agent must not stall state reads."""
DEFAULT_MAX_AGE_S = 10.0
_ADDRESS_SOURCES: tuple[tuple[str, int], ...] = (
    ("lease", libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE),
    ("arp", libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP),
)


def has_guest_agent_channel(xml: str) -> bool:
    """Return True if the domain XML has the QEMU guest agent's virtio-serial channel."""
    root = ET.fromstring(xml)
    targets = root.iterfind("devices/channel/target")
    return any(target.get("name") == GUEST_AGENT_CHANNEL for target in targets)


def interfaces_from_libvirt(found: dict[str, Any]) -> list[GuestInterface]:
    """Return interfaces from `virDomainInterfaceAddresses`' answer, sorted by name.

    `found` maps an interface name to {"hwaddr": mac, "addrs": [{"addr", "prefix"}]}.
    Addresses that are not IP addresses are dropped.
    """
    interfaces = []
    for name in sorted(found):
        entry = found[name] or {}
        addresses = []
        for item in entry.get("addrs") or []:
            try:
                ip = ipaddress.ip_address(item.get("addr", ""))
            except ValueError:
                continue
            prefix = item.get("prefix")
            addresses.append(f"{ip}/{prefix}" if prefix is not None else str(ip))
        interfaces.append(GuestInterface(name=name, mac=entry.get("hwaddr"), addresses=addresses))
    return interfaces


def details_from_guest_info(info: dict[str, Any]) -> dict[str, Any]:
    """Return hostname, OS and filesystems from `virDomainGetGuestInfo`'s typed parameters."""
    filesystems = []
    for index in range(int(info.get("fs.count", 0))):
        prefix = f"fs.{index}."
        total = info.get(prefix + "total-bytes")
        used = info.get(prefix + "used-bytes")
        filesystems.append(
            GuestFilesystem(
                mountpoint=str(info.get(prefix + "mountpoint", "")),
                name=info.get(prefix + "name"),
                type=info.get(prefix + "fstype"),
                total_bytes=int(total) if total is not None else None,
                used_bytes=int(used) if used is not None else None,
            )
        )
    return {
        "hostname": info.get("hostname"),
        "os_id": info.get("os.id"),
        "os_name": info.get("os.pretty-name") or info.get("os.name"),
        "os_version": info.get("os.version"),
        "filesystems": filesystems,
    }


def _from_agent(dom: libvirt.virDomain, now: float) -> GuestInfo | None:
    try:
        dom.agentSetResponseTimeout(AGENT_TIMEOUT_S, 0)
        found = dom.interfaceAddresses(libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT, 0)
    except libvirt.libvirtError as exc:
        log.debug("guest agent of %s does not answer: %s", dom.name(), exc)
        return None
    details: dict[str, Any] = {}
    types = (
        libvirt.VIR_DOMAIN_GUEST_INFO_OS
        | libvirt.VIR_DOMAIN_GUEST_INFO_HOSTNAME
        | libvirt.VIR_DOMAIN_GUEST_INFO_FILESYSTEM
    )
    try:
        details = details_from_guest_info(dom.guestInfo(types, 0))
    except libvirt.libvirtError as exc:
        log.debug("guest info of %s: %s", dom.name(), exc)
    return GuestInfo(source="agent", at=now, interfaces=interfaces_from_libvirt(found), **details)


def read_guest_info(dom: libvirt.virDomain, now: float) -> GuestInfo | None:
    """Return what is known about running domain `dom` from the best source that answers.

    None when no source knows an address (no NIC, no lease yet, nothing in ARP).
    """
    try:
        with_agent = has_guest_agent_channel(dom.XMLDesc(0))
    except (libvirt.libvirtError, ET.ParseError):
        return None
    if with_agent:
        info = _from_agent(dom, now)
        if info is not None and info.ips():
            return info
    for source, flag in _ADDRESS_SOURCES:
        try:
            found = dom.interfaceAddresses(flag, 0)
        except libvirt.libvirtError as exc:
            log.debug("%s addresses of %s: %s", source, dom.name(), exc)
            continue
        info = GuestInfo(source=source, at=now, interfaces=interfaces_from_libvirt(found))  # type: ignore[arg-type]
        if info.ips():
            return info
    return None


class GuestInfoCache:
    """Guest information per domain UUID, re-read when older than `max_age_s` seconds."""

    def __init__(
        self, max_age_s: float = DEFAULT_MAX_AGE_S, clock: Callable[[], float] = time.time
    ) -> None:
        self.max_age_s = max_age_s
        self._clock = clock
        self._entries: dict[str, tuple[float, GuestInfo | None]] = {}
        self._lock = threading.Lock()

    def get(self, dom: libvirt.virDomain, active: bool) -> GuestInfo | None:
        """Return the guest information of `dom` (None for a domain that does not run)."""
        uuid = dom.UUIDString()
        if not active:
            with self._lock:
                self._entries.pop(uuid, None)
            return None
        now = self._clock()
        with self._lock:
            entry = self._entries.get(uuid)
        if entry is not None and now - entry[0] < self.max_age_s:
            return entry[1]
        info = read_guest_info(dom, now)
        with self._lock:
            self._entries[uuid] = (now, info)
        return info

    def forget(self, uuid: str) -> None:
        """Drop what is cached for domain `uuid` (its next read asks the guest again)."""
        with self._lock:
            self._entries.pop(uuid, None)
