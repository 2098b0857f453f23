"""Polling hosts: which hosts a pass reads, reading them (with one reader per shared
pool), and each host's agent client and fencing by name as the pass read the fleet."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from controller.agentpool import AgentPool
from controller.agents import AgentClient, AgentUnavailable
from controller.observe import HostRead, pick_readers, poll_hosts
from controller.store import NotFound, Store, StoredObject
from schemas.host import Fencing, Host
from schemas.storagepool import StoragePool


def shared_pool_hosts(stored: list[StoredObject], hosts: list[Host]) -> dict[str, list[str]]:
    """Return each desired shared pool -> the desired hosts it is on, in name order."""
    ordered = sorted(hosts, key=lambda h: h.metadata.name)
    return {
        s.name: [
            h.metadata.name for h in ordered if s.obj.spec.host_selector.matches(h.metadata.labels)
        ]
        for s in stored
        if isinstance(s.obj, StoragePool) and s.obj.spec.shared
    }


@dataclass(frozen=True)
class PassFleet:
    """The desired hosts as the last full pass listed them, and each shared pool's hosts.

    Cross-pass state. Owner: HostPoller (`fleet`). Replaced whole at the start of every
    full pass; quiet passes keep using the last one (they list nothing), and so do the
    executor's and the balloon keeper's lookups of a host by name.
    """

    hosts: dict[str, Host] = field(default_factory=dict)
    shared: dict[str, list[str]] = field(default_factory=dict)
    """Shared pool -> its desired hosts in name order (shared_pool_hosts)."""

    @classmethod
    def of(cls, stored: list[StoredObject], hosts: list[Host]) -> PassFleet:
        """Return the fleet of a pass's desired objects and hosts."""
        return cls({h.metadata.name: h for h in hosts}, shared_pool_hosts(stored, hosts))


@dataclass
class HostReads:
    """What this controller knows of its reads of hosts' agents, between passes.

    Cross-pass state. Owner: HostPoller (`reads`). `read_at` (monotonic s) and `last` are
    renewed per host on each read of it; `touched` is set to the hosts a pass acted on and
    dropped by the next pass, which reads them whether due or not; `readers` is replaced
    on each poll. Entries of a host that left the fleet are kept (one small entry per
    host name ever read) and never consulted: only desired hosts are asked about.
    """

    read_at: dict[str, float] = field(default_factory=dict)
    last: dict[str, HostRead] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)
    readers: dict[str, str] = field(default_factory=dict)
    """Shared pool -> the one host that lists its volumes (observe.pick_readers)."""


class HostPoller:
    """Reads hosts' agents into the store: the hosts that are due, and one reader per
    shared pool."""

    def __init__(self, store: Store, client_for: Callable[[Host], AgentClient]) -> None:
        self.store = store
        self.client_for = client_for
        self.fleet = PassFleet()
        self.reads = HostReads()

    def due(self, hosts: list[Host], interval_s: float) -> list[Host]:
        """Return the hosts this pass must read: every host whose last read is older than
        `interval_s`, and the hosts the previous pass acted on (which are then dropped)."""
        now = time.monotonic()
        touched, self.reads.touched = self.reads.touched, set()
        read_at = self.reads.read_at
        return [
            h
            for h in hosts
            if h.metadata.name in touched or now - read_at.get(h.metadata.name, -1e18) >= interval_s
        ]

    def touch(self, names: set[str]) -> None:
        """Mark the hosts a pass acted on: the next pass reads them again."""
        self.reads.touched = names

    def poll(self, hosts: list[Host]) -> None:
        """Read `hosts`, and with them the one host that lists each shared pool's volumes
        (the others leave those out: at 1,000 hosts, every host listing every shared
        volume would make each read as large as the whole fleet's storage)."""
        if not hosts:
            return
        fleet = self.fleet.hosts
        shared = self.fleet.shared
        todo, reads = list(hosts), {}
        for _ in range(3):
            readers = pick_readers(shared, self.reads.readers, self._fit)
            names = {h.metadata.name for h in todo} | set(reads)
            todo += [fleet[r] for r in sorted(set(readers.values()) - names) if r in fleet]
            done = poll_hosts(
                self.store,
                todo,
                self.client_for,
                omit_volumes=lambda n, r=readers: frozenset(p for p, h in r.items() if h != n),
            )
            reads.update(done)
            self.reads.last.update(done)
            self.reads.readers = readers
            # A reader that failed, or lacks the pool, is replaced, and the new one read
            # in full before the pass plans on what it listed.
            again = pick_readers(shared, readers, self._fit)
            todo = [
                fleet[h]
                for pool, h in sorted(again.items())
                if h in fleet and readers.get(pool) != h
            ]
            if not todo:
                break
        now = time.monotonic()
        for name in reads:
            self.reads.read_at[name] = now

    def _fit(self, host: str, pool: str) -> bool:
        """Return True if `host` may list `pool`'s volumes: not read yet, or its last read
        answered with the pool active."""
        read = self.reads.last.get(host)
        return read is None or (read.error is None and pool in read.active_pools)


class HostAgents:
    """Each host's agent client and fencing by name, from the hosts the pass planned with.

    Holds no state of its own: it reads `fleet()` (the poller's PassFleet) and, for a
    host not in it, the store.
    """

    def __init__(self, store: Store, pool: AgentPool, fleet: Callable[[], PassFleet]) -> None:
        self.store = store
        self.pool = pool
        self.fleet = fleet

    def client_for(self, host: Host) -> AgentClient:
        """Return the agent client of `host` (one per host and address, from the pool)."""
        return self.pool.client(host.metadata.name, host.spec.address)

    def host_named(self, name: str) -> Host:
        """Return the desired Host `name` as this pass read it (the plan was made from
        that very object; reading it again per action cost a query per agent call)."""
        host = self.fleet().hosts.get(name)
        if host is not None:
            return host
        obj = self.store.get("Host", name).obj
        assert isinstance(obj, Host)
        return obj

    def fencing_for(self, name: str) -> Fencing:
        """Return how host `name` is power-fenced (none configured: an empty Fencing)."""
        try:
            return self.host_named(name).spec.fencing
        except NotFound:
            return Fencing()

    def client_for_name(self, name: str) -> AgentClient:
        """Return the agent client of desired host `name`; AgentUnavailable if there is none."""
        try:
            host = self.host_named(name)
        except NotFound:
            raise AgentUnavailable("not a desired host", host=name) from None
        return self.client_for(host)
