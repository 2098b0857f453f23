"""Snapshot: a VM snapshot that should exist (with or without memory state)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas.meta import ByteQuantity, CorralModel, Name, ObjectStatus, Resource


class SnapshotSpec(CorralModel):
    vm: Name
    description: str | None = Field(default=None, max_length=1024)
    memory: bool = False


class SnapshotStatus(ObjectStatus):
    created: datetime | None = None
    size: ByteQuantity | None = None
    host: str | None = None


class Snapshot(Resource[SnapshotSpec, SnapshotStatus]):
    kind: Literal["Snapshot"] = "Snapshot"
