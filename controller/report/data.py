"""What a report shows, gathered from the warehouse and the store (pure helpers + `gather`)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from controller.history.model import Period, Rollup, Subject
from controller.history.warehouse import Warehouse
from controller.store import EventRecord, Store

TOP_VMS = 10
_SINCE = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class ReportInputError(ValueError):
    """A report option is malformed; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def parse_since(value: str) -> timedelta:
    """Return the window of "30m", "12h", "7d" or "2w"; ReportInputError otherwise."""
    match = _SINCE.match(value.strip())
    if not match or int(match.group(1)) == 0:
        raise ReportInputError("--since", f'expected a duration like "7d" or "12h", got {value!r}')
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@dataclass(frozen=True)
class ReportData:
    """A report's content: the window, host utilisation series, top VMs, events, availability."""

    start: datetime
    end: datetime
    host_series: dict[str, list[Rollup]]
    top_vms: list[Rollup]
    events_per_day: list[tuple[date, int, int]]
    availability: list[tuple[str, float, int]]


def host_series(rollups: Iterable[Rollup]) -> dict[str, list[Rollup]]:
    """Return each host's hourly roll-ups in time order."""
    series: dict[str, list[Rollup]] = {}
    for r in sorted(rollups, key=lambda r: (r.name, r.start)):
        if r.subject is Subject.HOST:
            series.setdefault(r.name, []).append(r)
    return series


def top_vms(daily: Iterable[Rollup], limit: int = TOP_VMS) -> list[Rollup]:
    """Return one summary per VM over the window (average CPU weighted by samples), busiest first.

    The result's cpu_avg is the window's average, cpu_max its maximum; start is the first day.
    """
    by_vm: dict[str, list[Rollup]] = {}
    for r in daily:
        if r.subject is Subject.VM:
            by_vm.setdefault(r.name, []).append(r)
    summaries = []
    for name, days in by_vm.items():
        weighted = [(r.cpu_avg, r.samples) for r in days if r.cpu_avg is not None and r.samples]
        total = sum(n for _, n in weighted)
        avg = sum(v * n for v, n in weighted) / total if total else None
        maxima = [r.cpu_max for r in days if r.cpu_max is not None]
        first = min(days, key=lambda r: r.start)
        summaries.append(
            Rollup(
                period=first.period,
                subject=Subject.VM,
                name=name,
                start=first.start,
                samples=sum(r.samples for r in days),
                running=sum(r.running for r in days),
                cpu_avg=avg,
                cpu_max=max(maxima) if maxima else None,
                memory_avg=None,
                memory_max=max(
                    (r.memory_max for r in days if r.memory_max is not None), default=None
                ),
                io_avg=None,
                io_max=None,
                net_avg=None,
                net_max=None,
            )
        )
    summaries.sort(key=lambda r: (-(r.cpu_avg or 0.0), r.name))
    return summaries[:limit]


def events_per_day(
    events: Iterable[EventRecord], start: datetime, end: datetime
) -> list[tuple[date, int, int]]:
    """Return (day, Normal count, Warning count) for every day of the window, repeats counted."""
    normal: Counter[date] = Counter()
    warning: Counter[date] = Counter()
    for e in events:
        if start <= e.last_seen < end:
            (warning if e.type == "Warning" else normal)[e.last_seen.date()] += e.count
    days = []
    day = start.date()
    while day <= (end - timedelta(microseconds=1)).date():
        days.append((day, normal[day], warning[day]))
        day += timedelta(days=1)
    return days


def availability(daily: Iterable[Rollup], ha_vms: Sequence[str]) -> list[tuple[str, float, int]]:
    """Return (VM, share of samples running, HA restarts) for each HA VM over the window."""
    rows = []
    for name in sorted(ha_vms):
        days = [r for r in daily if r.subject is Subject.VM and r.name == name]
        samples = sum(r.samples for r in days)
        running = sum(r.running for r in days)
        restarts = sum(r.counts.ha_restarts for r in days)
        rows.append((name, running / samples if samples else 0.0, restarts))
    return rows


def gather(store: Store, warehouse: Warehouse, start: datetime, end: datetime) -> ReportData:
    """Return the report of [start, end) from stored roll-ups, events and VM specs."""
    hourly = warehouse.rollups(Period.HOUR, start, end)
    daily = warehouse.rollups(
        Period.DAY, start - timedelta(days=1) + timedelta(microseconds=1), end
    )
    daily = [r for r in daily if r.start + timedelta(days=1) > start]
    ha = [
        o.name
        for o in store.list(kind="VirtualMachine").items
        if o.obj.spec.ha is not None and o.obj.spec.ha.enabled
    ]
    events = store.list_events(since=start, limit=1_000_000)
    return ReportData(
        start=start,
        end=end,
        host_series=host_series(hourly),
        top_vms=top_vms(daily),
        events_per_day=events_per_day(events, start, end),
        availability=availability(daily, ha),
    )
