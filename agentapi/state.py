"""Wire models of a whole host: its observed state in one read, its health, its counters."""

from __future__ import annotations

from pydantic import Field

from agentapi.common import WireModel
from agentapi.domains import DomainState
from agentapi.lease import LeaseState
from agentapi.networks import NetworkState
from agentapi.storage import PoolState


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
