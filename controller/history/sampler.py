"""The history job: sample every host's agent statistics, roll up closed periods, prune.

Each step is idempotent: a repeated sample replaces the one at the same instant, a
roll-up recomputes its period from the samples and events, pruning deletes only what
is older than the retention and already rolled up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from agentapi import HostStats
from controller.agentpool import AgentPool
from controller.agents import AgentClientError
from controller.history.model import Period, Sample
from controller.history.rates import host_sample, vm_sample
from controller.history.rollup import PERIOD_LENGTH, closed_periods, retention_cutoff
from controller.history.warehouse import Warehouse
from controller.store import Store

log = logging.getLogger(__name__)
DEFAULT_RETENTION = timedelta(days=7)
DEFAULT_INTERVAL_S = 60.0
ROLLUP_BATCH = 24 * 7
"""Periods rolled up per read: a week of hours at most, so a long gap stays bounded."""


class Sampler:
    """Samples hosts through their agents into the warehouse; `now` comes from the caller."""

    def __init__(
        self,
        store: Store,
        pool: AgentPool,
        *,
        retention: timedelta = DEFAULT_RETENTION,
        warehouse: Warehouse | None = None,
    ) -> None:
        self.store = store
        self.pool = pool
        self.retention = retention
        self.warehouse = warehouse or Warehouse(store)
        self._last: dict[str, HostStats] = {}

    def sample(self, now: datetime) -> list[Sample]:
        """Read every host's statistics once and store a sample per host and VM; return them.

        An unreachable host gives no sample (its absence is the record); its counters
        are forgotten so that no rate spans the gap.
        """
        generations = {o.name: o.generation for o in self.store.list(kind="VirtualMachine").items}
        samples: list[Sample] = []
        for host in self.store.list(kind="Host").items:
            address = getattr(host.obj.spec, "address", None)
            if not address:
                continue
            try:
                stats = self.pool.client(host.name, address).get_stats()
            except AgentClientError as exc:
                log.info("history: %s not sampled: %s", host.name, exc)
                self._last.pop(host.name, None)
                continue
            prev = self._last.get(host.name)
            seconds = stats.at - prev.at if prev else 0.0
            before = {d.name: d for d in prev.domains} if prev else {}
            samples.append(host_sample(host.name, now, stats, prev, host.generation))
            for domain in stats.domains:
                samples.append(
                    vm_sample(
                        host.name,
                        now,
                        domain,
                        before.get(domain.name),
                        seconds,
                        generations.get(domain.name),
                    )
                )
            self._last[host.name] = stats
        self.warehouse.add_samples(samples)
        return samples

    def maintain(self, now: datetime) -> dict[str, int]:
        """Roll up every closed hour and day not yet rolled up, then prune; return counts."""
        done = {"hour": 0, "day": 0, "pruned": 0}
        oldest = self.warehouse.oldest_sample()
        for period in (Period.HOUR, Period.DAY):
            latest = self.warehouse.latest_rollup(period)
            since = latest + PERIOD_LENGTH[period] if latest else oldest
            if since is None:
                continue
            starts = closed_periods(since, now, period)
            for chunk in range(0, len(starts), ROLLUP_BATCH):
                self.warehouse.roll_up_many(period, starts[chunk : chunk + ROLLUP_BATCH])
            done[period.value] += len(starts)
        cutoff = retention_cutoff(now, self.retention)
        rolled = self.warehouse.latest_rollup(Period.HOUR)
        if rolled is not None:
            cutoff = min(cutoff, rolled + PERIOD_LENGTH[Period.HOUR])
            done["pruned"] = self.warehouse.prune_samples(cutoff)
        return done

    def run(
        self,
        stop: Callable[[], bool],
        clock: Callable[[], datetime],
        interval_s: float = DEFAULT_INTERVAL_S,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        """Sample and maintain every `interval_s` until `stop()`; errors are logged, not raised."""
        wait = sleep or time.sleep
        while not stop():
            try:
                now = clock()
                self.sample(now)
                self.maintain(now)
            except Exception:
                log.exception("history sampling failed; retrying next interval")
            wait(interval_s)


def start_sampling(
    store: Store, pool: AgentPool, stop: threading.Event, interval_s: float = DEFAULT_INTERVAL_S
) -> threading.Thread:
    """Start the history job on a daemon thread beside the loop; it ends when `stop` is set."""
    sampler = Sampler(store, pool)
    thread = threading.Thread(
        target=sampler.run,
        kwargs={
            "stop": stop.is_set,
            "clock": lambda: datetime.now(UTC),
            "interval_s": interval_s,
            "sleep": stop.wait,
        },
        name="corral-history",
        daemon=True,
    )
    thread.start()
    return thread
