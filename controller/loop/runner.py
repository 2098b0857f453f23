"""Running passes: the loop that repeats them until stopped, what wakes it early, and
how long it waits between passes.

A pass starts early when `trigger()` is called (a polled source moved, a host's lease
changed, an operator asked) or when the store's revision moves under another writer
(the REST API, `corral reconcile`). Triggers only wake the loop: every pass reads the
whole picture again, so a lost trigger costs at most one wait.
"""

from __future__ import annotations

import gc
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence

from controller.execute import Outcome
from controller.leasewatch import HostLeaseWatch
from controller.loop.result import PassResult
from controller.loop.sources import SourceSetting, poll_sources
from controller.plan import Plan
from controller.store import Store, StoreError

log = logging.getLogger(__name__)

RECONCILIATION_FAILED = "ReconciliationFailed"
"""An unexpected error ended the pass; it is logged and the pass is retried."""

ERROR_WAIT_S = 5.0
"""How long the runner waits after a pass raised (the store away, or a bug)."""


def store_revision(store: Store) -> int:
    """Return the store's revision, or -1 when the store does not answer."""
    try:
        return store.revision()
    except StoreError:
        return -1


def freeze_heap() -> None:
    """Collect garbage once, then move every surviving object out of the collector's view.

    After the first pass the heap holds the fleet: stored objects, parsed host states and
    the planner's memos, hundreds of thousands of objects that live as long as the process.
    A full collection traverses all of them (1-1.5 s at 10,000 VMs); frozen, it skips them.
    Frozen objects are still freed by reference counting when dropped.
    """
    gc.collect()
    gc.freeze()


LEASE_RETRY_S = 2.0
"""Seconds until the next pass after HA starts an agent refused for want of its etcd lease."""
LEASE_REFUSALS = ("lease_lapsed", "lease_not_held")


def _waits_for_lease(outcome: Outcome) -> bool:
    return any(reason in (outcome.error or "") for reason in LEASE_REFUSALS)


class Requeue:
    """Decides how long after a pass the next one runs.

    Cross-pass state: `failures`, the passes in a row whose actions failed. Owner: this
    requeue. Counted up by each such pass, reset to 0 by the first pass without one.
    """

    def __init__(self) -> None:
        self.failures = 0

    def after(
        self,
        first: Plan,
        outcomes: list[Outcome],
        after: Plan,
        *,
        busy_s: float,
        resync_s: float,
    ) -> float:
        """Return seconds until the next pass: after failures `min(60, 2**n)` (LEASE_RETRY_S
        when every failure is an agent waiting for its etcd lease); with work
        planned or left, `busy_s`; else `resync_s` jittered by ±10 %."""
        failed = [o for o in outcomes if not o.ok and not o.skipped]
        if failed and all(_waits_for_lease(o) for o in failed):
            # An agent refused an HA start because its etcd lease lapsed: it takes a new one
            # within a keepalive once etcd answers, so back off no further than this.
            return LEASE_RETRY_S
        if failed:
            self.failures += 1
            return min(60.0, 2.0**self.failures)
        self.failures = 0
        if first.actions or after.actions:
            return busy_s
        return resync_s * random.uniform(0.9, 1.1)


class Runner:
    """Repeats a pass until stopped, waking early on triggers.

    Cross-pass state: `wake`, set by `trigger()` from any thread and cleared as each pass
    starts (a trigger during a pass therefore cuts the wait after it short). Owner: this
    runner.
    """

    def __init__(
        self,
        reconcile: Callable[[], PassResult],
        store: Store,
        sources: Sequence[SourceSetting],
        lease_watch: HostLeaseWatch | None,
    ) -> None:
        self.reconcile = reconcile
        self.store = store
        self.sources = list(sources)
        self.lease_watch = lease_watch
        self.wake = threading.Event()

    def trigger(self) -> None:
        """Wake the loop now (a source changed, an agent event, an operator asked)."""
        self.wake.set()

    def run(
        self,
        stop: threading.Event,
        on_pass: Callable[[PassResult], None] | None = None,
    ) -> None:
        """Reconcile until `stop` is set; watch the hosts' etcd leases and poll sources on
        their own threads."""
        if self.lease_watch is not None:
            self.lease_watch.start()
        polled = [s for s in self.sources if s.poll_s]
        poller = threading.Thread(
            target=poll_sources,
            args=(polled, self.store, self.trigger, stop),
            name="source-poller",
            daemon=True,
        )
        if polled:
            poller.start()
        frozen = False
        try:
            while not stop.is_set():
                self.wake.clear()
                try:
                    result = self.reconcile()
                    delay = result.requeue_after_s
                    if not frozen:
                        freeze_heap()
                        frozen = True
                    if on_pass:
                        on_pass(result)
                    # Let the pass's plan go before the next pass builds its own: a busy
                    # pass's actions hold what it planned (10,000 domain specs at scale).
                    del result
                except StoreError as exc:
                    log.error("pass failed: the store is unavailable: %s", exc)
                    delay = ERROR_WAIT_S
                except Exception:
                    log.exception("%s: pass failed", RECONCILIATION_FAILED)
                    delay = ERROR_WAIT_S
                self.sleep(stop, delay)
        finally:
            if self.lease_watch is not None:
                self.lease_watch.stop()
            if poller.is_alive():
                poller.join(timeout=5)

    def sleep(self, stop: threading.Event, delay: float) -> None:
        """Wait `delay` seconds, or less when triggered, when another writer changed the
        store (the API, `corral reconcile`), or when the store answers again after it did
        not: any such change is a reason to look again (what happened on the hosts while
        the store was away does not show in its revision)."""
        seen = store_revision(self.store)
        away = False
        deadline = time.monotonic() + delay
        next_check = time.monotonic() + 1.0
        while not stop.is_set() and time.monotonic() < deadline:
            if self.wake.wait(min(0.2, max(0.0, deadline - time.monotonic()))):
                return
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + 1.0
                revision = store_revision(self.store)
                if revision > seen or (away and revision >= 0):
                    return
                away = revision < 0
