"""Fixtures of the fault suite: a fresh PostgreSQL schema when the server is up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.pg import fresh_schema, pg_unreachable


@pytest.fixture
def pg_url() -> Iterator[str]:
    """Yield a store URL on a fresh schema of database `test`; drop it afterwards.

    Its connections carry the schema's name as application_name, so a test can drop
    exactly its own connections and never another client's.
    """
    problem = pg_unreachable()
    if problem:
        pytest.skip(problem)
    with fresh_schema("corral_fault", tag_connections=True) as url:
        yield url
