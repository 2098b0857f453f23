"""Runs a plan's actions through the agents: one action, one agent call, one outcome.

No decisions here: the plan says what and in which order. The executor runs waves
in order and the actions of a wave concurrently (bounded), retries transient
failures with backoff, skips the later actions of an object whose earlier action
failed, and reports every outcome as it happens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from controller.agents import AgentClient, AgentClientError
from controller.fencing import FenceError, fence_host
from controller.plan.model import Action, ActionType, Plan
from nodeagent.models import (
    DomainSpec,
    MigrateRequest,
    NetworkSpec,
    PoolSpec,
    SnapshotSpec,
    VolumeSpec,
)
from schemas.host import Fencing

ClientFor = Callable[[str], AgentClient]
"""Returns the agent client of a host name (raises AgentUnavailable when it can't)."""


@dataclass(frozen=True)
class Outcome:
    """How one action ended: ok, failed (with the error), or skipped (an earlier step failed)."""

    index: int
    action: Action
    ok: bool
    error: str | None = None
    skipped: bool = False
    attempts: int = 0
    elapsed_s: float = 0.0
    result: dict[str, Any] | None = None


def call_agent(client: AgentClient, action: Action) -> Any:
    """Make the one agent call that carries out `action`; return the agent's answer."""
    name, payload, params = action.target[1], action.payload, action.params
    match action.type:
        case ActionType.DEFINE_NETWORK:
            return client.ensure_network_defined(NetworkSpec.model_validate(payload))
        case ActionType.START_NETWORK:
            return client.ensure_network_active(params.get("network", name))
        case ActionType.DELETE_NETWORK:
            return client.ensure_network_undefined(params.get("network", name))
        case ActionType.DEFINE_POOL:
            return client.ensure_pool(PoolSpec.model_validate(payload))
        case ActionType.DELETE_POOL:
            return client.ensure_pool_undefined(params.get("pool", name))
        case ActionType.CREATE_VOLUME | ActionType.RESIZE_VOLUME:
            return client.ensure_volume(params["pool"], VolumeSpec.model_validate(payload))
        case ActionType.DELETE_VOLUME:
            return client.ensure_volume_deleted(params["pool"], params.get("volume", name))
        case ActionType.DEFINE_VM:
            return client.ensure_domain_defined(DomainSpec.model_validate(payload))
        case ActionType.START_VM:
            return client.ensure_running(name)
        case ActionType.STOP_VM:
            return client.ensure_stopped(name, float(payload.get("timeout_s", 60.0)))
        case ActionType.DESTROY_VM:
            return client.ensure_destroyed(name)
        case ActionType.UNDEFINE_VM:
            return client.ensure_undefined(name, force=bool(payload.get("force", False)))
        case ActionType.MIGRATE_VM:
            return client.migrate(name, MigrateRequest.model_validate(payload))
        case ActionType.CANCEL_MIGRATION:
            return client.cancel_migration(name)
        case ActionType.CREATE_SNAPSHOT:
            spec = SnapshotSpec.model_validate(payload) if payload else None
            return client.ensure_snapshot(params["vm"], params.get("snapshot", name), spec)
        case ActionType.DELETE_SNAPSHOT:
            return client.ensure_snapshot_deleted(params["vm"], params.get("snapshot", name))
    raise ValueError(f"{action.type} is not an agent call")


class Executor:
    """Runs plans; `fencing_for` returns a host's Fencing spec for FenceHost actions."""

    def __init__(
        self,
        client_for: ClientFor,
        *,
        fencing_for: Callable[[str], Fencing] | None = None,
        max_parallel: int = 8,
        attempts: int = 3,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client_for = client_for
        self.fencing_for = fencing_for or (lambda _host: Fencing())
        self.max_parallel = max_parallel
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.sleep = sleep

    def run(self, plan: Plan, on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
        """Run every action, wave by wave; return the outcomes in plan order."""
        outcomes: dict[int, Outcome] = {}
        failed_targets: set[tuple[str, str]] = set()
        indexed = sorted(enumerate(plan.actions), key=lambda item: item[1].wave)
        with ThreadPoolExecutor(max_workers=self.max_parallel) as pool:
            for _, group in groupby(indexed, key=lambda item: item[1].wave):
                wave = list(group)
                runnable = []
                for index, action in wave:
                    if action.target in failed_targets:
                        outcome = Outcome(
                            index,
                            action,
                            ok=False,
                            skipped=True,
                            error="skipped: an earlier step for it failed",
                        )
                        outcomes[index] = outcome
                        if on_outcome:
                            on_outcome(outcome)
                    else:
                        runnable.append((index, action))
                for outcome in pool.map(lambda item: self._run_one(*item), runnable):
                    outcomes[outcome.index] = outcome
                    if not outcome.ok:
                        failed_targets.add(outcome.action.target)
                    if on_outcome:
                        on_outcome(outcome)
        return [outcomes[i] for i in range(len(plan.actions))]

    def _run_one(self, index: int, action: Action) -> Outcome:
        start = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                result = self._perform(action)
            except (AgentClientError, FenceError) as exc:
                if exc.retryable and attempt < self.attempts:
                    self.sleep(self.backoff_s * 2 ** (attempt - 1))
                    continue
                return Outcome(
                    index,
                    action,
                    ok=False,
                    error=str(exc),
                    attempts=attempt,
                    elapsed_s=time.monotonic() - start,
                )
            dumped = result.model_dump(mode="json") if hasattr(result, "model_dump") else result
            return Outcome(
                index,
                action,
                ok=True,
                attempts=attempt,
                elapsed_s=time.monotonic() - start,
                result=dumped if isinstance(dumped, dict) else None,
            )

    def _perform(self, action: Action) -> Any:
        if action.type is ActionType.FENCE_HOST:
            host = action.host or action.target[1]
            return {"fenced": fence_host(host, self.fencing_for(host))}
        if action.host is None:
            raise ValueError(f"{action.type} for {action.ref} names no host")
        return call_agent(self.client_for(action.host), action)
