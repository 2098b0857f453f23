"""Wire models of live migration: the request that starts a job and the job's progress."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agentapi.common import AgentError, WireModel


class MigrateRequest(WireModel):
    """Peer-to-peer live migration to another host's libvirtd."""

    destination_uri: str = Field(min_length=3)
    bandwidth_mibps: int | None = Field(default=None, ge=1)
    max_downtime_ms: int | None = Field(default=None, ge=1, le=60_000)
    timeout_s: float = Field(default=300.0, gt=0, le=86_400)
    copy_storage: bool = False
    auto_converge: bool = False


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
