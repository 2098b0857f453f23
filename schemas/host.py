"""Host: a libvirt host run by a Corral node agent."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from schemas.meta import ByteQuantity, CorralModel, MilliCPU, ObjectStatus, Resource


class FenceMethod(StrEnum):
    """How a failed host is made safe before its HA VMs are restarted elsewhere."""

    LEASE = "lease"  # the agent self-fences when its lease expires (the default)
    IPMI = "ipmi"  # power off through the BMC (ipmitool), confirmed by power status
    REDFISH = "redfish"  # power off through a Redfish BMC
    COMMAND = "command"  # a fence-agent command (fence_* style), exit 0 = host is off


class Virtualization(StrEnum):
    """The libvirt domain type the host runs guests with."""

    KVM = "kvm"  # hardware virtualization
    QEMU = "qemu"  # TCG emulation: slow, for hosts without usable KVM (nested labs, CI)


class Reserved(CorralModel):
    """Resources kept back for the host itself; never given to VMs."""

    cpu: MilliCPU = 0
    memory: ByteQuantity = 0


class Fencing(CorralModel):
    """Fencing configuration; a power fence, when set, must succeed before any restart."""

    method: FenceMethod = FenceMethod.LEASE
    address: str | None = None
    username: str | None = None
    password_file: str | None = None
    command: list[str] = Field(default_factory=list)
    lease_ttl_s: int = Field(default=10, ge=2, le=600)

    @model_validator(mode="after")
    def _power_fence_needs_target(self) -> Fencing:
        if self.method in (FenceMethod.IPMI, FenceMethod.REDFISH) and not self.address:
            raise ValueError(f"fencing method {self.method.value} needs an address (the BMC)")
        if self.method is FenceMethod.COMMAND and not self.command:
            raise ValueError("fencing method command needs a command (argv list)")
        return self


class HostSpec(CorralModel):
    """Where the host's agent listens, whether it takes VMs, what it keeps back."""

    address: str = Field(min_length=1, description="Agent URL, e.g. https://10.0.0.5:8443")
    maintenance: bool = False
    virtualization: Virtualization = Virtualization.KVM
    reserved: Reserved = Field(default_factory=Reserved)
    fencing: Fencing = Field(default_factory=Fencing)


class HostPhase(StrEnum):
    PENDING = "Pending"
    UP = "Up"
    PREPARING_FOR_MAINTENANCE = "PreparingForMaintenance"
    MAINTENANCE = "Maintenance"
    NON_RESPONSIVE = "NonResponsive"
    FENCED = "Fenced"


class HostCapacity(CorralModel):
    cpu: MilliCPU = 0
    memory: ByteQuantity = 0


class HostHAAdmission(CorralModel):
    """What losing this host would do to its HA VMs (HA admission control, N+1).

    Written by the controller from a simulated loss: every HA VM of the host restarted
    through the scheduler on the capacity the other hosts that are up have left.
    """

    tolerated: bool = Field(
        default=True, description="Every HA VM of the host would restart on another host"
    )
    restarts: int = Field(default=0, description="HA VMs that would restart elsewhere")
    stranded: list[str] = Field(
        default_factory=list, description="HA VMs that would find no host, in restart order"
    )
    lost: int = Field(default=0, description="VMs without HA that would stay down with the host")
    message: str = ""


class HostStatus(ObjectStatus):
    """What the agent reports and what the controller concluded about the host."""

    phase: HostPhase = HostPhase.PENDING
    capacity: HostCapacity | None = None
    allocatable: HostCapacity | None = None
    allocated: HostCapacity | None = None
    vms: int = 0
    agent_version: str | None = None
    last_seen: datetime | None = None
    lease_expires: datetime | None = None
    hooks: dict[str, list[str]] = Field(default_factory=dict)
    ha_admission: HostHAAdmission | None = Field(
        default=None, description="What losing this host would do; none while it is not up"
    )


class Host(Resource[HostSpec, HostStatus]):
    kind: Literal["Host"] = "Host"
