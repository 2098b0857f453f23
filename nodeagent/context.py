"""What every verb needs: the libvirt connection, hooks, lease, events and per-object locks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nodeagent.connection import Connection
from nodeagent.events import EventHub
from nodeagent.guestinfo import GuestInfoCache
from nodeagent.hooks import Hooks

if TYPE_CHECKING:
    from nodeagent.lease import LeaseKeeper
    from nodeagent.migration import MigrationJobs
    from nodeagent.term import TermGuard


class NamedLocks:
    """One re-entrant lock per (kind, name): verbs on one object run one at a time."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], threading.RLock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, kind: str, name: str) -> Iterator[None]:
        """Hold the lock of object `kind`/`name` for the block."""
        with self._guard:
            lock = self._locks.setdefault((kind, name), threading.RLock())
        with lock:
            yield


@dataclass
class AgentContext:
    """Shared state of one agent process."""

    connection: Connection
    hooks: Hooks
    events: EventHub
    lease: LeaseKeeper
    migrations: MigrationJobs
    terms: TermGuard | None = None
    migration_uri: str | None = None
    locks: NamedLocks = field(default_factory=NamedLocks)
    guest_info: GuestInfoCache = field(default_factory=GuestInfoCache)
