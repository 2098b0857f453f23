"""The SDK against the live API (uvicorn, TLS): round trips, errors, wait, watch; sync and async."""

from __future__ import annotations

import json
import threading
import time

import pytest
from apikit import LiveApi, Tokens, host, vm

from controller.api.openapi import OPENAPI_PATH
from controller.store import Store
from corral_sdk import (
    ROUTES,
    AsyncClient,
    Client,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    OwnedBySource,
    Unauthorized,
    WaitTimeout,
)
from schemas import VirtualMachine

READY = {
    "phase": "Running",
    "host": "h1",
    "conditions": [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Running",
            "message": "Running on h1",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
    ],
}


def test_every_sdk_route_is_in_the_committed_openapi() -> None:
    paths = json.loads(OPENAPI_PATH.read_text())["paths"]
    missing = [(m, p) for m, p in ROUTES if m not in paths.get(p, {})]
    assert missing == []


def _client(live: LiveApi, token: str) -> Client:
    return Client(live.url, token, ca=live.ca)


def test_round_trip_with_typed_models(live_api: LiveApi, issued: Tokens, store: Store) -> None:
    with _client(live_api, issued.operator) as client:
        created = client.vms.create(vm("web-1", {"app": "web"}))
        assert isinstance(created, VirtualMachine)
        assert created.metadata.resource_version == "1"
        client.vms.create(vm("db-1", {"app": "db"}))
        assert [v.name for v in client.vms.list(selector="app=web")] == ["web-1"]
        assert [v.name for v in client.vms.list(page_size=1)] == ["db-1", "web-1"]

        patched = client.vms.patch("web-1", merge={"spec": {"cpus": 2}})
        assert patched.spec.cpus == 2
        patched = client.vms.patch(
            "web-1", json_patch=[{"op": "replace", "path": "/spec/memory", "value": "512Mi"}]
        )
        assert patched.spec.memory == 512 * 2**20

        with pytest.raises(Conflict):
            client.vms.replace(created)  # still carries resourceVersion 1
        fresh = client.vms.get("web-1")
        fresh.spec.cpus = 3
        assert client.vms.replace(fresh).spec.cpus == 3

        plan = client.vms.dry_run(vm("web-9"))
        assert plan["kind"] == "DryRun"
        client.vms.delete("web-1")
        with pytest.raises(NotFound):
            client.vms.get("web-1")
    assert store.get("VirtualMachine", "db-1").source == "api:otto"


def test_errors_are_typed(live_api: LiveApi, issued: Tokens, store: Store) -> None:
    store.apply_snapshot("git:origin", "abc", [vm("from-git")])
    with _client(live_api, issued.operator) as client:
        with pytest.raises(OwnedBySource) as owned:
            client.vms.patch("from-git", merge={"spec": {"cpus": 2}})
        assert "git:origin" in owned.value.message
        with pytest.raises(Invalid) as invalid:
            client.vms.create({"kind": "VirtualMachine", "metadata": {"name": "x"}, "spec": {}})
        assert invalid.value.details[0]["field"] == "spec"
    with _client(live_api, issued.viewer) as viewer, pytest.raises(Forbidden):
        viewer.vms.create(vm("nope"))
    wrong = "corral_0000000000000000_wrongwrongwrongwrongwrong"
    with _client(live_api, wrong) as bad, pytest.raises(Unauthorized):
        bad.vms.list()


def test_wait_returns_once_ready(live_api: LiveApi, issued: Tokens, store: Store) -> None:
    store.put(vm("web-1"), "api:x")

    def become_ready() -> None:
        time.sleep(0.5)
        store.put_status("VirtualMachine", "web-1", READY)

    writer = threading.Thread(target=become_ready)
    writer.start()
    with _client(live_api, issued.viewer) as client:
        ready = client.vms.wait("web-1", "Ready", timeout=20)
    writer.join()
    assert ready.status is not None
    assert ready.status.host == "h1"


def test_wait_times_out_with_the_last_object(
    live_api: LiveApi, issued: Tokens, store: Store
) -> None:
    store.put(vm("web-1"), "api:x")
    with _client(live_api, issued.viewer) as client, pytest.raises(WaitTimeout) as waited:
        client.vms.wait("web-1", "Ready", timeout=1.0)
    assert waited.value.last.name == "web-1"


def test_watch_yields_typed_changes(live_api: LiveApi, issued: Tokens, store: Store) -> None:
    since = store.revision()
    store.put(vm("web-1"), "api:x")
    with _client(live_api, issued.viewer) as client:
        event = next(iter(client.vms.watch(since=since, timeout_s=5)))
    assert (event.topic, event.op, event.name) == ("object", "created", "web-1")
    assert isinstance(event.object, VirtualMachine)


def test_actions(live_api: LiveApi, issued: Tokens, store: Store) -> None:
    store.put(host("h1"), "git:origin")
    store.put(host("h2"), "git:origin")
    store.put(vm("web-1"), "api:x")
    with _client(live_api, issued.operator) as client:
        assert client.vms.migrate("web-1", "h2").spec.placement.host == "h2"
        assert client.hosts.drain("h1").spec.maintenance is True
        assert client.hosts.release("h1").metadata.annotations.get("corral.dev/taken-from") is None
        assert client.reconcile()["requested"] is True
        assert any(e["reason"] == "ReconcileRequested" for e in client.events(kind="Controller"))
    assert store.get("Host", "h1").source == "git:origin"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_async_client_round_trip_and_wait(
    live_api: LiveApi, issued: Tokens, store: Store
) -> None:
    async with AsyncClient(live_api.url, issued.operator, ca=live_api.ca) as client:
        created = await client.vms.create(vm("web-1"))
        assert created.metadata.resource_version == "1"
        assert [v.name for v in await client.vms.list()] == ["web-1"]
        patched = await client.vms.patch("web-1", merge={"spec": {"cpus": 2}})
        assert patched.spec.cpus == 2
        with pytest.raises(Conflict):
            await client.vms.replace(created)

        def become_ready() -> None:
            time.sleep(0.5)
            store.put_status("VirtualMachine", "web-1", READY)

        writer = threading.Thread(target=become_ready)
        writer.start()
        ready = await client.vms.wait("web-1", timeout=20)
        writer.join()
        assert ready.status.phase.value == "Running"
        await client.vms.delete("web-1")
        with pytest.raises(NotFound):
            await client.vms.get("web-1")
