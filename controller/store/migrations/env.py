"""Alembic environment: migrates the connection handed in by controller.store.migrate.

Run through `open_store` (which takes the migration lock and owns the transaction);
the alembic command line also works with `-x url=...` for writing new revisions.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from controller.store.migrate import VERSION_TABLE
from controller.store.tables import metadata

config = context.config


def _configure_and_run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _configure_and_run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    with create_engine(url).connect() as conn:
        _configure_and_run(conn)
        conn.commit()
