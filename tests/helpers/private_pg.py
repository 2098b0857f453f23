"""A private PostgreSQL cluster a test may stop, crash and restart at will.

The machine's server at 127.0.0.1:5432 is shared and must never be stopped; this one
lives in a temporary directory, listens on a free port of 127.0.0.1 with trust
authentication and its socket beside its data, and runs as the unprivileged
`postgres` user when the tests run as root (PostgreSQL refuses to run as root).
Tests skip only when the PostgreSQL 15 binaries are missing.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.helpers.services import require

BIN_DIR = Path(os.environ.get("CORRAL_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
START_TIMEOUT_S = 60
UNPRIVILEGED_USERS = ("postgres", "nobody")


def missing_binaries(bin_dir: Path = BIN_DIR) -> str | None:
    """Return why a private cluster cannot be made here (None when the binaries exist)."""
    missing = [n for n in ("initdb", "pg_ctl", "postgres") if not (bin_dir / n).is_file()]
    if missing:
        return f"PostgreSQL binaries missing in {bin_dir}: {', '.join(missing)}"
    return None


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PgCtlError(RuntimeError):
    """initdb or pg_ctl failed; the message carries its output and the server log's tail."""


class PrivatePostgres:
    """One throwaway cluster: `initdb` on construction, then start, stop, restart, close.

    `url(database)` is a SQLAlchemy URL on 127.0.0.1:`port`; the port stays the same
    across restarts, so a client's pooled URL keeps pointing at the server.
    """

    def __init__(self, bin_dir: Path = BIN_DIR) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="corral-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.user = _run_as()
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._pg(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "max_connections": "50",
            "shared_buffers": "16MB",
        }
        self._append_conf("".join(f"{k} = {v}\n" for k, v in settings.items()))

    def url(self, database: str = "postgres", **query: str) -> str:
        """Return the SQLAlchemy URL of `database` on this cluster (user `postgres`)."""
        params = "&".join(f"{k}={v}" for k, v in query.items())
        base = f"postgresql://postgres@127.0.0.1:{self.port}/{database}"
        return f"{base}?{params}" if params else base

    def create_database(self, prefix: str = "corral") -> str:
        """Create a new empty database and return its name."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self._libpq("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._pg_ctl("start", "-l", str(self.log))

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: "smart", "fast" (roll back sessions) or "immediate" (a crash:
        no checkpoint, the next start runs crash recovery from the WAL)."""
        self._pg_ctl("stop", "-m", mode)

    def restart(self, mode: str = "fast") -> None:
        """Stop the server in `mode` and start it again; return once it accepts connections."""
        self._pg_ctl("restart", "-m", mode, "-l", str(self.log))

    def is_up(self) -> bool:
        """Return whether the server accepts a connection now."""
        try:
            psycopg.connect(self._libpq("postgres"), connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def close(self) -> None:
        """Stop the server at once (if running) and delete the cluster's directory."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(PgCtlError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _libpq(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} dbname={database} user=postgres"

    def _append_conf(self, text: str) -> None:
        conf = self.data / "postgresql.conf"
        with conf.open("a") as handle:
            handle.write(text)

    def _pg_ctl(self, *args: str) -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-w", "-t", str(START_TIMEOUT_S), *args)

    def _pg(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(
            command, cwd=self.root, capture_output=True, text=True, timeout=START_TIMEOUT_S + 30
        )
        if done.returncode != 0:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise PgCtlError(
                f"{tool} {' '.join(args)} exited {done.returncode}:\n"
                f"{done.stdout}{done.stderr}\nserver log:\n{tail}"
            )


def _run_as() -> str | None:
    """Return the user to run PostgreSQL as: None when not root, else the first that exists."""
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED_USERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise PgCtlError(f"running as root and none of the users {UNPRIVILEGED_USERS} exists")


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    """Yield a started private cluster for the module; crash it and delete it afterwards.

    A test that stops the server need not start it again: `private_pg_url` does.
    """
    require("postgres", missing_binaries())
    cluster = PrivatePostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def private_pg_url(private_pg: PrivatePostgres) -> str:
    """Return the URL of a new database on the module's private cluster, started if a
    previous test left it stopped."""
    if not private_pg.is_up():
        private_pg.start()
    return private_pg.url(private_pg.create_database())
