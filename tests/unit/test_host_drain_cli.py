"""`corral host drain/undrain`: API-owned Hosts change in place; a git/directory-owned Host is
refused (its manifest is the truth) unless taken over, and undrain hands it back."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.cli.host import TAKEN_FROM_ANNOTATION
from controller.cli.main import app
from controller.store import Store, open_store
from schemas.host import Host

runner = CliRunner()


def make_host(name: str) -> Host:
    return Host.model_validate(
        {"metadata": {"name": name}, "spec": {"address": "https://10.0.0.1:8443"}}
    )


@pytest.fixture
def state(tmp_path: Path) -> Path:
    store = open_store(None, state_dir=tmp_path)
    store.put(make_host("api-host"), "api:alice")
    store.apply_snapshot("dir:fleet", "rev1", [make_host("git-host")])
    store.close()
    return tmp_path


def run(state: Path, *args: str):
    return runner.invoke(app, ["host", *args, "--state-dir", str(state)])


def stored(state: Path, name: str):
    store: Store = open_store(None, state_dir=state)
    try:
        return store.get("Host", name)
    finally:
        store.close()


def test_drain_and_undrain_an_api_owned_host(state: Path) -> None:
    result = run(state, "drain", "api-host")
    assert result.exit_code == 0, result.output
    assert "maintenance on" in result.output
    host = stored(state, "api-host")
    assert (host.obj.spec.maintenance, host.source) == (True, "api:alice")
    assert run(state, "undrain", "api-host").exit_code == 0
    assert stored(state, "api-host").obj.spec.maintenance is False


def test_drain_of_a_source_owned_host_is_refused_and_changes_nothing(state: Path) -> None:
    result = run(state, "drain", "git-host")
    assert result.exit_code == 1
    assert "owned by dir:fleet" in result.output
    assert "--take-over" in result.output
    host = stored(state, "git-host")
    assert (host.obj.spec.maintenance, host.source) == (False, "dir:fleet")


def test_take_over_drains_then_undrain_hands_the_host_back(state: Path) -> None:
    assert run(state, "drain", "git-host", "--take-over").exit_code == 0
    host = stored(state, "git-host")
    assert (host.obj.spec.maintenance, host.source) == (True, "api:cli")
    assert host.obj.metadata.annotations[TAKEN_FROM_ANNOTATION] == "dir:fleet"
    assert run(state, "undrain", "git-host").exit_code == 0
    host = stored(state, "git-host")
    assert (host.obj.spec.maintenance, host.source) == (False, "dir:fleet")
    assert TAKEN_FROM_ANNOTATION not in host.obj.metadata.annotations


def test_unknown_host_is_an_error(state: Path) -> None:
    result = run(state, "drain", "nope")
    assert result.exit_code == 1
    assert "Host/nope not found" in result.output
