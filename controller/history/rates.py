"""Pure: turn two readings of an agent's cumulative counters into per-second samples."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from agentapi import DomainStats, HostStats
from controller.history.model import Sample, Subject

RUNNING = "running"
_IDLE_KEYS = ("idle", "iowait")


def _sum(table: Mapping[str, Mapping[str, int]], keys: tuple[str, ...]) -> int:
    return sum(entry.get(k, 0) for entry in table.values() for k in keys)


def _rate(cur: int | None, prev: int | None, seconds: float) -> float | None:
    if cur is None or prev is None or seconds <= 0 or cur < prev:
        return None
    return (cur - prev) / seconds


def _busy_ns(stats: HostStats) -> int | None:
    if not stats.cpu_time_ns:
        return None
    return sum(v for k, v in stats.cpu_time_ns.items() if k not in _IDLE_KEYS)


def host_sample(
    host: str, at: datetime, cur: HostStats, prev: HostStats | None, config_version: int | None
) -> Sample:
    """Return the host's sample: CPU busy share of all its CPUs, memory used share."""
    seconds = cur.at - prev.at if prev else 0.0
    busy = _rate(_busy_ns(cur), _busy_ns(prev) if prev else None, seconds)
    cpu_pct = None if busy is None else min(100.0, busy / 1e9 / max(cur.cpus, 1) * 100)
    memory_pct = memory_mib = None
    if cur.memory_total_kib and cur.memory_free_kib is not None:
        used = cur.memory_total_kib - cur.memory_free_kib
        memory_pct = used / cur.memory_total_kib * 100
        memory_mib = used / 1024
    return Sample(
        Subject.HOST,
        host,
        at,
        running=True,
        host=host,
        cpu_pct=cpu_pct,
        memory_pct=memory_pct,
        memory_mib=memory_mib,
        config_version=config_version,
    )


def vm_sample(
    host: str,
    at: datetime,
    cur: DomainStats,
    prev: DomainStats | None,
    seconds: float,
    config_version: int | None,
) -> Sample:
    """Return a VM's sample from two readings `seconds` apart (rates None without `prev`)."""
    cpu = _rate(cur.cpu_time_ns, prev.cpu_time_ns if prev else None, seconds)
    cpu_pct = None if cpu is None else min(100.0, cpu / 1e9 / max(cur.vcpus or 1, 1) * 100)
    io = _rate(
        _sum(cur.block, ("rd.bytes", "wr.bytes")),
        _sum(prev.block, ("rd.bytes", "wr.bytes")) if prev else None,
        seconds,
    )
    net = _rate(
        _sum(cur.net, ("rx.bytes", "tx.bytes")),
        _sum(prev.net, ("rx.bytes", "tx.bytes")) if prev else None,
        seconds,
    )
    kib = cur.memory_rss_kib or cur.balloon_current_kib
    return Sample(
        Subject.VM,
        cur.name,
        at,
        running=cur.state == RUNNING,
        host=host,
        cpu_pct=cpu_pct,
        memory_mib=None if kib is None else kib / 1024,
        io_bps=io,
        net_bps=net,
        config_version=config_version,
    )
