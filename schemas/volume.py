"""Volume: a disk image in a pool: empty, a thin clone of another volume, or an import."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from schemas.meta import ByteQuantity, CorralModel, Name, ObjectStatus, Resource


class VolumeFormat(StrEnum):
    QCOW2 = "qcow2"
    RAW = "raw"


class VolumeSource(CorralModel):
    """Initial content: a thin clone of `volume` (qcow2 backing file) or a copy of `path`."""

    volume: Name | None = None
    path: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> VolumeSource:
        if bool(self.volume) == bool(self.path):
            raise ValueError("set exactly one of source.volume (thin clone) or source.path")
        return self


class VolumeSpec(CorralModel):
    """Size only grows: a smaller size than the observed one is refused, never applied."""

    pool: Name
    size: ByteQuantity = Field(description='Virtual size, e.g. "20Gi"')
    format: VolumeFormat = VolumeFormat.QCOW2
    source: VolumeSource | None = None

    @model_validator(mode="after")
    def _rules(self) -> VolumeSpec:
        if self.size <= 0:
            raise ValueError("size must be greater than zero")
        if self.source and self.source.volume and self.format is not VolumeFormat.QCOW2:
            raise ValueError("a thin clone (source.volume) must have format qcow2")
        return self


class VolumeStatus(ObjectStatus):
    capacity: ByteQuantity | None = None
    allocation: ByteQuantity | None = None
    path: str | None = None
    host: str | None = None
    backing_path: str | None = None


class Volume(Resource[VolumeSpec, VolumeStatus]):
    kind: Literal["Volume"] = "Volume"
