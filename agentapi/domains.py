"""Wire models of domains: the resolved spec the controller sends, the state the agent
reads back (`spec` from the persistent XML, `live` from the running one, so desired
and observed compare field by field: agentapi.drift), and the bodies of the stop and
balloon verbs."""

from __future__ import annotations

import ipaddress
import re
import uuid as uuidlib
from typing import Literal

from pydantic import Field, field_validator, model_validator

from agentapi.common import DISK_TARGET_PATTERN, MAC_PATTERN, NAME_PATTERN, WireModel, XmlText
from agentapi.migration import MigrationJob
from agentapi.snapshots import SnapshotState

DomainStateName = Literal[
    "running", "paused", "shutoff", "crashed", "pmsuspended", "blocked", "shutdown", "nostate"
]


class DiskSpec(WireModel):
    """One disk or CD-ROM: a host path, or a volume of a libvirt storage pool."""

    target: str = Field(pattern=DISK_TARGET_PATTERN)
    path: XmlText | None = None
    pool: XmlText | None = None
    volume: XmlText | None = None
    format: Literal["qcow2", "raw"] = "qcow2"
    bus: Literal["virtio", "sata", "scsi", "ide"] = "virtio"
    device: Literal["disk", "cdrom"] = "disk"
    readonly: bool = False
    cache: Literal["none", "writeback", "writethrough", "directsync", "unsafe"] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DiskSpec:
        if self.path is not None and (self.pool is not None or self.volume is not None):
            raise ValueError("set either path or pool+volume, not both")
        if self.path is None and (self.pool is None or self.volume is None):
            raise ValueError("set path, or both pool and volume")
        if self.path is not None and not self.path.startswith("/"):
            raise ValueError(f"path must be absolute, got {self.path!r}")
        if self.device == "cdrom" and not self.readonly:
            raise ValueError("a cdrom is always readonly: set readonly: true")
        return self


class NicSpec(WireModel):
    """One network interface on a libvirt network or an existing host bridge."""

    network: XmlText | None = None
    bridge: str | None = None
    model: Literal["virtio", "e1000", "rtl8139"] = "virtio"
    mac: str | None = Field(default=None, pattern=MAC_PATTERN)

    @model_validator(mode="after")
    def _one_source(self) -> NicSpec:
        if (self.network is None) == (self.bridge is None):
            raise ValueError("set exactly one of network or bridge")
        return self


class DomainSpec(WireModel):
    """A fully resolved libvirt domain as the controller wants it on this host.

    Memory: `memory_mib` is the current (balloon) size; `max_memory_mib`, when set,
    is the boot-time maximum the balloon may grow to live and adds a virtio balloon.
    vCPUs: `vcpus` online, `max_vcpus` (when set) the hot-pluggable maximum.
    `labels` are stamped into the domain's <metadata> (corral VM name, generation,
    spec hash); `hooks` names the optional hook scripts this VM runs (nodeagent.hooks).
    """

    name: str = Field(pattern=NAME_PATTERN)
    uuid: str
    vcpus: int = Field(ge=1, le=512)
    max_vcpus: int | None = Field(default=None, ge=1, le=512)
    memory_mib: int = Field(ge=16)
    max_memory_mib: int | None = Field(default=None, ge=16)
    domain_type: Literal["qemu", "kvm"] = "qemu"
    machine: XmlText | None = None
    arch: Literal["x86_64"] = "x86_64"
    firmware: Literal["bios", "uefi"] = "bios"
    kernel: XmlText | None = None
    initrd: XmlText | None = None
    cmdline: XmlText | None = None
    boot_order: list[Literal["hd", "cdrom", "network"]] = Field(
        default_factory=lambda: ["hd"], min_length=1
    )
    disks: list[DiskSpec] = Field(default_factory=list)
    nics: list[NicSpec] = Field(default_factory=list)
    serial_log_path: XmlText | None = None
    graphics: Literal["none", "vnc", "spice"] = "none"
    ha: bool = False
    ha_priority: int = Field(default=50, ge=0, le=100)
    labels: dict[XmlText, XmlText] = Field(default_factory=dict)
    hooks: list[str] = Field(default_factory=list)
    description: XmlText | None = None

    @field_validator("uuid")
    @classmethod
    def _uuid(cls, value: str) -> str:
        try:
            return str(uuidlib.UUID(value))
        except ValueError as exc:
            raise ValueError(f"not a UUID: {value!r}") from exc

    @field_validator("kernel", "initrd", "serial_log_path")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"must be an absolute path, got {value!r}")
        return value

    @field_validator("description", "cmdline")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("hooks")
    @classmethod
    def _hook_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                raise ValueError(f"hook names are [A-Za-z0-9_.-]+, got {name!r}")
        return sorted(set(value))

    @field_validator("boot_order")
    @classmethod
    def _unique_boot(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"boot devices must be unique, got {value}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DomainSpec:
        if (self.initrd or self.cmdline) and not self.kernel:
            raise ValueError("initrd and cmdline need a kernel (direct kernel boot)")
        if self.max_vcpus is not None:
            if self.max_vcpus < self.vcpus:
                raise ValueError("max_vcpus must be >= vcpus")
            if self.max_vcpus == self.vcpus:
                self.max_vcpus = None
        if self.max_memory_mib is not None and self.max_memory_mib < self.memory_mib:
            raise ValueError("max_memory_mib must be >= memory_mib")
        targets = [disk.target for disk in self.disks]
        if len(set(targets)) != len(targets):
            raise ValueError(f"disk targets must be unique, got {targets}")
        return self


class GuestInterface(WireModel):
    """One network interface as the guest (agent) or the host (lease, ARP) sees it."""

    name: str
    mac: str | None = None
    addresses: list[str] = Field(default_factory=list)
    """Addresses with their prefix length, e.g. 10.0.0.5/24."""


class GuestFilesystem(WireModel):
    """One mounted filesystem reported by the QEMU guest agent (bytes)."""

    mountpoint: str
    name: str | None = None
    type: str | None = None
    total_bytes: int | None = None
    used_bytes: int | None = None


class GuestInfo(WireModel):
    """What is known from inside a running guest, and where it came from.

    `source` is `agent` (QEMU guest agent: addresses, hostname, OS, filesystems),
    `lease` (the libvirt network's DHCP lease) or `arp` (the host's ARP table);
    lease and ARP know addresses only. `at` is the unix time of the read.
    """

    source: Literal["agent", "lease", "arp"]
    at: float
    interfaces: list[GuestInterface] = Field(default_factory=list)
    hostname: str | None = None
    os_id: str | None = None
    os_name: str | None = None
    os_version: str | None = None
    filesystems: list[GuestFilesystem] = Field(default_factory=list)

    def ips(self) -> list[str]:
        """Return every address without its prefix, in interface order, loopback left out."""
        found: list[str] = []
        for iface in self.interfaces:
            for address in iface.addresses:
                ip = address.split("/", 1)[0]
                if ip not in found and not ipaddress.ip_address(ip).is_loopback:
                    found.append(ip)
        return found


class DomainState(WireModel):
    """A domain as observed on this host; `spec` is persistent, `live` the running config.

    `ips` and `guest` are set for running domains whose addresses are known (see
    nodeagent.guestinfo); they stay empty otherwise.
    """

    name: str
    uuid: str
    state: DomainStateName
    reason: str
    persistent: bool
    autostart: bool
    ha: bool
    spec: DomainSpec | None = None
    live: DomainSpec | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    migration: MigrationJob | None = None
    ips: list[str] = Field(default_factory=list)
    guest: GuestInfo | None = None
    snapshots: list[SnapshotState] = Field(default_factory=list)
    """The domain's snapshots, oldest first (empty for agents that do not report them)."""


class StopRequest(WireModel):
    """Graceful shutdown wait before falling back to destroy."""

    timeout_s: float = Field(default=60.0, ge=0, le=3600)


class BalloonRequest(WireModel):
    """A new balloon target for a running domain (MiB of memory the guest may use)."""

    target_mib: int = Field(ge=16)
