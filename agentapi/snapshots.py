"""Wire models of domain snapshots."""

from __future__ import annotations

from pydantic import Field

from agentapi.common import WireModel, XmlText


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
