"""PostgreSQL for tests: the server at 127.0.0.1:5432 (database `test`), a fresh schema each.

`make setup` installs and starts it (scripts/setup-postgres.sh); a test that needs it and
finds no server fails, naming it (tests/helpers/services.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("CORRAL_TEST_PG_URL", "postgresql://127.0.0.1:5432/test")

_problem: list[str] = []


def libpq(url: str) -> str:
    """Return `url` as psycopg takes it (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def pg_unreachable() -> str | None:
    """Return why PostgreSQL cannot be used (None when it answers); checked once a session."""
    if not _problem:
        try:
            psycopg.connect(libpq(PG_URL), connect_timeout=3).close()
            _problem.append("")
        except psycopg.Error as exc:
            _problem.append(f"PostgreSQL unreachable at {PG_URL}: {exc}")
    return _problem[0] or None


@contextmanager
def fresh_schema(prefix: str, *, tag_connections: bool = False) -> Iterator[str]:
    """Yield a store URL whose search_path is a new schema; drop the schema afterwards.

    With `tag_connections`, the URL's connections carry the schema name as
    application_name, so a test can terminate exactly its own connections.
    """
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq(PG_URL), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    query = {"options": f"-csearch_path={schema}"}
    if tag_connections:
        query["application_name"] = schema
    try:
        yield make_url(PG_URL).update_query_dict(query).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq(PG_URL), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
