"""History records: one sample of a host or VM, one rolled-up period."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Subject(StrEnum):
    HOST = "host"
    VM = "vm"


class Period(StrEnum):
    HOUR = "hour"
    DAY = "day"


@dataclass(frozen=True)
class Sample:
    """What a host or VM looked like at `at`; rates are per second over the last interval.

    `cpu_pct` is of the subject's own CPUs (a 2-vCPU VM busy on both is 100); None where
    no earlier counter existed to take a rate from.
    """

    subject: Subject
    name: str
    at: datetime
    running: bool
    host: str | None = None
    cpu_pct: float | None = None
    memory_pct: float | None = None
    memory_mib: float | None = None
    io_bps: float | None = None
    net_bps: float | None = None
    config_version: int | None = None


@dataclass(frozen=True)
class Counts:
    """Events counted in one period for one subject."""

    ha_restarts: int = 0
    migrations: int = 0
    failures: int = 0


@dataclass(frozen=True)
class Rollup:
    """Aggregates of one subject over one hour or day (None: no sample carried the value).

    `availability` is the share of samples in which the subject was running.
    """

    period: Period
    subject: Subject
    name: str
    start: datetime
    samples: int
    running: int
    cpu_avg: float | None
    cpu_max: float | None
    memory_avg: float | None
    memory_max: float | None
    io_avg: float | None
    io_max: float | None
    net_avg: float | None
    net_max: float | None
    counts: Counts = Counts()

    @property
    def availability(self) -> float:
        return self.running / self.samples if self.samples else 0.0
