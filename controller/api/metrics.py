"""Prometheus metrics: reconcile passes and actions via a hook, fleet state read at scrape.

The loop is not sprinkled with metric calls: `ControllerMetrics.observe_pass` is the
one hook, handed to `Controller.run(stop, on_pass)`; a PassResult already carries
the pass duration, the plan and every action's outcome (type, result, time spent
in the agent call including retries). Object readiness, VM phases and host
reachability are read from the store when Prometheus scrapes, so they are right
whichever controller replica did the work.
"""

from __future__ import annotations

import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from controller.loop import PassResult
from controller.store import Store
from schemas.meta import ConditionType

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

PASS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
PLAN_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


class PassObserver(Protocol):
    """What the reconcile loop calls after every pass (Controller.run's on_pass)."""

    def observe_pass(self, result: PassResult) -> None: ...


class FleetCollector(Collector):
    """Reads objects by kind and readiness, VMs by phase and hosts up from the store.

    Reading every object costs about a second per 10,000 objects, so a reading is
    reused for `min_interval_s`: several scrapers (or a fast one) cost no more.
    """

    def __init__(
        self,
        store: Store,
        min_interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.min_interval_s = min_interval_s
        self.clock = clock
        self._last: tuple[float, list[Metric]] | None = None
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            now = self.clock()
            if self._last is None or now - self._last[0] >= self.min_interval_s:
                self._last = (now, list(self._read()))
            metrics = self._last[1]
        yield from metrics

    def _read(self) -> Iterator[Metric]:
        objects = GaugeMetricFamily(
            "corral_objects",
            "Desired objects by kind and Ready condition",
            labels=["kind", "ready"],
        )
        phases = GaugeMetricFamily("corral_vms", "Virtual machines by phase", labels=["phase"])
        hosts = GaugeMetricFamily(
            "corral_hosts", "Observed hosts by agent reachability", labels=["state"]
        )
        by_ready: Tally[tuple[str, str]] = Tally()
        by_phase: Tally[str] = Tally()
        for stored in self.store.list().items:
            status = stored.obj.status
            ready = status.condition(ConditionType.READY.value) if status else None
            by_ready[(stored.kind, ready.status.value if ready else "Unknown")] += 1
            if stored.kind == "VirtualMachine":
                phase = getattr(status, "phase", None)
                by_phase[phase.value if phase is not None else "Pending"] += 1
        for (kind, ready), count in sorted(by_ready.items()):
            objects.add_metric([kind, ready], count)
        for phase, count in sorted(by_phase.items()):
            phases.add_metric([phase], count)
        observed = self.store.list_observed()
        up = sum(1 for h in observed if h.reachable)
        hosts.add_metric(["up"], up)
        hosts.add_metric(["down"], len(observed) - up)
        yield objects
        yield phases
        yield hosts


class ControllerMetrics:
    """The metrics of one API process (and of the loop when it runs beside it)."""

    def __init__(self, store: Store | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.pass_seconds = Histogram(
            "corral_reconcile_pass_seconds",
            "Duration of reconcile passes",
            buckets=PASS_BUCKETS,
            registry=r,
        )
        self.passes = Counter(
            "corral_reconcile_passes", "Reconcile passes by outcome", ["outcome"], registry=r
        )
        self.plan_actions = Histogram(
            "corral_plan_actions", "Actions per computed plan", buckets=PLAN_BUCKETS, registry=r
        )
        self.actions = Counter(
            "corral_actions",
            "Executed actions by type and outcome",
            ["type", "outcome"],
            registry=r,
        )
        self.agent_call_seconds = Histogram(
            "corral_agent_call_seconds",
            "Time spent in the agent call of an action, retries included",
            ["type"],
            buckets=CALL_BUCKETS,
            registry=r,
        )
        self.api_requests = Counter(
            "corral_api_requests",
            "API requests by method, route and status",
            ["method", "route", "code"],
            registry=r,
        )
        self.api_seconds = Histogram(
            "corral_api_request_seconds", "API request duration", ["method", "route"], registry=r
        )
        if store is not None:
            r.register(FleetCollector(store))

    def observe_pass(self, result: PassResult) -> None:
        """Record one reconcile pass: its duration, plan size and every action's outcome."""
        self.pass_seconds.observe(result.elapsed_s)
        self.plan_actions.observe(len(result.plan.actions))
        if result.failed:
            outcome = "failed"
        elif result.converged:
            outcome = "converged"
        else:
            outcome = "progressing"
        self.passes.labels(outcome).inc()
        for item in result.outcomes:
            kind = item.action.type.value
            state = "skipped" if item.skipped else ("ok" if item.ok else "failed")
            self.actions.labels(kind, state).inc()
            if not item.skipped:
                self.agent_call_seconds.labels(kind).observe(item.elapsed_s)

    def observe_request(self, method: str, route: str, code: int, seconds: float) -> None:
        """Record one API request."""
        self.api_requests.labels(method, route, str(code)).inc()
        self.api_seconds.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        """Return the exposition text."""
        return generate_latest(self.registry)
