"""Runs a plan's actions through the agents: one action, one agent verb, one outcome.

No decisions here: the plan says what and in which order. The executor runs waves
in order and the actions of a wave concurrently (bounded): a wave's verbs for one host
go in one batch request, which the agent runs concurrently and answers verb by verb.
It retries transient failures with backoff, skips the later actions of an object whose
earlier action failed, and reports every outcome as it happens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from pydantic import BaseModel

from agentapi import (
    MAX_BATCH_CALLS,
    VERBS,
    DomainSpec,
    MigrateRequest,
    NetworkSpec,
    PoolSpec,
    SnapshotSpec,
    StopRequest,
    VolumeSpec,
)
from controller.agents import AgentClient, AgentClientError
from controller.agentverbs import Call, call
from controller.fencing import FenceError, fence_host
from controller.plan.model import Action, ActionType, Plan
from controller.plan.payload import payload_model
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


def verb_for(action: Action) -> Call:
    """Return the agent call that carries out `action`."""
    name, payload, params = action.target[1], action.payload, action.params
    match action.type:
        case ActionType.DEFINE_NETWORK:
            network = payload_model(payload, NetworkSpec)
            return call(VERBS.ensure_network_defined, network, name=network.name)
        case ActionType.START_NETWORK:
            return call(VERBS.ensure_network_active, name=params.get("network", name))
        case ActionType.DELETE_NETWORK:
            return call(VERBS.ensure_network_undefined, name=params.get("network", name))
        case ActionType.DEFINE_POOL:
            pool = payload_model(payload, PoolSpec)
            return call(VERBS.ensure_pool, pool, name=pool.name)
        case ActionType.DELETE_POOL:
            return call(VERBS.ensure_pool_undefined, name=params.get("pool", name))
        case ActionType.CREATE_VOLUME | ActionType.RESIZE_VOLUME:
            volume = payload_model(payload, VolumeSpec)
            return call(VERBS.ensure_volume, volume, pool=params["pool"], vol=volume.name)
        case ActionType.DELETE_VOLUME:
            vol = params.get("volume", name)
            return call(VERBS.ensure_volume_deleted, pool=params["pool"], vol=vol)
        case ActionType.DEFINE_VM:
            domain = payload_model(payload, DomainSpec)
            return call(VERBS.ensure_domain_defined, domain, name=domain.name)
        case ActionType.START_VM:
            return call(VERBS.ensure_running, name=name)
        case ActionType.STOP_VM:
            stop = StopRequest(timeout_s=float(payload.get("timeout_s", 60.0)))
            return call(VERBS.ensure_stopped, stop, name=name, wait_s=stop.timeout_s)
        case ActionType.DESTROY_VM:
            return call(VERBS.ensure_destroyed, name=name)
        case ActionType.UNDEFINE_VM:
            query = {"force": "true"} if payload.get("force") else None
            return call(VERBS.ensure_undefined, name=name, query=query)
        case ActionType.MIGRATE_VM:
            return call(VERBS.migrate, payload_model(payload, MigrateRequest), name=name)
        case ActionType.CANCEL_MIGRATION:
            return call(VERBS.cancel_migration, name=name)
        case ActionType.CREATE_SNAPSHOT:
            snapshot = payload_model(payload, SnapshotSpec) if payload else SnapshotSpec()
            snap = params.get("snapshot", name)
            return call(VERBS.ensure_snapshot, snapshot, name=params["vm"], snap=snap)
        case ActionType.DELETE_SNAPSHOT:
            snap = params.get("snapshot", name)
            return call(VERBS.ensure_snapshot_deleted, name=params["vm"], snap=snap)
    raise ValueError(f"{action.type} is not an agent call")


Item = tuple[int, Action]
"""An action and its index in the plan."""


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
                runnable: list[Item] = []
                for index, action in group:
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
                for done in pool.map(self._run_calls, calls_of_wave(runnable)):
                    for outcome in done:
                        outcomes[outcome.index] = outcome
                        if not outcome.ok:
                            failed_targets.add(outcome.action.target)
                        if on_outcome:
                            on_outcome(outcome)
        return [outcomes[i] for i in range(len(plan.actions))]

    def _run_calls(self, items: list[Item]) -> list[Outcome]:
        """Run actions bound for one host in one call; retry those that failed transiently."""
        start = time.monotonic()
        done: list[Outcome] = []
        pending, attempt = items, 0
        while pending:
            attempt += 1
            retry: list[Item] = []
            for (index, action), answer in zip(pending, self._answers(pending), strict=True):
                if not isinstance(answer, (AgentClientError, FenceError)):
                    dumped = (
                        answer.model_dump(mode="json") if isinstance(answer, BaseModel) else answer
                    )
                    done.append(
                        Outcome(
                            index,
                            action,
                            ok=True,
                            attempts=attempt,
                            elapsed_s=time.monotonic() - start,
                            result=dumped if isinstance(dumped, dict) else None,
                        )
                    )
                elif answer.retryable and attempt < self.attempts:
                    retry.append((index, action))
                else:
                    done.append(
                        Outcome(
                            index,
                            action,
                            ok=False,
                            error=str(answer),
                            attempts=attempt,
                            elapsed_s=time.monotonic() - start,
                        )
                    )
            if retry:
                self.sleep(self.backoff_s * 2 ** (attempt - 1))
            pending = retry
        return done

    def _answers(self, items: list[Item]) -> list[Any]:
        """Return each action's answer, or the error it failed with."""
        first = items[0][1]
        try:
            if first.type is ActionType.FENCE_HOST:
                host = first.host or first.target[1]
                return [{"fenced": fence_host(host, self.fencing_for(host))}]
            if first.host is None:
                raise ValueError(f"{first.type} for {first.ref} names no host")
            client = self.client_for(first.host)
            return client.batch([verb_for(action) for _, action in items])
        except (AgentClientError, FenceError) as exc:
            return [exc] * len(items)


def calls_of_wave(items: list[Item]) -> list[list[Item]]:
    """Split a wave's actions into agent calls: each host's actions together (at most
    MAX_BATCH_CALLS in one call); a fence alone."""
    by_host: dict[str | None, list[Item]] = {}
    calls: list[list[Item]] = []
    for item in items:
        if item[1].type is ActionType.FENCE_HOST:
            calls.append([item])
        else:
            by_host.setdefault(item[1].host, []).append(item)
    for host_items in by_host.values():
        for at in range(0, len(host_items), MAX_BATCH_CALLS):
            calls.append(host_items[at : at + MAX_BATCH_CALLS])
    return calls
