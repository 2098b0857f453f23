"""Fixtures of the fault suite: a fresh PostgreSQL schema when the server is up."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

LIBPQ = "host=127.0.0.1 port=5432 dbname=test"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """Yield a store URL on a fresh schema of database `test`; drop it afterwards.

    Its connections carry the schema's name as application_name, so a test can drop
    exactly its own connections and never another client's.
    """
    try:
        psycopg.connect(LIBPQ, connect_timeout=3).close()
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    schema = f"corral_fault_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(LIBPQ, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield (
            f"postgresql://127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
            f"&application_name={schema}"
        )
    finally:
        with psycopg.connect(LIBPQ, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
