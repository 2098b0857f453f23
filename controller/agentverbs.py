"""The agent's ensure verbs as data: what one call sends and what it answers.

A `Verb` is made once and then either sent alone (`AgentClient.perform`) or with other
verbs for the same host in one request (`AgentClient.batch`); both send the same method,
path and body, so a verb means the same either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from agentapi import (
    ApplyResult,
    BatchCall,
    DomainSpec,
    MigrateRequest,
    MigrationJob,
    NetworkSpec,
    PoolSpec,
    SnapshotSpec,
    StopRequest,
    VerbResult,
    VolumeApplyResult,
    VolumeSpec,
)

A = TypeVar("A", bound=BaseModel)


def agent_path(*parts: str) -> str:
    """Return the percent-encoded path under /v1/ of `parts`."""
    return "/".join(quote(part, safe="") for part in parts)


@dataclass(frozen=True)
class Verb(Generic[A]):
    """One agent call: method, path under /v1/, body, query, and the model of its answer.

    `wait_s` is how long the verb itself may take beyond a call's usual timeout (a
    graceful stop waits for the guest).
    """

    method: str
    path: str
    answer: type[A]
    body: BaseModel | None = None
    params: dict[str, str] = field(default_factory=dict)
    vm: str | None = None
    wait_s: float = 0.0

    def batch_call(self) -> BatchCall:
        """Return this verb as one call of a batch."""
        return BatchCall.model_construct(
            method=self.method,
            path=self.path,
            query=self.params,
            body=None if self.body is None else self.body.model_dump(mode="json"),
        )


def define_domain(spec: DomainSpec) -> Verb[ApplyResult]:
    """Define or update the domain as `spec`."""
    return Verb("PUT", agent_path("domains", spec.name), ApplyResult, body=spec, vm=spec.name)


def ensure_running(name: str) -> Verb[VerbResult]:
    """Start (or resume) the domain."""
    return Verb("POST", agent_path("domains", name, "ensure-running"), VerbResult, vm=name)


def ensure_stopped(name: str, timeout_s: float = 60.0) -> Verb[VerbResult]:
    """Shut the domain down gracefully, destroying it after `timeout_s`."""
    path = agent_path("domains", name, "ensure-stopped")
    body = StopRequest(timeout_s=timeout_s)
    return Verb("POST", path, VerbResult, body=body, vm=name, wait_s=timeout_s)


def ensure_destroyed(name: str) -> Verb[VerbResult]:
    """Power the domain off."""
    return Verb("POST", agent_path("domains", name, "ensure-destroyed"), VerbResult, vm=name)


def undefine_domain(name: str, force: bool = False) -> Verb[VerbResult]:
    """Remove the domain (force: destroy it first if it runs)."""
    params = {"force": "true"} if force else {}
    return Verb("DELETE", agent_path("domains", name), VerbResult, params=params, vm=name)


def ensure_snapshot(name: str, snap: str, spec: SnapshotSpec | None = None) -> Verb[VerbResult]:
    """Make the snapshot exist."""
    path = agent_path("domains", name, "snapshots", snap)
    return Verb("PUT", path, VerbResult, body=spec or SnapshotSpec(), vm=name)


def delete_snapshot(name: str, snap: str) -> Verb[VerbResult]:
    """Make the snapshot absent."""
    return Verb("DELETE", agent_path("domains", name, "snapshots", snap), VerbResult, vm=name)


def migrate(name: str, request: MigrateRequest) -> Verb[MigrationJob]:
    """Start a live migration job (the agent answers at once)."""
    path = agent_path("domains", name, "migrate")
    return Verb("POST", path, MigrationJob, body=request, vm=name)


def cancel_migration(name: str) -> Verb[VerbResult]:
    """Abort the running migration."""
    return Verb("DELETE", agent_path("domains", name, "migration"), VerbResult, vm=name)


def define_network(spec: NetworkSpec) -> Verb[ApplyResult]:
    """Define or update the network."""
    return Verb("PUT", agent_path("networks", spec.name), ApplyResult, body=spec)


def ensure_network_active(name: str) -> Verb[VerbResult]:
    """Start the network."""
    return Verb("POST", agent_path("networks", name, "ensure-active"), VerbResult)


def ensure_network_inactive(name: str) -> Verb[VerbResult]:
    """Stop the network."""
    return Verb("POST", agent_path("networks", name, "ensure-inactive"), VerbResult)


def undefine_network(name: str) -> Verb[VerbResult]:
    """Remove the network."""
    return Verb("DELETE", agent_path("networks", name), VerbResult)


def define_pool(spec: PoolSpec) -> Verb[ApplyResult]:
    """Define, build and start the pool."""
    return Verb("PUT", agent_path("pools", spec.name), ApplyResult, body=spec)


def undefine_pool(name: str) -> Verb[VerbResult]:
    """Stop and remove the pool (data stays)."""
    return Verb("DELETE", agent_path("pools", name), VerbResult)


def ensure_volume(pool: str, spec: VolumeSpec) -> Verb[VolumeApplyResult]:
    """Create, thin-clone or grow the volume."""
    path = agent_path("pools", pool, "volumes", spec.name)
    return Verb("PUT", path, VolumeApplyResult, body=spec)


def delete_volume(pool: str, name: str) -> Verb[VerbResult]:
    """Delete the volume."""
    return Verb("DELETE", agent_path("pools", pool, "volumes", name), VerbResult)
