"""The history tables' reads and writes (the I/O shell around rollup.py and counting.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, select
from sqlalchemy.engine import Engine

from controller.history import tables
from controller.history.counting import Occurrence, count_occurrences, occurrences_of_event
from controller.history.model import Counts, Period, Rollup, Sample, Subject
from controller.history.rollup import PERIOD_LENGTH, rollup_samples
from controller.store import Store
from controller.store.engine import WRITE_OPTION

MIGRATE_VM = "MigrateVM"
_SAMPLE_FIELDS = (
    "host",
    "cpu_pct",
    "memory_pct",
    "memory_mib",
    "io_bps",
    "net_bps",
    "config_version",
)
_ROLLUP_FIELDS = (
    "cpu_avg",
    "cpu_max",
    "memory_avg",
    "memory_max",
    "io_avg",
    "io_max",
    "net_avg",
    "net_max",
)


def _sample_row(s: Sample) -> dict[str, Any]:
    row = {"subject": s.subject.value, "name": s.name, "at": s.at, "running": int(s.running)}
    row.update({f: getattr(s, f) for f in _SAMPLE_FIELDS})
    return row


def _sample_of(row: Any) -> Sample:
    m = row._mapping
    return Sample(
        Subject(m["subject"]),
        m["name"],
        m["at"],
        running=bool(m["running"]),
        **{f: m[f] for f in _SAMPLE_FIELDS},
    )


def _rollup_row(r: Rollup) -> dict[str, Any]:
    row = {
        "period": r.period.value,
        "subject": r.subject.value,
        "name": r.name,
        "start": r.start,
        "samples": r.samples,
        "running": r.running,
        "ha_restarts": r.counts.ha_restarts,
        "migrations": r.counts.migrations,
        "failures": r.counts.failures,
    }
    row.update({f: getattr(r, f) for f in _ROLLUP_FIELDS})
    return row


def _rollup_of(row: Any) -> Rollup:
    m = row._mapping
    return Rollup(
        period=Period(m["period"]),
        subject=Subject(m["subject"]),
        name=m["name"],
        start=m["start"],
        samples=m["samples"],
        running=m["running"],
        counts=Counts(m["ha_restarts"], m["migrations"], m["failures"]),
        **{f: m[f] for f in _ROLLUP_FIELDS},
    )


def _target_name(target: Any) -> tuple[str, str] | None:
    if isinstance(target, dict):
        return target.get("kind", ""), target.get("name", "")
    if isinstance(target, str) and "/" in target:
        kind, _, name = target.partition("/")
        return kind, name
    return None


class Warehouse:
    """Samples and roll-ups in the store's database (tables history_*, revision 0002)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._engine: Engine = store.engine
        self._writer = self._engine.execution_options(**{WRITE_OPTION: True})

    def add_samples(self, samples: Iterable[Sample]) -> int:
        """Store samples (a repeated (subject, name, at) replaces the earlier); return how many."""
        rows = [_sample_row(s) for s in samples]
        if not rows:
            return 0
        by_instant: dict[datetime, set[str]] = {}
        for row in rows:
            by_instant.setdefault(row["at"], set()).add(row["name"])
        c = tables.samples.c
        with self._writer.begin() as conn:
            for at, names in by_instant.items():
                conn.execute(delete(tables.samples).where(and_(c.at == at, c.name.in_(names))))
            conn.execute(insert(tables.samples), rows)
        return len(rows)

    def samples(
        self,
        start: datetime,
        end: datetime,
        subject: Subject | None = None,
        name: str | None = None,
    ) -> list[Sample]:
        """Return raw samples with start <= at < end, by (subject, name, at)."""
        c = tables.samples.c
        query = select(tables.samples).where(c.at >= start, c.at < end)
        if subject is not None:
            query = query.where(c.subject == subject.value)
        if name is not None:
            query = query.where(c.name == name)
        query = query.order_by(c.subject, c.name, c.at)
        with self._engine.connect() as conn:
            return [_sample_of(r) for r in conn.execute(query)]

    def occurrences(self, start: datetime, end: datetime) -> list[Occurrence]:
        """Return the HA restarts, failures (events) and migrations (plans) in [start, end)."""
        found: list[Occurrence] = []
        for event in self.store.list_events(since=start, limit=100_000):
            if event.last_seen >= end:
                continue
            occ = occurrences_of_event(
                event.kind, event.name, event.type, event.reason, event.last_seen, event.count
            )
            if occ is not None:
                found.append(occ)
        for plan in self.store.list_plans(limit=100_000):
            if plan.created_at >= end:
                continue
            if plan.created_at < start:
                break
            for action, outcome in zip(plan.actions, plan.outcomes, strict=True):
                ref = _target_name(action.get("target"))
                if action.get("type") != MIGRATE_VM or ref is None or not outcome:
                    continue
                if outcome.ok and start <= outcome.at < end:
                    found.append(Occurrence(ref[0], ref[1], outcome.at, "migration"))
        return found

    def roll_up(self, period: Period, start: datetime) -> list[Rollup]:
        """Compute and store the roll-ups of the period beginning at `start`; return them.

        Repeating it replaces the period's roll-ups with the same values (idempotent).
        """
        return self.roll_up_many(period, [start])

    def roll_up_many(self, period: Period, starts: Sequence[datetime]) -> list[Rollup]:
        """Roll up every period beginning at one of `starts` in one read and one write.

        Returns the roll-ups written; each period's earlier roll-ups are replaced.
        """
        if not starts:
            return []
        length = PERIOD_LENGTH[period]
        first, end = min(starts), max(starts) + length
        wanted = set(starts)
        rollups = [
            r
            for r in rollup_samples(
                self.samples(first, end),
                period,
                count_occurrences(self.occurrences(first, end), period),
            )
            if r.start in wanted
        ]
        with self._writer.begin() as conn:
            conn.execute(
                delete(tables.rollups).where(
                    tables.rollups.c.period == period.value,
                    tables.rollups.c.start.in_(sorted(wanted)),
                )
            )
            if rollups:
                conn.execute(insert(tables.rollups), [_rollup_row(r) for r in rollups])
        return rollups

    def rollups(
        self,
        period: Period,
        start: datetime,
        end: datetime,
        subject: Subject | None = None,
        name: str | None = None,
    ) -> list[Rollup]:
        """Return stored roll-ups of `period` starting in [start, end), by subject, name, start."""
        c = tables.rollups.c
        query = select(tables.rollups).where(
            c.period == period.value, c.start >= start, c.start < end
        )
        if subject is not None:
            query = query.where(c.subject == subject.value)
        if name is not None:
            query = query.where(c.name == name)
        query = query.order_by(c.subject, c.name, c.start)
        with self._engine.connect() as conn:
            return [_rollup_of(r) for r in conn.execute(query)]

    def latest_rollup(self, period: Period) -> datetime | None:
        """Return the start of the newest stored roll-up of `period` (None: none yet)."""
        c = tables.rollups.c
        query = select(c.start).where(c.period == period.value).order_by(c.start.desc()).limit(1)
        with self._engine.connect() as conn:
            return conn.execute(query).scalar_one_or_none()

    def oldest_sample(self) -> datetime | None:
        """Return the time of the oldest raw sample (None: none)."""
        query = select(tables.samples.c.at).order_by(tables.samples.c.at).limit(1)
        with self._engine.connect() as conn:
            return conn.execute(query).scalar_one_or_none()

    def prune_samples(self, before: datetime) -> int:
        """Delete raw samples older than `before`; return how many."""
        with self._writer.begin() as conn:
            result = conn.execute(delete(tables.samples).where(tables.samples.c.at < before))
            return result.rowcount or 0


def rollups_json(rollups: Sequence[Rollup]) -> list[dict[str, Any]]:
    """Return roll-ups as the API shows them."""
    return [
        {
            "period": r.period.value,
            "subject": r.subject.value,
            "name": r.name,
            "start": r.start.isoformat(),
            "samples": r.samples,
            "availability": r.availability,
            "cpuAvg": r.cpu_avg,
            "cpuMax": r.cpu_max,
            "memoryAvg": r.memory_avg,
            "memoryMax": r.memory_max,
            "ioAvg": r.io_avg,
            "ioMax": r.io_max,
            "netAvg": r.net_avg,
            "netMax": r.net_max,
            "haRestarts": r.counts.ha_restarts,
            "migrations": r.counts.migrations,
            "failures": r.counts.failures,
        }
        for r in rollups
    ]
