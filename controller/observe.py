"""Reads every host's agent (concurrently) into the store and builds the Observed picture."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from agentapi import HostState
from controller.agents import AgentClient, AgentClientError
from controller.plan.model import HostObservation, Observed
from controller.sharing import share_field_sets, share_strings
from controller.store import ObservedHost, Store
from schemas.host import Host

if TYPE_CHECKING:
    from controller.leasewatch import LeaseView

WRITE_BATCH = 100
"""Observations written per transaction."""


@dataclass(frozen=True)
class HostRead:
    """What one read of a host's agent gave: an error, or the pools it has active."""

    error: str | None = None
    active_pools: frozenset[str] = frozenset()


def poll_hosts(
    store: Store,
    hosts: Iterable[Host],
    client_for: Callable[[Host], AgentClient],
    *,
    max_parallel: int = 16,
    omit_volumes: Callable[[str], frozenset[str]] | None = None,
) -> dict[str, HostRead]:
    """Read the full state of each host's agent into the store; return host -> its read.

    An unreachable agent is recorded as such; its last known state is kept (the store
    never claims what the host does not have: the planner sees `reachable` False).
    `omit_volumes(host)` names the pools whose volumes that host leaves out.
    """
    hosts = list(hosts)

    def read(host: Host) -> tuple[str, HostState | None, str | None]:
        name = host.metadata.name
        omitted = omit_volumes(name) if omit_volumes is not None else frozenset()
        try:
            return name, client_for(host).get_state(omitted), None
        except AgentClientError as exc:
            return name, None, str(exc)

    reads: dict[str, HostRead] = {}
    if not hosts:
        return reads
    batch: list[tuple[str, bool, HostState | None, str | None]] = []
    with ThreadPoolExecutor(max_workers=max(1, min(max_parallel, len(hosts)))) as pool:
        for name, state, error in pool.map(read, hosts):
            if state is not None:
                batch.append((name, True, state, None))
                active = frozenset(p.name for p in state.pools if p.active)
                reads[name] = HostRead(active_pools=active)
            else:
                batch.append((name, False, None, error))
                reads[name] = HostRead(error=error)
            if len(batch) >= WRITE_BATCH:
                store.put_observed_many(batch)
                batch = []
    if batch:
        store.put_observed_many(batch)
    return reads


def pick_readers(
    candidates: Mapping[str, Sequence[str]],
    previous: Mapping[str, str],
    fit: Callable[[str, str], bool],
) -> dict[str, str]:
    """Return shared pool -> the one host that lists its volumes.

    `candidates` gives each shared pool's desired hosts in name order; `fit(host, pool)`
    says whether the host answered its last read with the pool active (a host not read
    yet is fit). The previous reader stays while it is a fit candidate, so the choice
    does not wander; else the first fit candidate reads; a pool with no fit candidate
    has no reader, and every host then lists its volumes.
    """
    readers: dict[str, str] = {}
    for pool, hosts in candidates.items():
        kept = previous.get(pool)
        if kept is not None and kept in hosts and fit(kept, pool):
            readers[pool] = kept
            continue
        chosen = next((h for h in hosts if fit(h, pool)), None)
        if chosen is not None:
            readers[pool] = chosen
    return readers


def decode_state(doc: dict[str, Any]) -> HostState | str:
    """Return the HostState of a stored state document, or why it does not parse.

    The store decodes a host's document once per state hash and hands back the same
    HostState while the state is unchanged: parsing 1,000 hosts' states costs about a
    second, and the planner's memos key on the identity of the parsed domains.
    """
    try:
        state = HostState.model_validate(doc)
    except ValidationError as exc:
        return f"stored state does not parse: {exc.error_count()} errors"
    share_domain_specs(state)
    share_field_sets(state)
    share_strings(state)
    return state


def share_domain_specs(state: HostState) -> None:
    """Make each domain whose live definition equals its persistent one hold one object
    for both (they are equal on a domain that has not been changed live)."""
    for domain in state.domains:
        if (
            domain.live is not None
            and domain.live is not domain.spec
            and domain.live == domain.spec
        ):
            domain.__dict__["live"] = domain.spec


def to_observation(row: ObservedHost, leases: LeaseView | None = None) -> HostObservation:
    """Return the planner's view of a host observation listed with `decode_state`."""
    state = row.state if isinstance(row.state, HostState) else None
    error = row.state if isinstance(row.state, str) else row.last_error
    return HostObservation(
        name=row.host,
        reachable=row.reachable and state is not None,
        state=state,
        last_seen=row.last_seen,
        error=error,
        lease=leases.of(row.host) if leases is not None else None,
        power_fenced_at=row.power_fenced_at,
    )


def read_observed(store: Store, now: datetime, leases: LeaseView | None = None) -> Observed:
    """Return the Observed picture of every host the store knows, at `now`, with each
    host's etcd lease from `leases` (None: the controller has no arbiter)."""
    rows = store.list_observed(decode=decode_state)
    return Observed(hosts={row.host: to_observation(row, leases) for row in rows}, now=now)
