"""The store contract suite runs every test on SQLite (a temp file) and on PostgreSQL.

PostgreSQL: each test gets its own fresh schema in database `test` at 127.0.0.1:5432
(override with CORRAL_TEST_PG_URL); the PostgreSQL variants fail, naming the server,
when it cannot be reached.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from controller.store import Store, open_store
from tests.helpers.db_urls import db_url_fixtures

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


pg_schema_url, db_url = db_url_fixtures("corral_test", "pg_schema_url")


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
