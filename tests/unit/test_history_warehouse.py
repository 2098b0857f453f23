"""The warehouse in a real store: known samples, events and migrations roll up exactly."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.history.model import Counts, Period, Sample, Subject
from controller.history.warehouse import Warehouse, rollups_json
from controller.store import Store, open_store

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'corral.db'}", clock=clock)
    yield store
    store.close()


def host(minutes: int, cpu: float, mem: float) -> Sample:
    at = T0 + timedelta(minutes=minutes)
    return Sample(Subject.HOST, "h1", at, True, "h1", cpu_pct=cpu, memory_pct=mem)


def test_hour_and_day_rollups_are_exact(store: Store, clock: Clock) -> None:
    warehouse = Warehouse(store)
    warehouse.add_samples([host(0, 10.0, 20.0), host(15, 30.0, 40.0), host(45, 50.0, 30.0)])
    warehouse.add_samples([host(60, 90.0, 80.0)])
    warehouse.add_samples([host(15, 20.0, 40.0)])  # the same instant again replaces it
    clock.now = T0 + timedelta(minutes=5)
    store.record_event("Host", "h1", "Warning", "AgentUnreachable", "h1 did not answer")
    clock.now = T0 + timedelta(minutes=6)
    store.record_event("VirtualMachine", "db", "Normal", "HARestart", "restarted on h2")
    plan = store.record_plan(
        [
            {"type": "MigrateVM", "target": "VirtualMachine/db", "host": "h1"},
            {"type": "MigrateVM", "target": "VirtualMachine/web", "host": "h1"},
        ],
        summary="drain h1",
    )
    store.record_outcome(plan, 0, True)
    store.record_outcome(plan, 1, False, "migration refused")

    hour = {(r.subject, r.name): r for r in warehouse.roll_up(Period.HOUR, T0)}
    assert set(hour) == {(Subject.HOST, "h1"), (Subject.VM, "db")}
    h1 = hour[(Subject.HOST, "h1")]
    assert (h1.samples, h1.cpu_avg, h1.cpu_max, h1.memory_avg, h1.memory_max) == (
        3,
        pytest.approx(80.0 / 3),
        50.0,
        30.0,
        40.0,
    )
    assert h1.counts == Counts(ha_restarts=0, migrations=0, failures=1)
    assert hour[(Subject.VM, "db")].counts == Counts(ha_restarts=1, migrations=1, failures=0)

    (day_h1, _day_db) = warehouse.roll_up(Period.DAY, datetime(2026, 3, 2, tzinfo=UTC))
    assert (day_h1.samples, day_h1.cpu_avg, day_h1.cpu_max) == (4, 42.5, 90.0)

    again = warehouse.roll_up(Period.HOUR, T0)
    assert again == warehouse.rollups(Period.HOUR, T0, T0 + timedelta(hours=1))
    assert rollups_json(again)[0]["failures"] == 1
    assert warehouse.prune_samples(T0 + timedelta(minutes=60)) == 3
    assert [s.at for s in warehouse.samples(T0, T0 + timedelta(days=1))] == [
        T0 + timedelta(minutes=60)
    ]
