"""Renews every host's fencing lease on its own thread, so a long pass never lets one lapse.

Before each renewal the send time is written to the store: HA timing counts from
the newest renewal that may have reached the agent, and that must survive a
controller restart (a restarted controller must not conclude a lease ran out
earlier than it did).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx

from controller.agents import AgentClient, AgentClientError, AgentConflict
from controller.ha import lease_renewal_due
from controller.plan.health import REQUEST_TIMEOUT_S
from controller.store import Store, StoreError
from controller.store.observed import LeaseTimes
from schemas.host import Host

log = logging.getLogger(__name__)

RENEWAL_PHASE_TIMEOUT_S = REQUEST_TIMEOUT_S / 2
"""Each phase of a renewal call (connect, send, answer) is bounded by this, so a renewal
reaches the agent within REQUEST_TIMEOUT_S of being sent or not at all, as HA timing assumes."""


def never_sent(exc: AgentClientError) -> bool:
    """Return True when the request failed before any byte could reach the agent."""
    return isinstance(exc.__cause__, httpx.ConnectError | httpx.ConnectTimeout)


def utc_now() -> datetime:
    return datetime.now(UTC)


class LeaseKeeper:
    """Renews the lease of every desired host when due (every TTL/3), until stopped.

    `epoch` is the controller's term of the store's lead (controller.leader), set before
    the first renewal; agents refuse an epoch lower than one they have seen.
    """

    def __init__(
        self,
        store: Store,
        hosts: Callable[[], list[Host]],
        client_for: Callable[[Host], AgentClient],
        *,
        holder: str,
        epoch: int = 1,
        tick_s: float = 0.5,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.hosts = hosts
        self.client_for = client_for
        self.holder = holder
        self.epoch = epoch
        self.tick_s = tick_s
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def renew_due(self) -> list[str]:
        """Renew each host whose lease is due, concurrently; return the hosts renewed."""
        try:
            hosts = self.hosts()
            times = self.store.lease_times()
        except StoreError as exc:
            # The store is down: nothing may be renewed without recording it (HA timing
            # counts from the store's send times); retried every tick.
            log.warning("lease renewals wait for the store: %s", exc)
            return []
        # Most ticks find nothing due: decide that here, without a thread pool.
        now = self.clock()
        due = [h for h in hosts if self._due(h, times.get(h.metadata.name), now)]
        if not due:
            return []
        with ThreadPoolExecutor(max_workers=min(16, len(due))) as pool:
            done = pool.map(lambda h: self._renew_if_due(h, times.get(h.metadata.name)), due)
            return [name for name in done if name]

    def _due(self, host: Host, times: LeaseTimes | None, now: datetime) -> bool:
        """Return True when `host`'s lease must be renewed now: never sent, sent under
        another term (a new term renews at once, so the agent refuses the previous term's
        calls from now on), or due by controller.ha.lease_renewal_due."""
        if times is None or times.sent_at is None or times.epoch != self.epoch:
            return True
        return lease_renewal_due(times.acked_at, host.spec.fencing.lease_ttl_s, now)

    def _renew_if_due(self, host: Host, times: LeaseTimes | None) -> str | None:
        """Renew `host`'s lease if due; `times` is its lease bookkeeping in the store (read
        for every host at once: reading each host's whole observation every tick cost a
        state parse per host per tick)."""
        name, ttl = host.metadata.name, host.spec.fencing.lease_ttl_s
        try:
            previous = times.sent_at if times is not None else None
            now = self.clock()
            if not self._due(host, times, now):
                return None
            # HA timing counts from the newest renewal that may have reached the agent, so
            # the send time is stored before sending. A host never leased yet is the
            # exception: until a renewal may have arrived it stays "never leased" (never safe
            # to restart from), so its first send time is stored only once the request left.
            if previous is not None:
                self.store.record_lease_sent(name, self.epoch, ttl, now)
            try:
                self.client_for(host).renew_lease(
                    self.holder,
                    float(ttl),
                    self.epoch,
                    timeout_s=RENEWAL_PHASE_TIMEOUT_S,
                    request_timeout_s=REQUEST_TIMEOUT_S,
                )
            except AgentClientError as exc:
                if never_sent(exc):
                    if previous is not None:
                        # The request never left: the agent's lease still runs from the
                        # previous renewal, so HA timing must too.
                        self.store.record_lease_sent(name, self.epoch, ttl, previous)
                elif previous is None:
                    self.store.record_lease_sent(name, self.epoch, ttl, now)
                # A refusal (a newer controller term holds the lease, or the agent could
                # not grant it within REQUEST_TIMEOUT_S) is worth a warning; an unreachable
                # agent is the normal failure HA handles, retried each tick.
                level = logging.WARNING if isinstance(exc, AgentConflict) else logging.DEBUG
                log.log(level, "lease renewal of %s failed: %s", name, exc)
                return None
            if previous is None:
                self.store.record_lease_sent(name, self.epoch, ttl, now)
            self.store.record_lease_acked(name, self.epoch, self.clock())
            return name
        except StoreError as exc:
            log.warning("lease bookkeeping for %s failed: %s", name, exc)
            return None

    def start(self) -> None:
        """Start renewing in a daemon thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.renew_due()
            except Exception:  # the keeper must outlive any single failure
                log.exception("lease renewal round failed")
