"""The whole observed state of the host in one read: capabilities, domains, networks, pools."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from typing import Any, TypeVar

import libvirt

from agentapi import DomainState, HostState
from nodeagent import __version__
from nodeagent.context import AgentContext
from nodeagent.domains import read_domain_state
from nodeagent.errors import libvirt_errors
from nodeagent.networks import read_network_state
from nodeagent.snapshots import read_domain_snapshots
from nodeagent.storage import read_pool_state

T = TypeVar("T")


@lru_cache(maxsize=8)
def parse_capabilities(xml: str) -> tuple[str, str | None]:
    """Return (arch, cpu model) of the host from capabilities XML."""
    root = ET.fromstring(xml)
    return root.findtext("host/cpu/arch", ""), root.findtext("host/cpu/model")


def _version(number: int) -> str:
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


def read_domains(ctx: AgentContext, conn: libvirt.virConnect) -> list[DomainState]:
    """Return every domain of the host, by name (one bulk state query, then per-domain XML),
    each with its snapshots."""
    states = {
        dom.UUIDString(): (stats["state.state"], stats["state.reason"])
        for dom, stats in conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE, 0)
    }
    domains = []
    for dom in conn.listAllDomains(0):
        try:
            state = read_domain_state(ctx, dom, states.get(dom.UUIDString()))
            snapshots = read_domain_snapshots(dom) if state.persistent else []
        except libvirt.libvirtError as exc:
            if exc.get_error_code() in VANISHED:
                continue  # undefined between the listing and this read: it is gone
            raise
        if snapshots:
            state = state.model_copy(update={"snapshots": snapshots})
        domains.append(state)
    return sorted(domains, key=lambda d: d.name)


VANISHED = frozenset(
    {
        libvirt.VIR_ERR_NO_DOMAIN,
        libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT,
        libvirt.VIR_ERR_NO_NETWORK,
        libvirt.VIR_ERR_NO_STORAGE_POOL,
        libvirt.VIR_ERR_NO_STORAGE_VOL,
    }
)
"""libvirt error codes of an object removed while the host state was being read."""


def _present(read: Callable[[Any], T], items: Iterable[Any]) -> Iterator[T]:
    """Yield read(item) for each item still there (skipping ones removed meanwhile)."""
    for item in items:
        try:
            yield read(item)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() not in VANISHED:
                raise


def read_host_state(ctx: AgentContext, omit_volumes: frozenset[str] = frozenset()) -> HostState:
    """Return the full observed state of the host.

    The volumes of the pools named in `omit_volumes` are left out: a shared pool holds
    the same volumes on every host, and one host reporting them is enough.
    """
    conn = ctx.connection.get()
    with libvirt_errors("reading host state"):
        arch, cpu_model = parse_capabilities(conn.getCapabilities())
        info = conn.getInfo()
        return HostState(
            hostname=conn.getHostname(),
            agent_version=__version__,
            libvirt_uri=ctx.connection.uri,
            libvirt_version=_version(conn.getLibVersion()),
            migration_uri=ctx.migration_uri,
            arch=arch or info[0],
            cpu_model=cpu_model,
            cpus=info[2],
            memory_mib=info[1],
            free_memory_mib=conn.getFreeMemory() // (1 << 20),
            domains=read_domains(ctx, conn),
            networks=sorted(
                _present(read_network_state, conn.listAllNetworks(0)), key=lambda n: n.name
            ),
            pools=sorted(
                _present(
                    lambda p: read_pool_state(p, p.name() not in omit_volumes),
                    conn.listAllStoragePools(0),
                ),
                key=lambda p: p.name,
            ),
            hooks=ctx.hooks.available(),
            lease=ctx.lease.state(term=ctx.terms.term if ctx.terms else 0),
            events_seq=ctx.events.last_seq,
        )
