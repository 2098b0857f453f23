"""Wire models of the node-agent API (pydantic v2); importable without libvirt.

The controller sends fully resolved specs (no references left to other objects)
and reads back observed state in the same shapes: `DomainState.spec` is parsed
from the persistent domain XML and `DomainState.live` from the running one, so
desired and observed compare field by field (see `diff_domain_specs`).
Units are in the field names (`memory_mib`, `capacity_bytes`, `ttl_s`).
"""

from __future__ import annotations

import ipaddress
import re
import uuid as uuidlib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}$"
XML_TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]*$"
"""Text that may go into libvirt XML: no control characters XML 1.0 forbids."""
XmlText = Annotated[str, Field(pattern=XML_TEXT_PATTERN)]
"""A free-text field that is written into libvirt XML: refused as invalid_spec, naming
the field, rather than failing in libvirt's parser."""
MAC_PATTERN = r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$"
DISK_TARGET_PATTERN = r"^(vd|sd|hd)[a-z]{1,2}$"

DomainStateName = Literal[
    "running", "paused", "shutoff", "crashed", "pmsuspended", "blocked", "shutdown", "nostate"
]
ErrorType = Literal[
    "not_found",
    "conflict",
    "libvirt_error",
    "hook_failed",
    "invalid_spec",
    "unavailable",
    "unauthorized",
]


class WireModel(BaseModel):
    """Base of every wire model: unknown fields are refused, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class AgentError(WireModel):
    """The JSON body of every failed agent call."""

    type: ErrorType
    message: str
    retryable: bool = False
    libvirt_code: int | None = None
    field: str | None = None


# --- domains ---------------------------------------------------------------------------------


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


class MigrationJob(WireModel):
    """Progress of the last outgoing live migration of a domain (bytes, seconds)."""

    state: Literal["running", "completed", "failed", "cancelled"]
    destination_uri: str
    started_at: float
    elapsed_s: float
    data_total_bytes: int | None = None
    data_processed_bytes: int | None = None
    data_remaining_bytes: int | None = None
    downtime_ms: int | None = None
    error: AgentError | None = None


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


class ApplyResult(WireModel):
    """What an ensure-defined verb did: changed, fields applied live, fields needing a restart."""

    name: str
    changed: bool
    created: bool = False
    applied_live: list[str] = Field(default_factory=list)
    restart_required: list[str] = Field(default_factory=list)


class VerbResult(WireModel):
    """Outcome of an ensure verb: `changed` is false when the object already was as asked."""

    name: str
    changed: bool
    state: str | None = None
    message: str | None = None


# --- batches ---------------------------------------------------------------------------------

BATCHABLE_VERBS: tuple[tuple[str, str], ...] = (
    ("PUT", r"domains/[^/]+"),
    ("DELETE", r"domains/[^/]+"),
    ("POST", r"domains/[^/]+/ensure-(running|stopped|destroyed)"),
    ("PUT", r"domains/[^/]+/snapshots/[^/]+"),
    ("DELETE", r"domains/[^/]+/snapshots/[^/]+"),
    ("POST", r"domains/[^/]+/migrate"),
    ("DELETE", r"domains/[^/]+/migration"),
    ("PUT", r"networks/[^/]+"),
    ("POST", r"networks/[^/]+/ensure-(active|inactive)"),
    ("DELETE", r"networks/[^/]+"),
    ("PUT", r"pools/[^/]+"),
    ("DELETE", r"pools/[^/]+"),
    ("PUT", r"pools/[^/]+/volumes/[^/]+"),
    ("DELETE", r"pools/[^/]+/volumes/[^/]+"),
)
"""The verbs a batch may carry (method, path under /v1/): the idempotent ensure verbs a
plan's actions make. Reads, streams (events, volume content, consoles), the lease and
batches themselves are refused."""
_BATCHABLE = {
    method: re.compile("^(?:" + "|".join(p for m, p in BATCHABLE_VERBS if m == method) + ")$")
    for method in {m for m, _ in BATCHABLE_VERBS}
}
MAX_BATCH_CALLS = 256
"""Calls per batch; a plan wave rarely gives one host more than a few dozen."""


class BatchCall(WireModel):
    """One verb of a batch: as the request it would be alone, relative to /v1/."""

    method: Literal["PUT", "POST", "DELETE"]
    path: str = Field(max_length=512)
    """Percent-encoded path under /v1/, e.g. `domains/web-1/ensure-running`."""
    query: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    """The JSON body the verb takes alone (None: no body)."""

    @model_validator(mode="after")
    def _batchable(self) -> BatchCall:
        if not _BATCHABLE[self.method].match(self.path) or "/../" in f"/{self.path}/":
            raise ValueError(f"{self.method} {self.path} cannot be batched")
        return self


class BatchRequest(WireModel):
    """Verbs for one host, run concurrently; each answers as it would alone."""

    calls: list[BatchCall] = Field(min_length=1, max_length=MAX_BATCH_CALLS)


class BatchAnswer(WireModel):
    """One call's answer: its HTTP status and JSON body (an AgentError when it failed)."""

    status: int
    body: Any = None


class BatchResult(WireModel):
    """The answers of a batch, in the order of its calls."""

    answers: list[BatchAnswer]


class StopRequest(WireModel):
    """Graceful shutdown wait before falling back to destroy."""

    timeout_s: float = Field(default=60.0, ge=0, le=3600)


class MigrateRequest(WireModel):
    """Peer-to-peer live migration to another host's libvirtd."""

    destination_uri: str = Field(min_length=3)
    bandwidth_mibps: int | None = Field(default=None, ge=1)
    max_downtime_ms: int | None = Field(default=None, ge=1, le=60_000)
    timeout_s: float = Field(default=300.0, gt=0, le=86_400)
    copy_storage: bool = False
    auto_converge: bool = False


# --- networks --------------------------------------------------------------------------------


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


# --- storage ---------------------------------------------------------------------------------


class PoolSpec(WireModel):
    """A storage pool: a directory, an NFS export (netfs) or an LVM volume group (logical)."""

    name: str = Field(pattern=NAME_PATTERN)
    uuid: str | None = None
    type: Literal["dir", "netfs", "logical"]
    target_path: XmlText
    source_host: XmlText | None = None
    source_path: XmlText | None = None
    source_device: XmlText | None = None
    source_name: XmlText | None = None
    autostart: bool = True

    @model_validator(mode="after")
    def _type_rules(self) -> PoolSpec:
        if not self.target_path.startswith("/"):
            raise ValueError(f"target_path must be absolute, got {self.target_path!r}")
        if self.type == "netfs" and (self.source_host is None or self.source_path is None):
            raise ValueError("a netfs pool needs source_host and source_path")
        if self.type == "logical" and self.source_device is None and self.source_name is None:
            raise ValueError("a logical pool needs source_device (a PV) or source_name (a VG)")
        if self.type == "dir" and (self.source_host or self.source_path or self.source_device):
            raise ValueError("a dir pool takes no source")
        return self


class VolumeSpec(WireModel):
    """A volume: empty, or a thin qcow2 clone over a backing file (`backing_path`)."""

    name: str = Field(pattern=NAME_PATTERN)
    capacity_bytes: int = Field(ge=1)
    format: Literal["qcow2", "raw"] = "qcow2"
    backing_path: str | None = None
    backing_format: Literal["qcow2", "raw"] | None = None

    @model_validator(mode="after")
    def _backing(self) -> VolumeSpec:
        if self.backing_path is not None:
            if self.format != "qcow2":
                raise ValueError("a backing file needs format qcow2")
            if not self.backing_path.startswith("/"):
                raise ValueError(f"backing_path must be absolute, got {self.backing_path!r}")
            if self.backing_format is None:
                self.backing_format = "qcow2"
        elif self.backing_format is not None:
            raise ValueError("backing_format needs backing_path")
        return self


class VolumeState(WireModel):
    """A volume as observed (bytes)."""

    name: str
    path: str
    capacity_bytes: int
    allocation_bytes: int
    format: str | None = None
    backing_path: str | None = None
    backing_format: str | None = None


class VolumeApplyResult(WireModel):
    """What ensure_volume did: created, grown (resized) or nothing."""

    name: str
    changed: bool
    created: bool = False
    resized: bool = False
    volume: VolumeState


class PoolState(WireModel):
    """A storage pool as observed, with its volumes (bytes)."""

    name: str
    uuid: str
    active: bool
    persistent: bool
    autostart: bool
    capacity_bytes: int
    allocation_bytes: int
    available_bytes: int
    spec: PoolSpec | None = None
    volumes: list[VolumeState] = Field(default_factory=list)
    volumes_listed: bool = True
    """False when the reader asked to leave this pool's volumes out (a shared pool that
    another host reports): `volumes` is then empty whatever the pool holds."""


# --- snapshots -------------------------------------------------------------------------------


class SnapshotSpec(WireModel):
    """A domain snapshot that should exist (internal qcow2 snapshots).

    `memory`: None takes what the domain's state gives (a running domain's memory is
    saved with its disks); False asks for disks only, which QEMU's internal snapshots
    can take only of a stopped domain: refused (conflict) while the domain runs.
    """

    description: XmlText | None = Field(default=None, max_length=4096)
    memory: bool | None = None


class SnapshotState(WireModel):
    """A snapshot as observed; `domain_state` is the state the domain was in when taken.

    `memory` is True when the guest's memory was saved with it (taken while running);
    `size_bytes` is the saved memory state's size summed over the domain's qcow2 disks
    (0 for a disks-only snapshot; None when the images could not be read).
    """

    name: str
    domain: str
    description: str | None = None
    created_at: int
    domain_state: str
    parent: str | None = None
    current: bool
    memory: bool | None = None
    size_bytes: int | None = None


class BalloonRequest(WireModel):
    """A new balloon target for a running domain (MiB of memory the guest may use)."""

    target_mib: int = Field(ge=16)


# --- lease, events, host ---------------------------------------------------------------------


class FenceRecord(WireModel):
    """One HA domain this agent destroyed itself because its lease expired (unix time)."""

    vm: str
    at: float
    ok: bool
    message: str


class LeaseState(WireModel):
    """This host's fencing lease in etcd as the agent sees it (nodeagent.lease).

    `arbiter` is "none" when the agent runs without etcd (nothing fences). `held`: a
    keepalive was acknowledged less than TTL - margin ago; `expires_in_s` is the time
    left until the self-fence (< 0: past it). `term` is the highest controller term
    seen on a mutating call (calls under a lower one are refused).
    """

    held: bool
    granted: bool
    arbiter: Literal["etcd", "none"] = "none"
    lease_id: str | None = None
    ttl_s: float
    margin_s: float = 0.0
    expires_in_s: float | None = None
    error: str | None = None
    term: int = 0
    fenced: list[FenceRecord] = Field(default_factory=list)


class AgentEvent(WireModel):
    """One event of the agent's stream: libvirt lifecycle, fence or resync."""

    seq: int
    at: float
    kind: str
    object: Literal["domain", "network", "pool", "host"]
    name: str
    event: str
    detail: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class HostState(WireModel):
    """The whole observed state of a host in one read."""

    hostname: str
    agent_version: str
    libvirt_uri: str
    libvirt_version: str
    migration_uri: str | None = None
    arch: str
    cpu_model: str | None = None
    cpus: int
    memory_mib: int
    free_memory_mib: int
    domains: list[DomainState]
    networks: list[NetworkState]
    pools: list[PoolState]
    hooks: dict[str, list[str]]
    lease: LeaseState
    events_seq: int


class Health(WireModel):
    """Liveness of the agent and of its libvirt connection."""

    ok: bool
    libvirt_connected: bool
    agent_version: str


class DomainStats(WireModel):
    """Counters of one domain (None where the hypervisor does not report them)."""

    name: str
    state: str
    cpu_time_ns: int | None = None
    vcpus: int | None = None
    balloon_current_kib: int | None = None
    balloon_maximum_kib: int | None = None
    memory_rss_kib: int | None = None
    block: dict[str, dict[str, int]] = Field(default_factory=dict)
    net: dict[str, dict[str, int]] = Field(default_factory=dict)


class HostStats(WireModel):
    """Host counters and per-domain statistics (domstats)."""

    at: float
    cpus: int
    cpu_time_ns: dict[str, int] = Field(default_factory=dict)
    memory_total_kib: int | None = None
    memory_free_kib: int | None = None
    domains: list[DomainStats] = Field(default_factory=list)


# --- desired vs observed ---------------------------------------------------------------------

# Values libvirt fills in when the spec leaves them open: None in the desired spec
# means "whatever libvirt chose", so they are not drift.
_FILLED_BY_LIBVIRT = {"machine"}


def diff_domain_specs(desired: DomainSpec, observed: DomainSpec) -> list[str]:
    """Return the dotted field paths where `observed` differs from `desired`.

    A desired None for a value libvirt fills in (machine type, NIC MAC address)
    matches anything; everything else must be equal. Empty list: no drift.
    """
    want = desired.model_dump()
    have = observed.model_dump()
    changed: list[str] = []
    for key, value in want.items():
        if key in _FILLED_BY_LIBVIRT and value is None:
            continue
        if key == "nics":
            changed.extend(_diff_nics(value, have["nics"]))
        elif key == "max_vcpus":
            # None means "as many as vcpus": compare the effective maximum.
            if (value or want["vcpus"]) != (have["max_vcpus"] or have["vcpus"]):
                changed.append(key)
        elif value != have.get(key):
            changed.append(key)
    return changed


def _diff_nics(want: list[dict[str, Any]], have: list[dict[str, Any]]) -> list[str]:
    if len(want) != len(have):
        return ["nics"]
    changed = []
    for index, (w, h) in enumerate(zip(want, have, strict=True)):
        for key, value in w.items():
            if key == "mac" and value is None:
                continue
            if value != h.get(key):
                changed.append(f"nics.{index}.{key}")
    return changed
