"""A small simulated fleet under the real Controller, and the invariants a fault must not break.

The store is real (SQLite here, PostgreSQL where a test says so), the agents are
controller.sim hosts behind the agent's HTTP contract; faults are injected at the
edge only: the transport (links cut, answers lost, verbs duplicated, stale reads, a
crash between two verbs), the database connection, the clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from agentapi import VERBS
from controller.agentpool import AgentPool
from controller.loop import Controller, PassResult, SourceSetting
from controller.sim import INSTANT, SimFleet, write_fleet
from controller.sources import DirectorySource
from controller.store import Store, StoreError, open_store

MAX_PASSES = 10


class ControllerKilled(BaseException):
    """The controller process dies here (not an Exception: nothing in it may catch it)."""


class Clock:
    """The controller's and store's wall clock, which a test may make jump."""

    def __init__(self) -> None:
        self.now = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def jump(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class KillSwitch(httpx.BaseTransport):
    """Forwards to a host's transport; once `budget` verbs were sent fleet-wide, the
    controller dies before its next request (a batch counts its verbs; one that would
    go over the budget is not sent)."""

    def __init__(self, inner: httpx.BaseTransport, budget: list[int]) -> None:
        self.inner = inner
        self.budget = budget

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "GET":
            verbs = verbs_in(request)
            if self.budget[0] < verbs:
                raise ControllerKilled("controller killed between two actions")
            self.budget[0] -= verbs
        return self.inner.handle_request(request)


def verbs_in(request: httpx.Request) -> int:
    """Return how many verbs a mutating request carries (a batch: its calls)."""
    if request.url.path == VERBS.batch.route:
        return len(json.loads(request.content)["calls"])
    return 1


@dataclass
class Report:
    """Faults injected and invariant violations found, for the printed summary."""

    faults: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def add(self, kind: str, n: int = 1) -> None:
        self.faults[kind] = self.faults.get(kind, 0) + n

    def print(self, name: str) -> None:
        faults = ", ".join(f"{k}: {v}" for k, v in sorted(self.faults.items())) or "none"
        print(f"\n[{name}] faults injected: {faults}; violations: {len(self.violations)}")
        for v in self.violations:
            print(f"  violation: {v}")


class FaultFleet:
    """`vms` VMs on a simulated fleet, a manifest directory and controllers over a store."""

    def __init__(self, root: Path, vms: int = 60, url: str | None = None) -> None:
        self.root = root
        self.manifests = root / "manifests"
        self.names = write_fleet(self.manifests, vms, vms_per_host=6)
        self.vms = vms
        self.fleet = SimFleet(self.names, latency=INSTANT)
        self.url = url or f"sqlite:///{root / 'corral.db'}"
        self.clock = Clock()
        self.kill_budget: list[int] | None = None
        self.stores: list[Store] = []
        self.report = Report()

    def transport_for(self, host: str) -> httpx.BaseTransport | None:
        inner = self.fleet.transport_for(host)
        if inner is None or self.kill_budget is None:
            return inner
        return KillSwitch(inner, self.kill_budget)

    def controller(self, **kw: object) -> Controller:
        """Return a new controller (a new process, as far as state goes) on the same store."""
        store = open_store(self.url, clock=self.clock)
        self.stores.append(store)
        source = DirectorySource(self.manifests, name="dir:fleet")
        return Controller(
            store,
            [SourceSetting(source, "dir", "fleet", prune=True)],
            AgentPool(transport_for=self.transport_for),
            clock=self.clock,
            resync_s=3600,
            max_parallel=4,
            **kw,  # type: ignore[arg-type]
        )

    def converge(self, ctl: Controller, on_pass: Callable[[int], None] | None = None) -> PassResult:
        """Run passes until one converges; a pass that fails on the store is retried."""
        last = None
        for i in range(MAX_PASSES):
            if on_pass:
                on_pass(i)
            try:
                last = ctl.reconcile()
            except StoreError as exc:
                self.report.add(f"pass failed on the store ({type(exc).__name__})")
                continue
            self.clock.jump(1)
            if last.converged:
                return last
        raise AssertionError(f"not converged in {MAX_PASSES} passes: {last and last.not_ready[:5]}")

    def check(self) -> Report:
        """Record every VM lost, running twice, defined twice, or started more than once."""
        running = self.fleet.running()
        defined = self.fleet.defined()
        starts = self.fleet.starts()
        for i in range(self.vms):
            vm = f"vm{i:05d}"
            hosts = running.get(vm, [])
            if not hosts:
                self.report.violations.append(f"{vm} lost: not running anywhere")
            elif len(hosts) > 1:
                self.report.violations.append(f"{vm} running on {hosts}")
            if len(defined.get(vm, [])) > 1:
                self.report.violations.append(f"{vm} defined on {defined[vm]}")
            if starts.get(vm, 0) > 1:
                self.report.violations.append(f"{vm} started {starts[vm]} times")
        return self.report

    def close(self) -> None:
        for store in self.stores:
            store.close()
