"""The API beside the reconcile loop (`corral up --api`): writes wake the loop, whose status
and passes show through the API; and the token CLI."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import httpx
import pytest
from apikit import vm_doc
from typer.testing import CliRunner

from controller.agentpool import AgentPool
from controller.api.embed import start_embedded_api
from controller.cli.main import app
from controller.loop import Controller
from controller.store import open_store

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_api_beside_the_loop(db_url: str, tmp_path: Path) -> None:
    store = open_store(db_url)
    controller = Controller(store, [], AgentPool(), resync_s=60.0)
    api = start_embedded_api(controller, "127.0.0.1:0", None, db_url, tmp_path)
    stop = threading.Event()
    loop = threading.Thread(target=controller.run, args=(stop, api.observe_pass), daemon=True)
    try:
        token = api.tokens.create("eve", "operator")
        base = f"http://127.0.0.1:{api.thread.port}"
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
            loop.start()
            created = client.post("/api/v1/virtualmachines", json=vm_doc("web-1"))
            assert created.status_code == 201
            # The write wakes the loop long before its 60 s resync: it writes the VM's status.
            deadline = time.monotonic() + 30
            status = None
            while time.monotonic() < deadline:
                status = client.get("/api/v1/virtualmachines/web-1/status").json()
                if status:
                    break
                time.sleep(0.2)
            assert status is not None
            assert status["conditions"][0]["reason"] == "NoHostFits"
            # The pass is counted once it returned (after it wrote the status): poll.
            passes = None
            while time.monotonic() < deadline and passes is None:
                metrics = client.get("/metrics").text
                passes = re.search(
                    r'corral_reconcile_passes_total\{outcome="progressing"\} (\S+)', metrics
                )
                time.sleep(0.2)
            assert passes is not None and float(passes.group(1)) >= 1
    finally:
        stop.set()
        loop.join(timeout=30)
        api.stop()
        controller.pool.close()
        store.close()


def test_bad_listen_address_exits_with_the_reason(db_url: str, tmp_path: Path) -> None:
    store = open_store(db_url)
    controller = Controller(store, [], AgentPool())
    try:
        with pytest.raises(SystemExit, match="plain HTTP on loopback only"):
            start_embedded_api(controller, "0.0.0.0:0", None, db_url, tmp_path)
    finally:
        controller.pool.close()
        store.close()


def test_token_cli(db_url: str) -> None:
    runner = CliRunner()
    created = runner.invoke(
        app, ["token", "create", "cli-user", "--role", "operator", "--db", db_url]
    )
    assert created.exit_code == 0, created.output
    assert re.fullmatch(r"corral_[0-9a-f]{16}_[A-Za-z0-9_-]+\n", created.output)
    listed = runner.invoke(app, ["token", "list", "--db", db_url])
    assert "cli-user" in listed.output and "operator" in listed.output
    assert created.output.strip().rsplit("_", 1)[1] not in listed.output
    bad = runner.invoke(app, ["token", "create", "x", "--role", "root", "--db", db_url])
    assert bad.exit_code == 2 and "role" in bad.output
    assert runner.invoke(app, ["token", "revoke", "cli-user", "--db", db_url]).exit_code == 0
    assert runner.invoke(app, ["token", "revoke", "cli-user", "--db", db_url]).exit_code == 1
