"""Database URLs, engines and the mapping of driver errors to Corral's store errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Engine, make_url

from controller.store.canonical import serialize_json
from controller.store.errors import StoreBusy, StoreError, StoreUnavailable

STATE_DIR_ENV = "CORRAL_STATE_DIR"
DB_FILE = "corral.db"
PG_CONNECT_TIMEOUT_S = 5
SQLITE_BUSY_TIMEOUT_S = 30
WRITE_OPTION = "corral_write"

# SQLSTATE classes that mean "the server is not there for us", as opposed to a bad query.
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "53", "57P", "3D000", "28")
_RETRY_SQLSTATES = ("40001", "40P01", "55P03")


def default_state_dir() -> Path:
    """Return the state directory: $CORRAL_STATE_DIR, else $XDG_STATE_HOME/corral.

    XDG_STATE_HOME defaults to ~/.local/state.
    """
    if os.environ.get(STATE_DIR_ENV):
        return Path(os.environ[STATE_DIR_ENV])
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "corral"


def resolve_url(url: str | None, state_dir: Path | None = None) -> URL:
    """Return the SQLAlchemy URL for a user's `--db` value.

    None means the embedded default, a SQLite file under the state dir; a bare path
    is a SQLite file; postgres:// is read as postgresql://.
    """
    if not url:
        return make_url(f"sqlite:///{(state_dir or default_state_dir()) / DB_FILE}")
    if "://" not in url:
        return make_url(f"sqlite:///{Path(url).resolve()}")
    parsed = make_url(url)
    if parsed.drivername == "postgres":
        parsed = parsed.set(drivername="postgresql")
    return parsed


def redact(url: URL | str) -> str:
    """Return the URL as text with its password replaced by ***."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.render_as_string(hide_password=True)


def make_engine(url: URL) -> Engine:
    """Return an engine for `url`; on SQLite the file's directory is created.

    PostgreSQL URLs without a driver use psycopg 3.

    SQLite runs in WAL mode with foreign keys on; write transactions open with
    BEGIN IMMEDIATE so that two writers queue on the busy timeout instead of one
    failing when it upgrades a read lock.
    """
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url)
    if backend == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        return create_engine(
            url,
            json_serializer=serialize_json,
            pool_pre_ping=True,
            connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S},
        )
    raise StoreUnavailable(
        redact(url),
        f"unsupported database {backend!r} (use sqlite or postgresql)",
        transient=False,
    )


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        try:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            cause = f"cannot create the state directory: {exc}"
            raise StoreUnavailable(redact(url), cause, transient=False) from exc
    engine = create_engine(
        url,
        json_serializer=serialize_json,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let the "begin" hook below open transactions
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _sqlstate(exc: sa_exc.DBAPIError) -> str:
    return getattr(exc.orig, "sqlstate", None) or ""


@contextmanager
def mapped_errors(url: URL) -> Iterator[None]:
    """Translate SQLAlchemy/driver exceptions raised inside into StoreError subclasses."""
    try:
        yield
    except StoreError:
        raise
    except sa_exc.DBAPIError as exc:
        raise map_error(exc, url) from exc
    except sa_exc.SQLAlchemyError as exc:
        raise StoreError(f"store error: {exc}") from exc


def map_error(exc: sa_exc.DBAPIError, url: URL) -> StoreError:
    """Return the Corral error for a driver exception (the password never appears in it)."""
    cause = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    if url.password:
        cause = cause.replace(str(url.password), "***")
    state = _sqlstate(exc)
    if state in _RETRY_SQLSTATES or "database is locked" in cause:
        return StoreBusy(f"database busy at {redact(url)}: {cause}; retry")
    if exc.connection_invalidated or state.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES):
        return StoreUnavailable(redact(url), cause)
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError) and not state:
        return StoreUnavailable(redact(url), cause)
    return StoreError(f"database error at {redact(url)}: {cause}")
