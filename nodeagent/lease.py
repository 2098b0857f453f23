"""The fencing lease: a pure decision core and the self-fence watchdog around it.

The controller renews this host's lease every few seconds. When a granted lease
expires the agent destroys every HA domain itself (self-fence), so that the
controller, after waiting TTL plus a margin, may restart them elsewhere without
risking two copies. While expired, and before the first grant, HA starts are
refused: a controller on the wrong side of a partition must not restart a fenced
copy here. A lease never granted does not fence (the agent just started and the
controller has not been seen yet). Times are monotonic seconds from `clock`.

With a `state_file`, every grant is written to disk (atomically) and read back when
the agent starts: an agent restarted during a partition (crash, OOM kill, upgrade)
must still fence when the lease it was granted runs out, or its HA VMs would run on
while the controller restarts them elsewhere. CLOCK_MONOTONIC is system-wide and
survives a process restart, so the stored expiry is compared as is — but only within
the same boot (the boot id is stored with it; after a reboot the guests are gone).

A renewal's expiry counts from when it ARRIVED (stamped by RenewalArrivalStamp before
any queue), not from when it was processed. The controller bounds this agent's expiry
by its send time + request timeout + TTL (controller.ha.HostHealth); a renewal that
waited behind slow verbs and counted from its processing time would outlive that
bound, and the controller could restart an HA VM elsewhere while this copy still ran.
A renewal whose processing starts later than its `request_timeout_s` after arrival is
refused: its sender has stopped waiting and counts it as failed.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nodeagent.errors import AgentFailure
from nodeagent.models import FenceRecord, LeaseRenewal, LeaseState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lease:
    """The lease as last renewed; `expires_at` is None until the first grant."""

    ttl_s: float
    holder: str | None = None
    epoch: int = 0
    expires_at: float | None = None


DEFAULT_RENEWAL_TIMEOUT_S = 2.0
"""How long after arrival a renewal naming no `request_timeout_s` may still be granted
(the controller's request timeout, controller.plan.health.REQUEST_TIMEOUT_S)."""

RENEWAL_ARRIVED_AT = "corral.lease_renewal_arrived_at"
"""The ASGI scope key holding when a lease renewal arrived (the lease clock's seconds)."""


def renew_lease(
    lease: Lease, renewal: LeaseRenewal, now: float, arrived_at: float | None = None
) -> Lease:
    """Return the lease renewed until `arrived_at` + TTL (arrival defaults to `now`).

    Conflict when `renewal.epoch` is lower than the one held (a deposed controller), or
    when processing starts (`now`) more than `renewal.request_timeout_s` after arrival:
    the renewal came too late to be granted, and the lease stays as it was.
    """
    arrived = now if arrived_at is None else min(arrived_at, now)
    limit_s = renewal.request_timeout_s or DEFAULT_RENEWAL_TIMEOUT_S
    if now - arrived > limit_s:
        raise AgentFailure(
            "conflict",
            f"lease_renewal_late: the renewal by {renewal.holder!r} (epoch {renewal.epoch}) "
            f"waited {now - arrived:.2f} s before it could be granted, longer than its "
            f"request timeout of {limit_s:g} s: refused, the lease is not extended",
            retryable=True,
        )
    if lease.expires_at is not None and renewal.epoch < lease.epoch:
        raise AgentFailure(
            "conflict",
            f"lease epoch {renewal.epoch} is older than the held epoch {lease.epoch} "
            f"(holder {lease.holder!r})",
        )
    ttl_s = renewal.ttl_s if renewal.ttl_s is not None else lease.ttl_s
    return replace(
        lease, ttl_s=ttl_s, holder=renewal.holder, epoch=renewal.epoch, expires_at=arrived + ttl_s
    )


def lease_granted(lease: Lease) -> bool:
    """Return whether a controller has ever granted this lease."""
    return lease.expires_at is not None


def lease_expired(lease: Lease, now: float) -> bool:
    """Return whether a granted lease has run out (a never-granted one is not expired)."""
    return lease.expires_at is not None and now >= lease.expires_at


def must_fence(lease: Lease, now: float) -> bool:
    """Return whether HA domains must be destroyed now: granted and expired."""
    return lease_expired(lease, now)


def ha_start_refusal(lease: Lease, now: float) -> str | None:
    """Return why an HA domain may not start now (None if it may)."""
    if not lease_granted(lease):
        return "lease_not_granted: no controller has granted this host's lease yet"
    if lease_expired(lease, now):
        return "lease_expired: the fencing lease expired; HA domains stay off until renewal"
    return None


BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    """Return this boot's id (empty when the kernel does not tell)."""
    try:
        return BOOT_ID_PATH.read_text().strip()
    except OSError:
        return ""


def save_lease(path: Path, lease: Lease) -> None:
    """Write the granted lease to `path` atomically, with the boot id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "boot_id": boot_id(),
        "ttl_s": lease.ttl_s,
        "holder": lease.holder,
        "epoch": lease.epoch,
        "expires_at": lease.expires_at,
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


def load_lease(path: Path, ttl_s: float) -> Lease:
    """Return the lease stored at `path` in this boot, or a never-granted one."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return Lease(ttl_s=ttl_s)
    if not isinstance(doc, dict) or doc.get("boot_id") != boot_id() or not boot_id():
        return Lease(ttl_s=ttl_s)
    try:
        return Lease(
            ttl_s=float(doc["ttl_s"]),
            holder=doc.get("holder"),
            epoch=int(doc["epoch"]),
            expires_at=float(doc["expires_at"]) if doc["expires_at"] is not None else None,
        )
    except (KeyError, TypeError, ValueError):
        return Lease(ttl_s=ttl_s)


class LeaseKeeper:
    """Holds the lease, answers renewals and runs the self-fence watchdog thread.

    `fence` destroys the running HA domains and returns the FenceRecords; it is
    called on every watchdog tick while the lease is expired, so an HA domain
    started behind the agent's back is destroyed too.
    """

    def __init__(
        self,
        ttl_s: float,
        fence: Callable[[], list[FenceRecord]],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        on_fence: Callable[[FenceRecord], None] | None = None,
        history: int = 100,
        state_file: Path | None = None,
    ) -> None:
        self._state_file = state_file
        self._lease = load_lease(state_file, ttl_s) if state_file else Lease(ttl_s=ttl_s)
        if lease_granted(self._lease):
            log.warning(
                "restored the lease of %s (epoch %d) from %s: it fences at its expiry",
                self._lease.holder,
                self._lease.epoch,
                state_file,
            )
        self._fence = fence
        self._clock = clock
        self._wall_clock = wall_clock
        self._on_fence = on_fence
        self._history = history
        self._fenced: list[FenceRecord] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def now(self) -> float:
        """Return the lease clock's time (monotonic seconds)."""
        return self._clock()

    def renew(self, renewal: LeaseRenewal, arrived_at: float | None = None) -> LeaseState:
        """Renew the lease from `arrived_at` (lease clock; default now) and return its
        state; conflict on a stale epoch or a renewal granted too late (see renew_lease)."""
        with self._lock:
            self._lease = renew_lease(self._lease, renewal, self._clock(), arrived_at)
            if self._state_file is not None:
                save_lease(self._state_file, self._lease)
        log.info("lease renewed by %s (epoch %d)", renewal.holder, renewal.epoch)
        return self.state()

    def state(self) -> LeaseState:
        """Return the lease as the API reports it."""
        now = self._clock()
        lease = self._lease
        return LeaseState(
            held=lease_granted(lease) and not lease_expired(lease, now),
            granted=lease_granted(lease),
            holder=lease.holder,
            epoch=lease.epoch,
            ttl_s=lease.ttl_s,
            expires_in_s=None if lease.expires_at is None else lease.expires_at - now,
            fenced=list(self._fenced),
        )

    def check_ha_start(self, vm: str) -> None:
        """Raise conflict if HA domain `vm` may not start now (see ha_start_refusal)."""
        refusal = ha_start_refusal(self._lease, self._clock())
        if refusal is not None:
            raise AgentFailure("conflict", f"refusing to start HA domain {vm!r}: {refusal}")

    def tick(self) -> list[FenceRecord]:
        """Fence if the lease requires it now; return the records of this tick."""
        if not must_fence(self._lease, self._clock()):
            return []
        records = self._fence()
        for record in records:
            log.warning("self-fence: destroyed HA domain %s (%s)", record.vm, record.message)
            if self._on_fence is not None:
                self._on_fence(record)
        with self._lock:
            self._fenced = (self._fenced + records)[-self._history :]
        return records

    def start(self, interval_s: float | None = None) -> None:
        """Start the watchdog thread (ticks every min(TTL/4, 0.5 s) unless told)."""
        if self._thread is not None:
            return
        interval = interval_s if interval_s is not None else min(self._lease.ttl_s / 4, 0.5)
        self._stop.clear()

        def _run() -> None:
            while not self._stop.wait(interval):
                try:
                    self.tick()
                except Exception:
                    log.exception("lease watchdog tick failed")

        self._thread = threading.Thread(target=_run, name="lease-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the watchdog thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


class RenewalArrivalStamp:
    """ASGI middleware: records when a lease renewal (POST /v1/lease) arrived, before any
    queue, under RENEWAL_ARRIVED_AT in the request scope.

    The time is read from the lease clock of the agent the app serves
    (`scope["app"].state.agent`); with no agent yet, nothing is stamped (the route then
    answers unavailable).
    """

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and scope.get("method") == "POST"
            and scope.get("path") == "/v1/lease"
        ):
            state = getattr(scope.get("app"), "state", None)
            agent = getattr(state, "agent", None)
            if agent is not None:
                scope[RENEWAL_ARRIVED_AT] = agent.lease.now()
        await self.app(scope, receive, send)
