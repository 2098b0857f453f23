"""Fixtures of the fault suite: a fresh PostgreSQL schema when the server is up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.pg import fresh_schema, pg_unreachable
from tests.helpers.services import require


@pytest.fixture
def pg_url() -> Iterator[str]:
    """Yield a store URL on a fresh schema of database `test`; drop it afterwards.

    Its connections carry the schema's name as application_name, so a test can drop
    exactly its own connections and never another client's.
    """
    require("postgres", pg_unreachable())
    with fresh_schema("corral_fault", tag_connections=True) as url:
        yield url
