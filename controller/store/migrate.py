"""Bring a database to the newest schema with alembic, safely when several processes start.

PostgreSQL: a transaction-scoped advisory lock serialises concurrent upgrades.
SQLite: the upgrade runs inside one BEGIN IMMEDIATE transaction, which does the same.
Running it on an up-to-date database changes nothing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from controller.store.engine import WRITE_OPTION

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "corral_schema_version"
MIGRATION_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"corral.store.migrate").digest()[:8], "big", signed=True
)
"""The PostgreSQL advisory lock key held while migrating (a stable 64-bit number)."""


def alembic_config() -> Config:
    """Return an alembic Config pointing at the store's migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """Return the newest revision id of the migrations."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """Return the revision the database is at (None when never migrated)."""
    with engine.connect() as conn:
        return MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()


def upgrade_to_head(engine: Engine) -> None:
    """Upgrade the database to the newest revision in one locked transaction."""
    if current_revision(engine) == head_revision():
        return
    config = alembic_config()
    with engine.execution_options(**{WRITE_OPTION: True}).connect() as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
