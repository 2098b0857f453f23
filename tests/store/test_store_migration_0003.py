"""Migration 0003: the controller's lease renewal columns go, every observation stays.

A store written by a controller that still renewed the hosts' leases (revision 0002)
opens under the etcd arbiter with its observed rows whole, minus the lease bookkeeping
(the leases now live in etcd), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from conftest import FakeClock
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from controller.store import Store
from controller.store.migrate import alembic_config, current_revision
from controller.store.observed import material_hash
from controller.store.types import JSONDoc, UTCDateTime

LEASE_COLUMNS = {"lease_sent_at", "lease_acked_at", "lease_ttl_s", "lease_epoch"}
SEEN = datetime(2026, 1, 1, 11, 0, tzinfo=UTC)
FENCED = datetime(2026, 1, 1, 11, 30, tzinfo=UTC)
STATE = {"hostname": "h1", "domains": [{"name": "web-1", "state": "running"}]}


def _engine(url: str) -> sa.Engine:
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(parsed.render_as_string(hide_password=False))


def _migrate_to(engine: sa.Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def _columns(engine: sa.Engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("observed")}


def test_0003_drops_the_lease_columns_and_keeps_the_observations(
    db_url: str, open_db: Callable[[], Store], clock: FakeClock
) -> None:
    engine = _engine(db_url)
    try:
        _migrate_to(engine, "0002")
        assert _columns(engine) >= LEASE_COLUMNS
        old = sa.table(
            "observed",
            sa.column("host"),
            sa.column("state", JSONDoc),
            sa.column("state_hash"),
            sa.column("reachable"),
            sa.column("last_seen", UTCDateTime()),
            sa.column("last_error"),
            sa.column("power_fenced_at", UTCDateTime()),
            sa.column("updated_at", UTCDateTime()),
            sa.column("lease_sent_at", UTCDateTime()),
            sa.column("lease_acked_at", UTCDateTime()),
            sa.column("lease_ttl_s"),
            sa.column("lease_epoch"),
        )
        with engine.begin() as conn:
            conn.execute(
                old.insert(),
                [
                    {"host": "h1", "state": STATE, "state_hash": material_hash(STATE),
                     "reachable": False, "last_seen": SEEN, "last_error": "no route to host",
                     "power_fenced_at": FENCED, "updated_at": FENCED,
                     "lease_sent_at": SEEN, "lease_acked_at": SEEN, "lease_ttl_s": 10,
                     "lease_epoch": 3},
                    {"host": "h2", "state": None, "state_hash": None, "reachable": True,
                     "last_seen": SEEN, "last_error": None, "power_fenced_at": None,
                     "updated_at": SEEN, "lease_sent_at": None, "lease_acked_at": None,
                     "lease_ttl_s": None, "lease_epoch": 0},
                ],
            )  # fmt: skip

        store = open_db()  # migrates to the head

        assert current_revision(engine) == "0003"
        assert _columns(engine).isdisjoint(LEASE_COLUMNS)
        h1, h2 = store.list_observed()
        assert (h1.host, h1.reachable, h1.state, h1.last_seen, h1.last_error) == (
            "h1",
            False,
            STATE,
            SEEN,
            "no route to host",
        )
        assert h1.power_fenced_at == FENCED
        assert (h2.host, h2.reachable, h2.state, h2.power_fenced_at) == ("h2", True, None, None)
        # The migrated table takes new observations as a fresh one does.
        assert store.put_observed("h2", reachable=True, state={"hostname": "h2"}) is True
        assert store.get_observed("h2").last_seen == clock.now
    finally:
        engine.dispose()


def test_0003_downgrades_to_empty_lease_columns(db_url: str, open_db: Callable[[], Store]) -> None:
    store = open_db()
    store.put_observed("h1", reachable=True, state={"hostname": "h1"})
    engine = _engine(db_url)
    try:
        config = alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0002")
        assert _columns(engine) >= LEASE_COLUMNS
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT host, lease_sent_at, lease_epoch FROM observed")
            ).one()
        assert tuple(row) == ("h1", None, 0)
    finally:
        engine.dispose()
