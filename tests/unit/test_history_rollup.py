"""Pure roll-ups: known samples give exact hourly and daily aggregates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.history.counting import Occurrence, count_occurrences, occurrences_of_event
from controller.history.model import Counts, Period, Rollup, Sample, Subject
from controller.history.rollup import (
    closed_periods,
    period_start,
    retention_cutoff,
    rollup_samples,
)

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def vm(minute: int, cpu: float | None, mib: float, running: bool = True, hour: int = 0) -> Sample:
    at = T0 + timedelta(hours=hour, minutes=minute)
    return Sample(Subject.VM, "web-1", at, running, "h1", cpu_pct=cpu, memory_mib=mib, io_bps=10.0)


@pytest.mark.parametrize(
    ("at", "period", "start"),
    [
        pytest.param(T0 + timedelta(minutes=59, seconds=59), Period.HOUR, T0, id="hour-end"),
        pytest.param(
            T0 + timedelta(hours=13), Period.DAY, datetime(2026, 3, 2, tzinfo=UTC), id="day"
        ),
        pytest.param(T0, Period.HOUR, T0, id="hour-boundary"),
    ],
)
def test_period_start(at: datetime, period: Period, start: datetime) -> None:
    assert period_start(at, period) == start


def test_hourly_rollup_is_exact() -> None:
    samples = [
        vm(0, None, 100),
        vm(20, 30.0, 200),
        vm(40, 60.0, 300, running=False),
        vm(5, 90.0, 400, hour=1),
    ]
    counts = {(Subject.VM, "web-1", T0): Counts(ha_restarts=1, migrations=2, failures=0)}
    assert rollup_samples(samples, Period.HOUR, counts) == [
        Rollup(
            Period.HOUR,
            Subject.VM,
            "web-1",
            T0,
            samples=3,
            running=2,
            cpu_avg=45.0,
            cpu_max=60.0,
            memory_avg=200.0,
            memory_max=300.0,
            io_avg=10.0,
            io_max=10.0,
            net_avg=None,
            net_max=None,
            counts=Counts(1, 2, 0),
        ),
        Rollup(
            Period.HOUR,
            Subject.VM,
            "web-1",
            T0 + timedelta(hours=1),
            samples=1,
            running=1,
            cpu_avg=90.0,
            cpu_max=90.0,
            memory_avg=400.0,
            memory_max=400.0,
            io_avg=10.0,
            io_max=10.0,
            net_avg=None,
            net_max=None,
        ),
    ]


def test_daily_rollup_spans_the_hours_and_availability_is_the_running_share() -> None:
    samples = [vm(0, 10.0, 100), vm(30, 20.0, 100, running=False), vm(0, 60.0, 400, hour=5)]
    (day,) = rollup_samples(samples, Period.DAY)
    assert (day.start, day.samples, day.running) == (datetime(2026, 3, 2, tzinfo=UTC), 3, 2)
    assert (day.cpu_avg, day.cpu_max, day.memory_avg, day.memory_max) == (30.0, 60.0, 200.0, 400.0)
    assert day.availability == pytest.approx(2 / 3)


def test_host_memory_is_the_used_share() -> None:
    samples = [
        Sample(Subject.HOST, "h1", T0, True, "h1", cpu_pct=50.0, memory_pct=40.0, memory_mib=4096),
        Sample(
            Subject.HOST, "h1", T0 + timedelta(minutes=1), True, "h1", cpu_pct=70.0, memory_pct=60.0
        ),
    ]
    (hour,) = rollup_samples(samples, Period.HOUR)
    assert (hour.cpu_avg, hour.cpu_max, hour.memory_avg, hour.memory_max) == (
        60.0,
        70.0,
        50.0,
        60.0,
    )


def test_counts_alone_make_a_period() -> None:
    occ = [
        occurrences_of_event("VirtualMachine", "db", "Normal", "HARestart", T0, 1),
        occurrences_of_event("VirtualMachine", "db", "Warning", "ActionFailed", T0, 3),
        occurrences_of_event("VirtualMachine", "db", "Normal", "Created", T0, 1),
        Occurrence("VirtualMachine", "db", T0 + timedelta(minutes=3), "migration"),
        Occurrence("Network", "lan", T0, "failure"),
    ]
    counts = count_occurrences([o for o in occ if o is not None], Period.HOUR)
    assert counts == {(Subject.VM, "db", T0): Counts(ha_restarts=1, migrations=1, failures=3)}
    (only,) = rollup_samples([], Period.HOUR, counts)
    assert (only.samples, only.availability, only.cpu_avg, only.counts.failures) == (
        0,
        0.0,
        None,
        3,
    )


def test_closed_periods_and_retention() -> None:
    now = T0 + timedelta(hours=2, minutes=30)
    assert closed_periods(T0 + timedelta(minutes=10), now, Period.HOUR) == [
        T0,
        T0 + timedelta(hours=1),
    ]
    assert closed_periods(T0, now, Period.DAY) == []
    assert retention_cutoff(now, timedelta(hours=1)) == T0 + timedelta(hours=1)
