"""Snapshot: a VM snapshot that should exist (with or without memory state)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas.meta import ByteQuantity, CorralModel, Name, ObjectStatus, Resource


class SnapshotSpec(CorralModel):
    vm: Name
    description: str | None = Field(
        default=None,
        max_length=1024,
        # It becomes libvirt XML text: no control characters XML 1.0 forbids.
        pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]*$",
    )
    memory: bool = False


class SnapshotStatus(ObjectStatus):
    created: datetime | None = None
    size: ByteQuantity | None = None
    host: str | None = None


class Snapshot(Resource[SnapshotSpec, SnapshotStatus]):
    kind: Literal["Snapshot"] = "Snapshot"
