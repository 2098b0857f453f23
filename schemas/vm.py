"""VirtualMachine: CPU, memory, disks, NICs, boot, run strategy, HA, placement, migration."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from schemas.meta import (
    ByteQuantity,
    CorralModel,
    CPUCount,
    LabelSelector,
    Name,
    ObjectStatus,
    Resource,
    quote,
)


class RunStrategy(StrEnum):
    """When the controller starts and stops the VM (KubeVirt's runStrategy)."""

    ALWAYS = "Always"  # keep it running, anywhere
    RERUN_ON_FAILURE = "RerunOnFailure"  # restart after a crash, not after a clean shutdown
    MANUAL = "Manual"  # start and stop only on request
    HALTED = "Halted"  # keep it stopped


class Firmware(StrEnum):
    BIOS = "bios"
    UEFI = "uefi"


class BootDevice(StrEnum):
    HD = "hd"
    CDROM = "cdrom"
    NETWORK = "network"


class DiskBus(StrEnum):
    VIRTIO = "virtio"
    SCSI = "scsi"
    SATA = "sata"
    IDE = "ide"


class DiskCache(StrEnum):
    NONE = "none"
    WRITEBACK = "writeback"
    WRITETHROUGH = "writethrough"
    DIRECTSYNC = "directsync"
    UNSAFE = "unsafe"


class NicModel(StrEnum):
    VIRTIO = "virtio"
    E1000 = "e1000"
    RTL8139 = "rtl8139"


class Graphics(StrEnum):
    NONE = "none"
    VNC = "vnc"
    SPICE = "spice"


class RestartPolicy(StrEnum):
    """Whether the controller may restart a running VM to apply a change that needs it."""

    NEVER = "Never"  # apply at the next start; report RestartRequired meanwhile
    ALLOWED = "Allowed"  # shut down gracefully and start again with the new definition


class Boot(CorralModel):
    """Direct kernel boot (kernel + initrd + cmdline) or a boot device order."""

    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None
    order: list[BootDevice] = Field(default_factory=list)

    @model_validator(mode="after")
    def _kernel_rules(self) -> Boot:
        if (self.initrd or self.cmdline) and not self.kernel:
            raise ValueError("initrd and cmdline need a kernel (direct kernel boot)")
        for path in (self.kernel, self.initrd):
            if path is not None and not path.startswith("/"):
                raise ValueError(f"kernel and initrd paths must be absolute, got {quote(path)}")
        return self


class Disk(CorralModel):
    """A disk backed by a Volume, or a read-only CD-ROM image path on the host."""

    name: Name
    volume: Name | None = None
    cdrom: str | None = None
    bus: DiskBus = DiskBus.VIRTIO
    readonly: bool = False
    cache: DiskCache = DiskCache.NONE

    @model_validator(mode="after")
    def _one_backing(self) -> Disk:
        if bool(self.volume) == bool(self.cdrom):
            raise ValueError("set exactly one of volume or cdrom")
        if self.cdrom and not self.cdrom.startswith("/"):
            raise ValueError(f"cdrom must be an absolute path, got {quote(self.cdrom)}")
        return self


class Nic(CorralModel):
    name: Name
    network: Name
    model: NicModel = NicModel.VIRTIO
    mac: str | None = Field(default=None, pattern=r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")


class HighAvailability(CorralModel):
    """HA restarts elsewhere after a host failure; higher priority restarts first."""

    enabled: bool = False
    priority: int = Field(default=50, ge=0, le=100)


class Placement(CorralModel):
    """Where the VM may run: a host selector and/or a pinned host."""

    host_selector: LabelSelector = Field(default_factory=LabelSelector)
    host: Name | None = None


class MigrationPolicy(CorralModel):
    """How a running VM moves live between hosts."""

    allowed: bool = True
    bandwidth_mibps: int | None = Field(default=None, ge=1)
    max_downtime_ms: int = Field(default=300, ge=10, le=60_000)
    timeout_s: int = Field(default=300, ge=5, le=86_400)
    auto_converge: bool = True


class UpdatePolicy(CorralModel):
    restart: RestartPolicy = RestartPolicy.NEVER


class VirtualMachineFields(CorralModel):
    """The VM settings a Template can carry: everything optional, merged under the VM's own."""

    cpus: CPUCount | None = None
    max_cpus: CPUCount | None = None
    memory: ByteQuantity | None = None
    max_memory: ByteQuantity | None = None
    guaranteed_memory: ByteQuantity | None = None
    firmware: Firmware | None = None
    boot: Boot | None = None
    disks: list[Disk] = Field(default_factory=list)
    nics: list[Nic] = Field(default_factory=list)
    graphics: Graphics | None = None
    ha: HighAvailability | None = None
    placement: Placement | None = None
    migration: MigrationPolicy | None = None
    update_policy: UpdatePolicy | None = None
    hooks: list[Name] = Field(default_factory=list)
    description: str | None = Field(default=None, max_length=1024)

    @model_validator(mode="after")
    def _consistent(self) -> VirtualMachineFields:
        if self.cpus and self.max_cpus and self.max_cpus < self.cpus:
            raise ValueError(f"maxCpus ({self.max_cpus}) is below cpus ({self.cpus})")
        if self.memory and self.max_memory and self.max_memory < self.memory:
            raise ValueError("maxMemory is below memory")
        if self.memory and self.guaranteed_memory and self.guaranteed_memory > self.memory:
            raise ValueError("guaranteedMemory is above memory")
        for field, items in (("disks", self.disks), ("nics", self.nics)):
            seen: set[str] = set()
            for item in items:
                if item.name in seen:
                    raise ValueError(f"{field}: name {quote(item.name)} is used twice")
                seen.add(item.name)
        return self


MIN_MEMORY = 16 * 2**20


class VirtualMachineSpec(VirtualMachineFields):
    """Desired state of a VM; with a template, the template fills what the VM leaves out."""

    template: Name | None = None
    template_follow: bool = False
    """True: the VM takes its template's later changes; False: it keeps the template as it
    was when the VM was first planned (status.template), see schemas/template.py."""
    run_strategy: RunStrategy = RunStrategy.ALWAYS

    @model_validator(mode="after")
    def _needs_size(self) -> VirtualMachineSpec:
        if self.template is None:
            missing = [f for f in ("cpus", "memory") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"{' and '.join(missing)} must be set (no template to inherit)")
        if self.memory is not None and self.memory < MIN_MEMORY:
            raise ValueError(f"memory {self.memory} bytes is below the 16Mi minimum")
        return self


class VMPhase(StrEnum):
    PENDING = "Pending"  # not yet placed
    SCHEDULED = "Scheduled"  # placed, being defined
    STARTING = "Starting"
    RUNNING = "Running"
    MIGRATING = "Migrating"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    FAILED = "Failed"
    UNKNOWN = "Unknown"  # its host does not answer


class MigrationStatus(CorralModel):
    source: str
    target: str
    started: datetime
    state: str = "running"
    progress_percent: float | None = None
    attempt: int = 1


class HostVerdict(CorralModel):
    """Why the scheduler did or did not pick a host for this VM."""

    host: str
    fits: bool
    reason: str = ""
    score: float | None = None


class TemplatePin(CorralModel):
    """The template a VM was created from as it was then: name, generation and spec."""

    name: str
    generation: int | None = None
    spec: VirtualMachineFields


class VirtualMachineStatus(ObjectStatus):
    phase: VMPhase = VMPhase.PENDING
    host: str | None = None
    ips: list[str] = Field(default_factory=list)
    restart_required: list[str] = Field(default_factory=list)
    migration: MigrationStatus | None = None
    scheduling: list[HostVerdict] = Field(default_factory=list)
    last_started: datetime | None = None
    template: TemplatePin | None = None


class VirtualMachine(Resource[VirtualMachineSpec, VirtualMachineStatus]):
    kind: Literal["VirtualMachine"] = "VirtualMachine"
