"""The fencing lease in etcd: this agent keeps it alive, and fences itself without it.

The agent grants itself a lease of the host's TTL in etcd, binds its key
(`/corral/hosts/<host>`) to it and keeps it alive, every `interval_s`. The controller
only watches that key and renews nothing: a controller, its replicas or PostgreSQL
may be down for any length of time and no VM stops.

The self-fence rule: etcd extends a lease to at least (send time of the keepalive +
TTL) when it acknowledges it, so the lease is provably alive until the send time of
the newest acknowledged keepalive (or grant) plus the TTL. The agent destroys its HA
domains once that time minus `margin_s` has come; `margin_s` covers the two clocks'
rate difference and the time the kill takes. The controller restarts the host's HA
VMs elsewhere only after etcd deleted the key (the lease expired there) plus its own
margin, so the two copies never overlap. HA domains may start only while the lease
is provably alive.

Times are monotonic seconds from `clock`. The lease (id, newest acknowledged send,
TTL, margin) is written to `state_file` at each acknowledgement and read back at start
in the same boot: an agent restarted within its TTL keeps its lease alive, and one
restarted later fences at once.

Without etcd (the single-host default) there is no arbiter: nothing fences, HA domains
may start, and the controller restarts nothing elsewhere (there is nowhere to go).
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

from agentapi import FenceRecord, LeaseState
from arbiter import EtcdClient, EtcdError, EtcdSettings, HostLeaseRecord, host_key
from nodeagent.errors import AgentFailure

log = logging.getLogger(__name__)

MIN_KEEPALIVES_BEFORE_FENCE = 2
"""The fence deadline must leave room for this many keepalive attempts after an ack."""


class LeaseSettingError(ValueError):
    """A lease timing setting is unusable; `setting` names it."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


@dataclass(frozen=True)
class LeaseTiming:
    """TTL of the etcd lease, the fencing margin, and the keepalive interval (seconds)."""

    ttl_s: int
    margin_s: float
    interval_s: float

    @property
    def fence_after_s(self) -> float:
        """Seconds after the newest acknowledged send at which the agent fences."""
        return self.ttl_s - self.margin_s


ETCD_FAILOVER_S = 2.5
"""How long an etcd leader change may hold keepalive acknowledgements back, with etcd's
default election timeout (1 s, randomised up to 2 s, plus pre-vote): 1.6-2.3 s measured on
the lab. A lease must outlast it, or every healthy host fences at each leader change."""


def lease_timing(
    ttl_s: float, margin_s: float | None = None, failover_s: float = ETCD_FAILOVER_S
) -> LeaseTiming:
    """Return the timing for a TTL (margin default: 20% of it, at least 1 s), checked.

    LeaseSettingError names `lease_ttl_s` or `fence_margin_s` when TTL - margin cannot
    outlast an etcd leader change (`failover_s`) plus a keepalive interval, or fit
    MIN_KEEPALIVES_BEFORE_FENCE keepalives.
    """
    if ttl_s != int(ttl_s) or ttl_s < 2:
        raise LeaseSettingError(
            "lease_ttl_s", f"etcd leases take whole seconds, at least 2; got {ttl_s:g}"
        )
    margin = margin_s if margin_s is not None else max(1.0, 0.2 * ttl_s)
    if margin <= 0:
        raise LeaseSettingError("fence_margin_s", f"must be positive, got {margin:g}")
    interval = max(0.2, min(1.0, ttl_s / 5))
    room = ttl_s - margin
    needed = max(MIN_KEEPALIVES_BEFORE_FENCE * interval, failover_s + interval)
    if room < needed:
        raise LeaseSettingError(
            "lease_ttl_s",
            f"a TTL of {ttl_s:g} s with a fence margin of {margin:g} s leaves {room:g} s "
            f"before the self-fence; an etcd leader change ({failover_s:g} s) and a keepalive "
            f"every {interval:g} s need {needed:g} s (raise the TTL to "
            f"{int(margin + needed + 0.999)} s or lower the margin)",
        )
    return LeaseTiming(int(ttl_s), margin, interval)


@dataclass(frozen=True)
class HeldLease:
    """What the agent knows of its lease: the id, and the send time (lease clock) of the
    newest keepalive or grant etcd acknowledged. None before the first grant."""

    lease_id: int | None = None
    acked_sent_at: float | None = None


def fence_deadline(lease: HeldLease, timing: LeaseTiming, started_at: float) -> float:
    """Return the time from which HA domains must not run.

    Before any acknowledgement it is `started_at`: an agent that cannot prove a lease
    must not run HA domains (the controller may already have restarted them elsewhere).
    """
    if lease.acked_sent_at is None:
        return started_at
    return lease.acked_sent_at + timing.fence_after_s


def must_fence(lease: HeldLease, timing: LeaseTiming, started_at: float, now: float) -> bool:
    """Return whether HA domains must be destroyed now."""
    return now >= fence_deadline(lease, timing, started_at)


def ha_start_refusal(
    lease: HeldLease, timing: LeaseTiming, started_at: float, now: float
) -> str | None:
    """Return why an HA domain may not start now (None if it may)."""
    if lease.acked_sent_at is None:
        return "lease_not_held: this host holds no fencing lease in etcd yet"
    if must_fence(lease, timing, started_at, now):
        return (
            "lease_lapsed: no keepalive of this host's etcd lease was acknowledged in the last "
            f"{timing.fence_after_s:g} s; HA domains stay off until it is"
        )
    return None


BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    """Return this boot's id (empty when the kernel does not tell)."""
    try:
        return BOOT_ID_PATH.read_text().strip()
    except OSError:
        return ""


def save_lease(path: Path, lease: HeldLease, timing: LeaseTiming) -> None:
    """Write the lease to `path` atomically, with the boot id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "boot_id": boot_id(),
        "lease_id": lease.lease_id,
        "acked_sent_at": lease.acked_sent_at,
        "ttl_s": timing.ttl_s,
        "margin_s": timing.margin_s,
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


def load_lease(path: Path) -> HeldLease:
    """Return the lease stored at `path` in this boot, or an empty one."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return HeldLease()
    if not isinstance(doc, dict) or not boot_id() or doc.get("boot_id") != boot_id():
        return HeldLease()
    try:
        return HeldLease(int(doc["lease_id"]), float(doc["acked_sent_at"]))
    except (KeyError, TypeError, ValueError):
        return HeldLease()


class LeaseKeeper:
    """Keeps this host's etcd lease alive (one thread) and self-fences (another).

    `fence` destroys the running HA domains and returns the FenceRecords; the watchdog
    calls it on every tick past the deadline, so an HA domain started behind the
    agent's back is destroyed too. With `etcd` None there is no arbiter and neither
    thread runs.
    """

    def __init__(
        self,
        host: str,
        timing: LeaseTiming,
        fence: Callable[[], list[FenceRecord]],
        *,
        etcd: EtcdSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_fence: Callable[[FenceRecord], None] | None = None,
        history: int = 100,
        state_file: Path | None = None,
    ) -> None:
        self.host = host
        self.timing = timing
        self.etcd = etcd
        self._fence = fence
        self._clock = clock
        self._on_fence = on_fence
        self._history = history
        self._state_file = state_file
        self._started_at = clock()
        self._lease = load_lease(state_file) if state_file and etcd else HeldLease()
        if self._lease.lease_id is not None:
            log.warning(
                "restored etcd lease %x from %s: kept alive if etcd still has it, "
                "else HA domains are fenced",
                self._lease.lease_id,
                state_file,
            )
        self._fenced: list[FenceRecord] = []
        self._fencing = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._client: EtcdClient | None = None
        self._last_error = ""
        self._agent_id = f"{boot_id()[:8]}-{os.getpid()}"

    def now(self) -> float:
        return self._clock()

    @property
    def lease(self) -> HeldLease:
        return self._lease

    def state(self, term: int = 0) -> LeaseState:
        """Return the lease as the API reports it, with the newest controller `term` seen."""
        if self.etcd is None:
            return LeaseState(
                held=False,
                granted=False,
                arbiter="none",
                ttl_s=self.timing.ttl_s,
                margin_s=self.timing.margin_s,
                term=term,
                fenced=list(self._fenced),
            )
        now = self._clock()
        lease = self._lease
        deadline = fence_deadline(lease, self.timing, self._started_at)
        return LeaseState(
            held=lease.acked_sent_at is not None and now < deadline,
            granted=lease.lease_id is not None,
            arbiter="etcd",
            lease_id=f"{lease.lease_id:x}" if lease.lease_id is not None else None,
            ttl_s=self.timing.ttl_s,
            margin_s=self.timing.margin_s,
            expires_in_s=deadline - now if lease.acked_sent_at is not None else None,
            error=self._last_error or None,
            term=term,
            fenced=list(self._fenced),
        )

    def check_ha_start(self, vm: str) -> None:
        """Raise conflict if HA domain `vm` may not start now (see ha_start_refusal)."""
        if self.etcd is None:
            return
        refusal = ha_start_refusal(self._lease, self.timing, self._started_at, self._clock())
        if refusal is not None:
            raise AgentFailure("conflict", f"refusing to start HA domain {vm!r}: {refusal}")

    # self-fence

    def tick(self) -> list[FenceRecord]:
        """Fence if the lease requires it now; return the records of this tick."""
        if self.etcd is None:
            return []
        now = self._clock()
        if not must_fence(self._lease, self.timing, self._started_at, now):
            self._fencing = False
            return []
        if not self._fencing:
            late = now - fence_deadline(self._lease, self.timing, self._started_at)
            log.warning(
                "self-fence: no etcd keepalive acknowledged in time (%.2f s past the "
                "deadline): killing HA domains",
                late,
            )
            self._fencing = True
        records = self._fence()
        for record in records:
            log.warning("self-fence: destroyed HA domain %s (%s)", record.vm, record.message)
            if self._on_fence is not None:
                self._on_fence(record)
        with self._lock:
            self._fenced = (self._fenced + records)[-self._history :]
        return records

    # keepalive

    def keep_alive_once(self, client: EtcdClient) -> None:
        """Grant (and bind the key) when no lease is held, else send one keepalive.

        An acknowledgement moves the deadline to its send time + TTL - margin; a lease
        etcd no longer has is dropped at once (its key is gone, so the controller may
        restart the HA domains elsewhere: they are fenced now, whatever the timer says).
        """
        timeout = self.timing.interval_s
        lease = self._lease
        sent = self._clock()
        if lease.lease_id is None:
            lease_id, _ = client.grant(self.timing.ttl_s, timeout_s=timeout)
            record = HostLeaseRecord(
                self.host, self.timing.ttl_s, self.timing.margin_s, self._agent_id
            )
            # Until the key is bound the controller cannot see the lease: the deadline counts
            # from the grant's send time either way.
            self._set(HeldLease(lease_id, None))
            client.put(host_key(self.etcd.prefix, self.host), record.encode(), lease=lease_id)
            self._set(HeldLease(lease_id, sent))
            log.info(
                "holding etcd lease %x for host %s (TTL %d s)",
                lease_id,
                self.host,
                self.timing.ttl_s,
            )
            return
        ttl = client.keepalive(lease.lease_id, timeout_s=timeout)
        if ttl > 0:
            self._set(replace(lease, acked_sent_at=sent))
            return
        log.warning("etcd no longer has lease %x: fencing HA domains now", lease.lease_id)
        self._set(HeldLease())
        self._started_at = self._clock()
        self.tick()

    def _set(self, lease: HeldLease) -> None:
        with self._lock:
            self._lease = lease
        if self._state_file is not None and lease.acked_sent_at is not None:
            save_lease(self._state_file, lease, self.timing)

    def _keepalive_loop(self) -> None:
        assert self.etcd is not None
        while not self._stop.is_set():
            started = self._clock()
            try:
                if self._client is None:
                    self._client = EtcdClient(self.etcd, timeout_s=self.timing.interval_s)
                self.keep_alive_once(self._client)
                if self._last_error:
                    log.warning("etcd answers again (it failed with: %s)", self._last_error)
                self._last_error = ""
            except EtcdError as exc:
                if str(exc) != self._last_error:
                    log.warning("etcd lease keepalive failed: %s", exc)
                self._last_error = str(exc)
            except Exception:
                log.exception("etcd lease keepalive failed")
            self._stop.wait(max(0.0, self.timing.interval_s - (self._clock() - started)))

    def _watchdog_loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.tick()
            except Exception:
                log.exception("self-fence tick failed")

    def start(self, watchdog_interval_s: float | None = None) -> None:
        """Start the keepalive and watchdog threads (watchdog ticks every 0.1-0.5 s)."""
        if self.etcd is None or self._threads:
            return
        interval = watchdog_interval_s or min(self.timing.interval_s / 2, 0.5)
        self._stop.clear()
        self._started_at = self._clock()
        if self._lease.acked_sent_at is None:
            # No lease from an earlier run of this boot: HA domains running now may already
            # run elsewhere too. They go before a new lease can make them look safe.
            log.info("no etcd lease held earlier in this boot: fencing any running HA domain")
            self._fencing = True
            self.tick()
        self._threads = [
            threading.Thread(target=self._keepalive_loop, name="etcd-lease", daemon=True),
            threading.Thread(
                target=self._watchdog_loop, args=(interval,), name="self-fence", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop both threads; the lease is left to expire (never revoked: HA domains may
        still run here, and only a fence may end them)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        if self._client is not None:
            self._client.close()
            self._client = None
