"""The node agent: one libvirt connection plus hooks, the etcd fencing lease and event stream."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agentapi import FenceRecord, LeaseState
from arbiter import EtcdSettings, probe
from nodeagent.connection import Connection, ensure_event_loop
from nodeagent.context import AgentContext
from nodeagent.domains import fence_ha_domains, running_ha_domains
from nodeagent.events import EventHub, register_libvirt_events
from nodeagent.fence import HADomainCache, fence_with_fallback, ha_names_on_disk
from nodeagent.hooks import Hooks
from nodeagent.lease import LeaseKeeper, LeaseTiming, lease_timing
from nodeagent.migration import MigrationJobs
from nodeagent.term import TermGuard

log = logging.getLogger(__name__)

LOCAL_QEMU_URIS = ("qemu:///system", "qemu+unix:///system")
HA_CACHE_INTERVAL_S = 2.0
"""How often the names of running HA domains are listed for a fence without libvirt."""


class Agent:
    """A node agent bound to one libvirt URI; `start` opens libvirt and arms the lease."""

    def __init__(
        self,
        libvirt_uri: str,
        *,
        hooks_dir: str | Path | None = None,
        hook_timeout_s: float = 30.0,
        host: str = "localhost",
        lease: LeaseTiming | None = None,
        etcd: EtcdSettings | None = None,
        migration_uri: str | None = None,
        open_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        events_capacity: int = 1000,
        lease_file: Path | None = None,
        term_file: Path | None = None,
    ) -> None:
        ensure_event_loop()
        self.events = EventHub(events_capacity)
        connection = Connection(
            libvirt_uri,
            open_timeout_s=open_timeout_s,
            on_open=[lambda conn: register_libvirt_events(conn, self.events)],
            on_lost=self._on_connection_lost,
        )
        self.ha_cache = HADomainCache()
        self.terms = TermGuard(term_file)
        self.lease = LeaseKeeper(
            host,
            lease or lease_timing(10),
            self._fence,
            etcd=etcd,
            clock=clock,
            on_fence=self._on_fence,
            state_file=lease_file,
        )

        self._stop = threading.Event()
        self.ctx = AgentContext(
            connection=connection,
            hooks=Hooks(hooks_dir, hook_timeout_s),
            events=self.events,
            lease=self.lease,
            migrations=MigrationJobs(),
            terms=self.terms,
            migration_uri=migration_uri,
        )

    def start(self, watchdog_interval_s: float | None = None) -> None:
        """Open libvirt (raises AgentFailure if unreachable), then keep the etcd lease alive
        and arm the self-fence (when etcd is configured)."""
        self.ctx.connection.get()
        if self.lease.etcd is not None and self.lease.lease.acked_sent_at is None:
            # Nothing is fenced yet: a misconfigured etcd stops the agent here, touching no VM.
            # An agent that held a lease earlier in this boot goes on instead, and fences at
            # that lease's deadline if etcd stays away.
            probe(self.lease.etcd)
        if self.lease.etcd is not None:
            self._stop.clear()
            threading.Thread(target=self._ha_cache_loop, name="ha-cache", daemon=True).start()
        self.lease.start(watchdog_interval_s)

    def close(self) -> None:
        """Stop the lease threads and close libvirt."""
        self._stop.set()
        self.lease.stop()
        self.ctx.connection.close()

    def _ha_cache_loop(self) -> None:
        # Its own thread: a hung libvirtd blocks this loop, never the self-fence.
        while True:
            try:
                self.refresh_ha_cache()
            except Exception as exc:
                log.debug("HA domain listing failed: %s", exc)
            if self._stop.wait(HA_CACHE_INTERVAL_S):
                return

    def lease_state(self) -> LeaseState:
        """Return the fencing lease with the newest controller term seen."""
        return self.lease.state(term=self.terms.term)

    def _fence(self) -> list[FenceRecord]:
        if not self.ctx.connection.uri.startswith(LOCAL_QEMU_URIS):
            # QEMU processes and their pid files are this machine's only for a local qemu
            # driver; another driver's domains are never killed by pid.
            return fence_ha_domains(self.ctx)
        return fence_with_fallback(
            lambda killed: fence_ha_domains(self.ctx, killed), self._known_ha
        )

    def _known_ha(self) -> set[str]:
        names = self.ha_cache.names | ha_names_on_disk()
        log.debug("self-fence: HA domains known here: %s", ", ".join(sorted(names)) or "none")
        return names

    def refresh_ha_cache(self) -> None:
        """Remember which HA domains run, for a fence that libvirt cannot serve."""
        self.ha_cache.update(running_ha_domains(self.ctx))

    def _on_fence(self, record: FenceRecord) -> None:
        self.events.publish(
            "fence",
            "domain",
            record.vm,
            "fenced" if record.ok else "fence_failed",
            "lease_expired",
            {"ok": record.ok, "message": record.message, "at": record.at},
        )

    def _on_connection_lost(self) -> None:
        # Events may have been lost with the connection: tell clients to re-read.
        self.events.publish("resync", "host", self.ctx.connection.uri, "connection_lost")
