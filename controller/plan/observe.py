"""Index observed host states for lookups by host and object name.

Only desired hosts (kind Host) are planned on. An observed host that is no longer desired
is still read for one thing: Corral VMs that may run there (`undesired_copies`), so that
removing a Host from the manifests never starts a second copy of its VMs elsewhere.
A host never reached, or not answering now, is indexed from its last known state so
that its objects can be reported, but nothing is planned on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agentapi import DomainState, HostState, NetworkState, PoolState, VolumeState
from controller.plan.model import HostObservation, Observed

VM_LABEL = "corral.dev/vm"
"""Domain metadata label naming the Corral VM a domain belongs to."""

ACTIVE_STATES = frozenset({"running", "paused", "blocked", "pmsuspended", "shutdown"})
"""Domain states in which the guest may still run (shutdown = shutting down)."""


def is_incoming_migration(domain: DomainState) -> bool:
    """Return True for the paused destination side of a live migration in progress."""
    return domain.state == "paused" and "migrat" in domain.reason


@dataclass(frozen=True)
class Copy:
    """One domain of a VM on one host."""

    host: str
    domain: DomainState

    @property
    def active(self) -> bool:
        return self.domain.state in ACTIVE_STATES and not is_incoming_migration(self.domain)


@dataclass
class ObservedIndex:
    """Observed objects of the desired hosts, by host and name."""

    obs: dict[str, HostObservation]
    states: dict[str, HostState] = field(default_factory=dict)
    copies: dict[str, list[Copy]] = field(default_factory=dict)
    """Domain name -> its copies on desired hosts, in host name order."""
    networks: dict[tuple[str, str], NetworkState] = field(default_factory=dict)
    pools: dict[tuple[str, str], PoolState] = field(default_factory=dict)
    volumes: dict[tuple[str, str, str], VolumeState] = field(default_factory=dict)
    """(host, pool, volume) -> volume."""
    volume_hosts: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    """(pool, volume) -> hosts where it is observed, in name order."""
    undesired_copies: dict[str, str] = field(default_factory=dict)
    """Domain name -> an observed host that is not desired where it may still run."""

    def reachable(self, host: str) -> bool:
        """Return True when the host's agent answered the last read and its state is known."""
        obs = self.obs.get(host)
        return obs is not None and obs.reachable and host in self.states

    def migration_uri(self, host: str) -> str | None:
        state = self.states.get(host)
        return state.migration_uri if state else None


def index_observed(
    observed: Observed, hosts: list[str], shared_pools: frozenset[str] = frozenset()
) -> ObservedIndex:
    """Return the index of what `observed` says about the desired `hosts` (sorted).

    A shared pool holds the same volumes on every host, so they are indexed once, from
    the first answering host that listed them (else the first that listed them): one
    host reports a shared pool's volumes (controller.observe picks it), the others
    leave them out (`volumes_listed` False), and a fleet of 1,000 hosts neither reads
    nor indexes each shared volume 1,000 times.
    """
    index = ObservedIndex(obs={})
    reader: dict[str, str] = {}
    for host in sorted(hosts):
        obs = observed.hosts.get(host) or HostObservation(name=host, reachable=False)
        index.obs[host] = obs
        state = obs.state
        if state is None:
            continue
        index.states[host] = state
        for domain in state.domains:
            index.copies.setdefault(domain.name, []).append(Copy(host, domain))
        for net in state.networks:
            index.networks[(host, net.name)] = net
        for pool in state.pools:
            index.pools[(host, pool.name)] = pool
            if pool.name in shared_pools:
                if not pool.volumes_listed:
                    continue
                current = reader.get(pool.name)
                if current is None or (obs.reachable and not index.obs[current].reachable):
                    reader[pool.name] = host
                continue
            _index_volumes(index, host, pool)
    for pool_name, host in reader.items():
        _index_volumes(index, host, index.pools[(host, pool_name)])
    desired = set(hosts)
    for host in sorted(set(observed.hosts) - desired):
        state = observed.hosts[host].state
        for domain in state.domains if state is not None else ():
            if domain.state in ACTIVE_STATES:
                index.undesired_copies.setdefault(domain.name, host)
    return index


def _index_volumes(index: ObservedIndex, host: str, pool: PoolState) -> None:
    for vol in pool.volumes:
        index.volumes[(host, pool.name, vol.name)] = vol
        index.volume_hosts.setdefault((pool.name, vol.name), []).append(host)
