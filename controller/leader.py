"""Leader election among controller replicas sharing one store, with fencing tokens.

The lead is a lease kept in the store (controller.store.fencing): a replica claims it
when it is free or expired, renews it every `ttl_s / 3`, and loses it when a renewal
fails or finds another term. Each new holder gets the next epoch; the epoch is the
fencing token. While leading, the replica's Store refuses its own writes once the
epoch moved on (`Store.set_fencing_token`), and its mutating agent calls carry the
same epoch, which agents refuse once a newer one was seen. So a deposed leader that
wakes up late (a long GC pause, a frozen VM, a partition) can neither write state nor
act on hosts: the newer leader's view wins everywhere.

A replica that loses the lead stops its passes at once; its stop is not graceful,
and need not be: every step is idempotent and the next leader's first pass repairs.

A controller that runs alone (`corral up`, `corral apply`) takes the lead the same way,
once per run (RunTerm): agents compare epochs from every controller of one store, so
a run that called agents with a fixed epoch would be refused by every agent that had
seen a replica's newer term.
"""

from __future__ import annotations

import logging
import os
import socket
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
    its store writes and on its mutating agent calls."""

    def start(epoch: int) -> Callable[[threading.Event], None]:
        controller.store.set_fencing_token(epoch)
        controller.term = epoch
        return controller.run

    return start


RUN_LEAD_TTL_S = 10.0
"""How long the lead of a single-controller run lasts unrenewed (a replica's default)."""


class LeadHeld(Exception):
    """Another controller holds the lead of this store; `epoch` is its term and
    `expires_in_s` how long its lead runs unless renewed (by this machine's wall clock)."""

    def __init__(self, epoch: int, expires_in_s: float) -> None:
        super().__init__(
            f"another controller leads this store in term {epoch} (its lead runs "
            f"{max(0.0, expires_in_s):.1f} s more and is renewed while it lives): stop it, "
            "or let it reconcile this store"
        )
        self.epoch = epoch
        self.expires_in_s = expires_in_s


def run_identity(name: str) -> str:
    """Return the lead identity of one run of controller `name`: a new one per process,
    so each run is a new holder and gets the next epoch."""
    return f"{name}@{socket.gethostname()}-{os.getpid()}"


class RunTerm:
    """The lead one controller run holds for its whole life: one term, one epoch.

    Renews the lead every ttl/3 on a daemon thread until `release()`. If the lead is
    lost anyway (this process paused past the TTL and another controller took it), the
    store refuses the run's writes and agents its calls; `on_lost` is called
    once so the run can stop.
    """

    def __init__(self, elector: LeaderElector, on_lost: Callable[[], None] | None = None) -> None:
        held = elector.current
        if held is None:
            raise ValueError("RunTerm needs an elector that holds the lead")
        self.elector = elector
        self.epoch = held.epoch
        self.on_lost = on_lost
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="run-term", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.elector.ttl_s / 3):
            if self.elector.renew() is None:
                log.error(
                    "%s lost the lead of term %d: its writes and agent calls are refused",
                    self.elector.identity,
                    self.epoch,
                )
                if self.on_lost is not None:
                    self.on_lost()
                return

    def release(self) -> None:
        """Stop renewing and give up the lead at once (another controller may take it)."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.elector.release()


def hold_run_term(
    controller,
    *,
    identity: str | None = None,
    ttl_s: float = RUN_LEAD_TTL_S,
    wait_s: float | None = None,
    on_lost: Callable[[], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RunTerm:
    """Claim the lead of `controller`'s store for this run and return the held term; its
    epoch fences the store's writes and the mutating agent calls.

    Waits up to `wait_s` (default ttl_s + 1 s: the lead of an earlier run that died
    without releasing it runs out) for the lead to be free; raises LeadHeld after that,
    or StoreError when the store cannot be asked.
    """
    elector = LeaderElector(
        controller.store, identity or run_identity(controller.identity), ttl_s=ttl_s
    )
    limit = elector.monotonic() + (wait_s if wait_s is not None else ttl_s + 1.0)
    warned = False
    while elector.try_acquire() is None:
        term = controller.store.leader_term()
        left_s = term.expires_ms / 1000 - time.time()
        if elector.monotonic() >= limit:
            raise LeadHeld(term.epoch, left_s)
        if not warned:
            log.warning(
                "the lead of %s is held in term %d for %.1f s more: waiting for it",
                controller.store.url,
                term.epoch,
                max(0.0, left_s),
            )
            warned = True
        sleep(min(ttl_s / 3, max(0.05, limit - elector.monotonic())))
    run = RunTerm(elector, on_lost)
    controller.term = run.epoch
    log.info("%s leads in term %d", elector.identity, run.epoch)
    return run
