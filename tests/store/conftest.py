"""The store contract suite runs every test on SQLite (a temp file) and on PostgreSQL.

PostgreSQL: each test gets its own fresh schema in database `test` at 127.0.0.1:5432
(override with CORRAL_TEST_PG_URL); the PostgreSQL variants skip, with the reason,
only when the server cannot be reached.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from controller.store import Store, open_store

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


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


_pg_problem: list[str] = []


def pg_unreachable() -> str | None:
    """Return why PostgreSQL cannot be used (None when it answers); checked once."""
    if not _pg_problem:
        try:
            psycopg.connect(_libpq(PG_URL), connect_timeout=3).close()
            _pg_problem.append("")
        except psycopg.Error as exc:
            _pg_problem.append(f"PostgreSQL unreachable at {PG_URL}: {exc}")
    return _pg_problem[0] or None


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """Yield a URL whose search_path is a fresh schema; drop the schema afterwards."""
    problem = pg_unreachable()
    if problem:
        pytest.skip(problem)
    schema = f"corral_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(PG_URL), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(PG_URL), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


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
