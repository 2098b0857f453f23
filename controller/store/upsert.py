"""INSERT ... ON CONFLICT DO UPDATE for SQLite and PostgreSQL (same syntax on both)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def upsert(
    conn: Connection,
    table: Table,
    values: Mapping[str, Any],
    keys: Sequence[str],
    update_columns: Sequence[str],
) -> None:
    """Insert `values`, or update `update_columns` of the row whose `keys` match."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={col: statement.excluded[col] for col in update_columns},
    )
    conn.execute(statement)
