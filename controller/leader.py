"""Leader election among controller replicas sharing one store, with fencing tokens.

The lead is a lease kept in the store (controller.store.fencing): a replica claims it
when it is free or expired, renews it every `ttl_s / 3`, and loses it when a renewal
fails or finds another term. Each new holder gets the next epoch; the epoch is the
fencing token. While leading, the replica's Store refuses its own writes once the
epoch moved on (`Store.set_fencing_token`), and its lease renewals to the agents carry
the same epoch, which agents refuse once a newer one was seen. So a deposed leader
that wakes up late (a long GC pause, a frozen VM, a partition) can neither write
state nor keep agents' leases alive: the newer leader's view wins everywhere.

A replica that loses the lead stops its passes at once; its stop is not graceful,
and need not be: every step is idempotent and the next leader's first pass repairs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from controller.store import Store, StoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Leadership:
    """The term this replica holds: its fencing token and when its lease runs out
    (monotonic seconds of this process, counted from the moment the claim was sent)."""

    epoch: int
    valid_until: float


class LeaderElector:
    """Claims, renews and releases the lead for one replica (`identity`) on `store`.

    Each call is one short transaction; a StoreError counts as not leading (the lease
    is judged by this replica's monotonic clock from the moment of its last successful
    claim or renewal, never by a wall clock that may jump).
    """

    def __init__(
        self,
        store: Store,
        identity: str,
        *,
        ttl_s: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.identity = identity
        self.ttl_s = ttl_s
        self.monotonic = monotonic
        self.current: Leadership | None = None

    def try_acquire(self) -> Leadership | None:
        """Take the lead if it is free or expired (or already ours); return it or None."""
        sent = self.monotonic()
        try:
            term = self.store.claim_lead(self.identity, self.ttl_s)
        except StoreError as exc:
            log.warning("claiming the lead failed: %s", exc)
            self.current = None
            return None
        if term is None:
            self.current = None
            return None
        self.current = Leadership(term.epoch, sent + self.ttl_s)
        self.store.set_fencing_token(term.epoch)
        return self.current

    def renew(self) -> Leadership | None:
        """Extend the current term; return it, or None when it is lost (or cannot be told)."""
        held = self.current
        if held is None:
            return None
        sent = self.monotonic()
        if sent >= held.valid_until:
            return self._lost("the lease ran out before it could be renewed")
        try:
            term = self.store.renew_lead(self.identity, held.epoch, self.ttl_s)
        except StoreError as exc:
            if self.monotonic() < held.valid_until:
                log.warning("renewing the lead failed (still valid): %s", exc)
                return held
            return self._lost(f"renewal failed: {exc}")
        if term is None:
            return self._lost("another replica holds a newer term")
        self.current = Leadership(held.epoch, sent + self.ttl_s)
        return self.current

    def release(self) -> None:
        """Give up the lead at once (clean shutdown), so another replica takes over now."""
        held, self.current = self.current, None
        if held is not None:
            try:
                self.store.release_lead(self.identity, held.epoch)
            except StoreError as exc:
                log.warning("releasing the lead failed: %s", exc)

    def _lost(self, why: str) -> None:
        """Forget the term and say why; return None (not leading)."""
        log.warning("%s lost the lead: %s", self.identity, why)
        self.current = None
        return None


def lead(
    elector: LeaderElector,
    start: Callable[[int], Callable[[threading.Event], None]],
    stop: threading.Event,
    *,
    retry_s: float | None = None,
) -> None:
    """Run as a replica until `stop`: wait for the lead, then run `start(epoch)(term_stop)`
    on a thread while renewing every ttl/3; when the lead is lost, stop it and wait again.

    `start` receives the fencing token and returns the body to run; the body must
    return soon after its event is set (Controller.run does, between passes).
    """
    retry = retry_s if retry_s is not None else elector.ttl_s / 3
    while not stop.is_set():
        held = elector.try_acquire()
        if held is None:
            stop.wait(retry)
            continue
        log.info("%s leads in term %d", elector.identity, held.epoch)
        term_stop = threading.Event()
        body = start(held.epoch)
        worker = threading.Thread(target=body, args=(term_stop,), name="leader-term", daemon=True)
        worker.start()
        while not stop.is_set() and worker.is_alive():
            stop.wait(elector.ttl_s / 3)
            if elector.renew() is None:
                break
        term_stop.set()
        worker.join()
        if stop.is_set():
            elector.release()


def controller_term(controller) -> Callable[[int], Callable[[threading.Event], None]]:
    """Return a `start` for `lead` that runs `controller` with the term's fencing token on
    its store writes and on its agents' lease renewals."""

    def start(epoch: int) -> Callable[[threading.Event], None]:
        controller.store.set_fencing_token(epoch)
        controller.leases.epoch = epoch
        return controller.run

    return start
