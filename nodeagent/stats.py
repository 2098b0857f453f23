"""Host and domain statistics (domstats); counters a driver does not report stay None."""

from __future__ import annotations

import time
from typing import Any

import libvirt

from agentapi import DomainStats, HostStats
from nodeagent.context import AgentContext
from nodeagent.errors import libvirt_errors
from nodeagent.vocab import domain_state_name

_STATS = (
    libvirt.VIR_DOMAIN_STATS_STATE
    | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
    | libvirt.VIR_DOMAIN_STATS_BALLOON
    | libvirt.VIR_DOMAIN_STATS_VCPU
    | libvirt.VIR_DOMAIN_STATS_BLOCK
    | libvirt.VIR_DOMAIN_STATS_INTERFACE
)
_BLOCK_KEYS = ("rd.bytes", "rd.reqs", "wr.bytes", "wr.reqs", "allocation", "capacity")
_NET_KEYS = ("rx.bytes", "rx.pkts", "tx.bytes", "tx.pkts", "rx.errs", "tx.errs")


def domain_stats_from_record(
    name: str, record: dict[str, Any], info: list[int] | None = None
) -> DomainStats:
    """Return DomainStats from one getAllDomainStats record (`info`: virDomainGetInfo fallback)."""

    def _int(key: str) -> int | None:
        return int(record[key]) if key in record else None

    block: dict[str, dict[str, int]] = {}
    for i in range(int(record.get("block.count", 0))):
        disk = record.get(f"block.{i}.name", str(i))
        block[disk] = {
            k: int(record[f"block.{i}.{k}"]) for k in _BLOCK_KEYS if f"block.{i}.{k}" in record
        }
    net: dict[str, dict[str, int]] = {}
    for i in range(int(record.get("net.count", 0))):
        iface = record.get(f"net.{i}.name", str(i))
        net[iface] = {k: int(record[f"net.{i}.{k}"]) for k in _NET_KEYS if f"net.{i}.{k}" in record}
    cpu_time = _int("cpu.time")
    vcpus = _int("vcpu.current")
    balloon = _int("balloon.current")
    if info is not None:
        cpu_time = cpu_time if cpu_time is not None else info[4]
        vcpus = vcpus if vcpus is not None else info[3]
        balloon = balloon if balloon is not None else info[2]
    return DomainStats(
        name=name,
        state=domain_state_name(int(record.get("state.state", 0))),
        cpu_time_ns=cpu_time,
        vcpus=vcpus,
        balloon_current_kib=balloon,
        balloon_maximum_kib=_int("balloon.maximum"),
        memory_rss_kib=_int("balloon.rss"),
        block=block,
        net=net,
    )


def read_stats(ctx: AgentContext) -> HostStats:
    """Return host CPU/memory counters and every domain's statistics."""
    conn = ctx.connection.get()
    with libvirt_errors("reading statistics"):
        domains = []
        for dom, record in conn.getAllDomainStats(_STATS, 0):
            info = dom.info() if "cpu.time" not in record and dom.isActive() else None
            domains.append(domain_stats_from_record(dom.name(), record, info))
        cpu: dict[str, int] = {}
        memory: dict[str, int] = {}
        try:
            cpu = conn.getCPUStats(libvirt.VIR_NODE_CPU_STATS_ALL_CPUS, 0)
        except libvirt.libvirtError:
            cpu = {}
        try:
            memory = conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS, 0)
        except libvirt.libvirtError:
            memory = {}
        return HostStats(
            at=time.time(),
            cpus=conn.getInfo()[2],
            cpu_time_ns={k: int(v) for k, v in cpu.items()},
            memory_total_kib=memory.get("total"),
            memory_free_kib=memory.get("free"),
            domains=sorted(domains, key=lambda d: d.name),
        )
