"""Watches the hosts' fencing leases in etcd; renews nothing.

Each agent keeps its own key `/corral/hosts/<host>` alive in etcd (nodeagent.lease).
This watch keeps the controller's picture of those keys: which exist, and since when
each absent one has been gone. A key's deletion means etcd let the host's lease
expire, by which time the agent had fenced itself; controller.ha restarts the host's
HA VMs only after that plus a margin. The picture lives in memory: a restarted
controller reads etcd again (a key absent at that first read counts as gone from then
on, so the margin is waited again, never skipped).

While the watch is out of sync with etcd (unreachable, cut off, a broken stream), the
view says so (`LeaseView.synced` False, every host's `alive` None): no proof, so no
restart, and no key gone unseen can be mistaken for one still alive.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from arbiter import EtcdClient, EtcdError, EtcdSettings, host_of_key, hosts_prefix
from controller.plan.model import LeaseObservation

log = logging.getLogger(__name__)

RETRY_S = 1.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LeaseView:
    """One instant of the watch: hosts whose key exists, and since when the others went."""

    synced: bool
    alive: frozenset[str] = frozenset()
    gone_since: dict[str, datetime] = field(default_factory=dict)
    error: str | None = None
    started_at: datetime | None = None
    """When the watch first synced: a host absent then counts as gone from then on."""

    def of(self, host: str) -> LeaseObservation:
        """Return `host`'s lease as the planner takes it."""
        if not self.synced:
            return LeaseObservation(alive=None)
        if host in self.alive:
            return LeaseObservation(alive=True)
        return LeaseObservation(alive=False, gone_since=self.gone_since.get(host, self.started_at))


class HostLeaseWatch:
    """Keeps a LeaseView of every host key under the settings' prefix, on its own thread."""

    def __init__(
        self,
        settings: EtcdSettings,
        *,
        clock: Callable[[], datetime] = utc_now,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.on_change = on_change
        self._alive: set[str] = set()
        self._gone: dict[str, datetime] = {}
        self._synced = False
        self._started_at: datetime | None = None
        self._error: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def view(self) -> LeaseView:
        """Return the current picture (a copy)."""
        with self._lock:
            return LeaseView(
                synced=self._synced,
                alive=frozenset(self._alive),
                gone_since=dict(self._gone),
                error=self._error,
                started_at=self._started_at,
            )

    def sync(self, client: EtcdClient) -> int:
        """Read every host key at once; return the revision read (watch from the next)."""
        revision, kvs = client.get_prefix(hosts_prefix(self.settings.prefix))
        present = {h for kv in kvs if (h := host_of_key(self.settings.prefix, kv.key))}
        now = self.clock()
        with self._lock:
            if not self._synced and self._started_at is not None:
                # Back after a time out of sync: a key seen gone may have come back and gone
                # again meanwhile, unseen. When it went last is unknown: at the earliest, now.
                for host in self._gone:
                    self._gone[host] = now
            for host in self._alive - present:
                self._gone.setdefault(host, now)
            for host in present:
                self._gone.pop(host, None)
            changed = not self._synced or present != self._alive
            self._alive = present
            self._started_at = self._started_at or now
            self._synced, self._error = True, None
        if changed and self.on_change:
            self.on_change()
        return revision

    def apply(self, kind: str, host: str) -> None:
        """Record one watched change of `host`'s key (PUT or DELETE)."""
        now = self.clock()
        with self._lock:
            if kind == "DELETE":
                self._alive.discard(host)
                self._gone[host] = now
            else:
                self._alive.add(host)
                self._gone.pop(host, None)
        log.info("etcd lease of host %s: %s", host, "gone" if kind == "DELETE" else "held")
        if self.on_change:
            self.on_change()

    def _unsynced(self, error: str) -> None:
        with self._lock:
            was = self._synced
            self._synced, self._error = False, error
        if was:
            log.warning("etcd lease watch lost sync: %s", error)
            if self.on_change:
                self.on_change()

    def watch(self, client: EtcdClient, revision: int) -> None:
        """Apply watched changes after `revision` until the stream ends (raises EtcdError)."""
        for event in client.watch_prefix(hosts_prefix(self.settings.prefix), revision + 1):
            if self._stop.is_set():
                return
            host = host_of_key(self.settings.prefix, event.key)
            if host:
                self.apply(event.kind, host)

    def _run(self) -> None:
        with EtcdClient(self.settings) as client:
            while not self._stop.is_set():
                try:
                    revision = self.sync(client)
                except EtcdError as exc:
                    self._unsynced(str(exc))
                    self._stop.wait(RETRY_S)
                    continue
                try:
                    self.watch(client, revision)
                except EtcdError as exc:
                    # A watch idle for WATCH_IDLE_S ends, and so does one whose member went:
                    # the next sync says whether etcd is still there.
                    log.debug("etcd lease watch ended: %s", exc)
                except Exception as exc:
                    log.exception("etcd lease watch failed")
                    self._unsynced(str(exc))
                    self._stop.wait(RETRY_S)

    def start(self) -> None:
        """Start watching in a daemon thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="lease-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=WATCH_STOP_S)


WATCH_STOP_S = 2.0


def read_leases(settings: EtcdSettings, clock: Callable[[], datetime] = utc_now) -> LeaseView:
    """Return the hosts' leases as one read of etcd sees them (for a one-shot plan); an
    etcd that cannot be read gives an unsynced view (no proof either way)."""
    watch = HostLeaseWatch(settings, clock=clock)
    try:
        with EtcdClient(settings) as client:
            watch.sync(client)
    except EtcdError as exc:
        watch._unsynced(str(exc))
    return watch.view()
