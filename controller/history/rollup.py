"""Pure roll-ups: samples -> hourly and daily aggregates; retention cut-offs. No I/O."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from controller.history.model import Counts, Period, Rollup, Sample, Subject

PERIOD_LENGTH = {Period.HOUR: timedelta(hours=1), Period.DAY: timedelta(days=1)}


def period_start(at: datetime, period: Period) -> datetime:
    """Return the start (UTC) of the hour or day holding `at`."""
    start = at.replace(minute=0, second=0, microsecond=0)
    return start.replace(hour=0) if period is Period.DAY else start


def _avg_max(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return sum(values) / len(values), max(values)


def rollup_samples(
    samples: Iterable[Sample],
    period: Period,
    counts: Mapping[tuple[Subject, str, datetime], Counts] | None = None,
) -> list[Rollup]:
    """Return one Rollup per (subject, name, period start), sorted by those keys.

    Averages and maxima are over the samples that carry the value; `counts` adds the
    events counted for the same key (a period with counts but no samples still appears).
    """
    groups: dict[tuple[Subject, str, datetime], list[Sample]] = defaultdict(list)
    for sample in samples:
        groups[(sample.subject, sample.name, period_start(sample.at, period))].append(sample)
    counts = counts or {}
    for key in counts:
        groups.setdefault(key, [])
    rollups = []
    for (subject, name, start), group in sorted(groups.items()):

        def values(field: str, group: list[Sample] = group) -> list[float]:
            return [v for s in group if (v := getattr(s, field)) is not None]

        cpu = _avg_max(values("cpu_pct"))
        memory = _avg_max(values("memory_pct" if subject is Subject.HOST else "memory_mib"))
        io = _avg_max(values("io_bps"))
        net = _avg_max(values("net_bps"))
        rollups.append(
            Rollup(
                period=period,
                subject=subject,
                name=name,
                start=start,
                samples=len(group),
                running=sum(1 for s in group if s.running),
                cpu_avg=cpu[0],
                cpu_max=cpu[1],
                memory_avg=memory[0],
                memory_max=memory[1],
                io_avg=io[0],
                io_max=io[1],
                net_avg=net[0],
                net_max=net[1],
                counts=counts.get((subject, name, start), Counts()),
            )
        )
    return rollups


def closed_periods(since: datetime, now: datetime, period: Period) -> list[datetime]:
    """Return the starts of every period that began at or after `since`'s and ended by `now`."""
    start = period_start(since, period)
    step = PERIOD_LENGTH[period]
    starts = []
    while start + step <= now:
        starts.append(start)
        start += step
    return starts


def retention_cutoff(now: datetime, keep: timedelta) -> datetime:
    """Return the instant before which raw samples are deleted (an hour boundary).

    Rounded down to the hour so that an hour is never half deleted before it is rolled up.
    """
    return period_start(now - keep, Period.HOUR)
