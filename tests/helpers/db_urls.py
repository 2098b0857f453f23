"""Fixtures that run a test on SQLite and on PostgreSQL: `db_url` and its PostgreSQL half.

A conftest takes both with `pg_url, db_url = db_url_fixtures("corral_x", "pg_url")`.
The PostgreSQL variant gets a fresh schema in database `test` (tests/helpers/pg.py) and
fails, naming the server, when it cannot be reached (tests/helpers/services.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.pg import fresh_schema, pg_unreachable
from tests.helpers.services import require


def db_url_fixtures(schema_prefix: str, pg_fixture: str) -> tuple[Callable[..., Any], ...]:
    """Return the fixtures `pg_fixture` (a fresh schema named `schema_prefix`_...) and
    `db_url` (parametrized: a SQLite file under tmp_path/state, or that schema)."""

    @pytest.fixture(name=pg_fixture)
    def pg_schema_url() -> Iterator[str]:
        """Yield a PostgreSQL URL whose search_path is a fresh schema; drop it afterwards."""
        require("postgres", pg_unreachable())
        with fresh_schema(schema_prefix) as url:
            yield url

    @pytest.fixture(
        name="db_url", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
    )
    def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
        """Return the URL of an empty store: a SQLite file, or a fresh PostgreSQL schema."""
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path / 'state' / 'corral.db'}"
        return request.getfixturevalue(pg_fixture)

    return pg_schema_url, db_url
