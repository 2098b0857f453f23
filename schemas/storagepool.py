"""StoragePool: where volumes live: a directory, an NFS export, an LVM volume group."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from schemas.meta import ByteQuantity, CorralModel, LabelSelector, ObjectStatus, Resource, quote


class PoolType(StrEnum):
    DIR = "dir"
    NETFS = "netfs"
    LOGICAL = "logical"
    ISCSI = "iscsi"


class PoolSource(CorralModel):
    """Where the pool's storage comes from (NFS server and export, LVM devices, iSCSI target)."""

    host: str | None = None
    path: str | None = None
    devices: list[str] = Field(default_factory=list)
    volume_group: str | None = None
    iqn: str | None = None


class StoragePoolSpec(CorralModel):
    """A libvirt storage pool. `shared: true` means every selected host sees the same volumes."""

    type: PoolType
    path: str = Field(min_length=2, description="Target path on the host")
    shared: bool = False
    source: PoolSource | None = None
    host_selector: LabelSelector = Field(default_factory=LabelSelector)

    @model_validator(mode="after")
    def _type_rules(self) -> StoragePoolSpec:
        if not self.path.startswith("/"):
            raise ValueError(f"path must be absolute, got {quote(self.path)}")
        src = self.source
        if self.type is PoolType.NETFS and not (src and src.host and src.path):
            raise ValueError("type netfs needs source.host and source.path (the NFS export)")
        if self.type is PoolType.LOGICAL and not (src and (src.volume_group or src.devices)):
            raise ValueError("type logical needs source.volumeGroup or source.devices")
        if self.type is PoolType.ISCSI and not (src and src.host and src.iqn):
            raise ValueError("type iscsi needs source.host (portal) and source.iqn")
        if self.type in (PoolType.NETFS, PoolType.ISCSI) and not self.shared:
            raise ValueError(f"type {self.type.value} is network storage: set shared: true")
        return self


class StoragePoolStatus(ObjectStatus):
    capacity: ByteQuantity | None = None
    available: ByteQuantity | None = None
    hosts: list[str] = Field(default_factory=list)


class StoragePool(Resource[StoragePoolSpec, StoragePoolStatus]):
    kind: Literal["StoragePool"] = "StoragePool"
