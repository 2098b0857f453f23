"""Database URLs: defaults, redaction, and driver errors mapped to store errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from controller.store import InvalidInput, StoreBusy, StoreError, StoreUnavailable
from controller.store.engine import map_error, redact, resolve_url
from controller.store.object_reads import decode_token, encode_token, to_selector


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(None, "sqlite:////var/lib/corral/corral.db", id="default-under-state-dir"),
        pytest.param("/tmp/x.db", "sqlite:////tmp/x.db", id="bare-path"),
        pytest.param("postgres://u@db/corral", "postgresql://u@db/corral", id="postgres-alias"),
        pytest.param("postgresql://u@db:5433/c", "postgresql://u@db:5433/c", id="postgresql"),
    ],
)
def test_resolve_url(given: str | None, expected: str) -> None:
    assert str(resolve_url(given, Path("/var/lib/corral"))) == expected


def test_redact_hides_the_password() -> None:
    assert redact("postgresql://corral:hunter2@db:5432/corral") == (
        "postgresql://corral:***@db:5432/corral"
    )


class _DriverError(Exception):
    def __init__(self, message: str, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(
            sa_exc.OperationalError("connect", {}, _DriverError("refused pw=hunter2", "08006")),
            StoreUnavailable,
            id="connection-failure",
        ),
        pytest.param(
            sa_exc.OperationalError("update", {}, _DriverError("deadlock detected", "40P01")),
            StoreBusy,
            id="deadlock",
        ),
        pytest.param(
            sa_exc.OperationalError("update", {}, _DriverError("database is locked", None)),
            StoreBusy,
            id="sqlite-locked",
        ),
        pytest.param(
            sa_exc.ProgrammingError("select", {}, _DriverError("syntax error", "42601")),
            StoreError,
            id="other",
        ),
    ],
)
def test_driver_errors_map_to_store_errors(error: sa_exc.DBAPIError, expected: type) -> None:
    mapped = map_error(error, make_url("postgresql://corral:hunter2@db/corral"))
    assert type(mapped) is expected
    assert "hunter2" not in str(mapped)
    assert "postgresql://corral:***@db/corral" in str(mapped)


def test_continue_tokens_round_trip() -> None:
    assert decode_token(encode_token("VirtualMachine", "web-1")) == ("VirtualMachine", "web-1")
    with pytest.raises(InvalidInput):
        decode_token("%%%")


def test_selectors_from_text_and_dicts() -> None:
    assert to_selector("tier=web, zone=a").match_labels == {"tier": "web", "zone": "a"}
    assert to_selector({"tier": "db"}).match_labels == {"tier": "db"}
    with pytest.raises(InvalidInput, match="label_selector: expected key=value"):
        to_selector("tier")
