"""The node agent: one libvirt connection plus hooks, lease watchdog and event stream."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from nodeagent.connection import Connection, ensure_event_loop
from nodeagent.context import AgentContext
from nodeagent.domains import fence_ha_domains
from nodeagent.events import EventHub, register_libvirt_events
from nodeagent.hooks import Hooks
from nodeagent.lease import LeaseKeeper
from nodeagent.migration import MigrationJobs
from nodeagent.models import FenceRecord

log = logging.getLogger(__name__)


class Agent:
    """A node agent bound to one libvirt URI; `start` opens libvirt and arms the lease."""

    def __init__(
        self,
        libvirt_uri: str,
        *,
        hooks_dir: str | Path | None = None,
        hook_timeout_s: float = 30.0,
        lease_ttl_s: float = 10.0,
        migration_uri: str | None = None,
        open_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        events_capacity: int = 1000,
        lease_file: Path | None = None,
    ) -> None:
        ensure_event_loop()
        self.events = EventHub(events_capacity)
        connection = Connection(
            libvirt_uri,
            open_timeout_s=open_timeout_s,
            on_open=[lambda conn: register_libvirt_events(conn, self.events)],
            on_lost=self._on_connection_lost,
        )
        self.lease = LeaseKeeper(
            lease_ttl_s, self._fence, clock=clock, on_fence=self._on_fence, state_file=lease_file
        )
        self.ctx = AgentContext(
            connection=connection,
            hooks=Hooks(hooks_dir, hook_timeout_s),
            events=self.events,
            lease=self.lease,
            migrations=MigrationJobs(),
            migration_uri=migration_uri,
        )

    def start(self, watchdog_interval_s: float | None = None) -> None:
        """Open libvirt (raises AgentFailure if unreachable) and start the lease watchdog."""
        self.ctx.connection.get()
        self.lease.start(watchdog_interval_s)

    def close(self) -> None:
        """Stop the watchdog and close libvirt."""
        self.lease.stop()
        self.ctx.connection.close()

    def _fence(self) -> list[FenceRecord]:
        return fence_ha_domains(self.ctx)

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
