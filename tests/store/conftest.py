"""The store contract suite runs every test on SQLite (a temp file) and on PostgreSQL.

PostgreSQL: each test gets its own fresh schema in database `test` at 127.0.0.1:5432
(override with CORRAL_TEST_PG_URL); the PostgreSQL variants skip, with the reason,
only when the server cannot be reached.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.store import Store, open_store
from tests.helpers.pg import fresh_schema, pg_unreachable

PG_URL = os.environ.get("CORRAL_TEST_PG_URL", "postgresql://127.0.0.1:5432/test")


class FakeClock:
    """A clock the test moves by hand; starts at a fixed UTC instant."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """Yield a URL whose search_path is a fresh schema; drop the schema afterwards."""
    problem = pg_unreachable()
    if problem:
        pytest.skip(problem)
    with fresh_schema("corral_test") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Return a URL of an empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'corral.db'}"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def open_db(db_url: str, clock: FakeClock) -> Iterator[Callable[[], Store]]:
    """Yield a function opening another Store on the same database (closed at the end)."""
    opened: list[Store] = []

    def _open() -> Store:
        store = open_store(db_url, clock=clock)
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()


@pytest.fixture
def store(open_db: Callable[[], Store]) -> Store:
    return open_db()
