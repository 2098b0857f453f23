"""Wire models of storage pools and their volumes (bytes)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from agentapi.common import NAME_PATTERN, WireModel, XmlText


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
