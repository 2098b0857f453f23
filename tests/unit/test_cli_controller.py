"""`corral controller`: argument checks and the PostgreSQL session limit of a replica."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from controller.cli.controller import with_session_limit
from controller.cli.main import app


@pytest.mark.parametrize(
    ("db", "ttl_s", "options"),
    [
        pytest.param(
            "postgresql://127.0.0.1:5432/test",
            10.0,
            "-c idle_in_transaction_session_timeout=10000",
            id="plain",
        ),
        pytest.param(
            "postgresql+psycopg://u:pw@db/corral?options=-csearch_path%3Dx",
            2.5,
            "-csearch_path=x -c idle_in_transaction_session_timeout=2500",
            id="keeps-options-and-password",
        ),
    ],
)
def test_postgres_sessions_are_limited_to_the_lease(db: str, ttl_s: float, options: str) -> None:
    url = make_url(with_session_limit(db, ttl_s))
    assert url.query["options"] == options
    assert (url.host, url.database, url.password) == (
        make_url(db).host,
        make_url(db).database,
        make_url(db).password,
    )


@pytest.mark.parametrize("db", [None, "sqlite:////tmp/corral.db"])
def test_other_stores_are_unchanged(db: str | None) -> None:
    assert with_session_limit(db, 10.0) == db


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--lease-ttl", "0"], "--lease-ttl: expected seconds > 0, got 0.0", id="ttl"),
        pytest.param([], "give a manifest directory or --git URL", id="no-source"),
        pytest.param(
            ["--db", "mysql://db/corral"], "unsupported database 'mysql'", id="unsupported-db"
        ),
    ],
)
def test_bad_arguments_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    if args:
        args = [str(tmp_path), *args]
    result = CliRunner().invoke(app, ["controller", *args, "--state-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_a_state_dir_that_cannot_be_made_exits_2(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    state = blocker / "state"
    result = CliRunner().invoke(app, ["controller", str(tmp_path), "--state-dir", str(state)])
    assert result.exit_code == 2
    assert f"--state-dir{state}" in "".join(result.output.split())  # rich may fold the path
