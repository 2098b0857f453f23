"""Opening a store migrates it; again is a no-op; a bad URL is a clear StoreUnavailable."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from store_objects import vm

import controller.history.tables  # noqa: F401  (puts history_* on the store's metadata)
from controller.store import Store, StoreUnavailable, open_store
from controller.store.migrate import VERSION_TABLE, current_revision, head_revision
from controller.store.tables import metadata


def _engine_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def test_opening_twice_keeps_data_and_schema(open_db: Callable[[], Store], db_url: str) -> None:
    first = open_db()
    first.put(vm("web-1"), "api")
    second = open_db()
    assert second.get("VirtualMachine", "web-1").resource_version == 1
    engine = create_engine(_engine_url(db_url))
    try:
        assert current_revision(engine) == head_revision() == "0003"
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_models(open_db: Callable[[], Store], db_url: str) -> None:
    open_db()
    engine = create_engine(_engine_url(db_url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"version_table": VERSION_TABLE, "compare_type": True}
            )
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_controllers_starting_together_migrate_safely(db_url: str) -> None:
    """Three controllers (each its own engine and connection pool) open a new database at once."""
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def start(name: str) -> None:
        try:
            barrier.wait()
            store = open_store(db_url)
            store.put(vm(name), "api")
            store.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(f"p{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = open_store(db_url)
    try:
        assert [o.name for o in store.list().items] == ["p0", "p1", "p2"]
    finally:
        store.close()


def test_unreachable_postgres_names_the_url_without_the_password() -> None:
    url = "postgresql://corral:s3cret-pw@127.0.0.1:1/corral"
    with pytest.raises(StoreUnavailable) as info:
        open_store(url)
    message = str(info.value)
    assert message.startswith(
        "database unavailable at postgresql://corral:***@127.0.0.1:1/corral: "
    )
    assert "s3cret-pw" not in message
    assert info.value.url == "postgresql://corral:***@127.0.0.1:1/corral"


def test_an_unwritable_sqlite_location_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the state dir should be")
    with pytest.raises(StoreUnavailable) as info:
        open_store(f"sqlite:///{blocker / 'state' / 'corral.db'}")
    assert str(blocker) in str(info.value)


def test_the_default_is_sqlite_under_the_state_dir(tmp_path: Path) -> None:
    store = open_store(state_dir=tmp_path / "state")
    try:
        assert store.dialect == "sqlite"
        assert store.url == f"sqlite:///{tmp_path / 'state' / 'corral.db'}"
        assert (tmp_path / "state" / "corral.db").exists()
    finally:
        store.close()
