"""CRUD through the API: create, get, list (selectors, pages), replace, patch, delete."""

from __future__ import annotations

import pytest
from apikit import JSON_PATCH, MERGE, Tokens, bearer, vm, vm_doc

from controller.store import Store


def test_create_get_and_list(client, issued: Tokens, store: Store) -> None:
    auth = bearer(issued.operator)
    created = client.post(
        "/api/v1/virtualmachines", json=vm_doc("web-1", {"app": "web"}), headers=auth
    )
    assert created.status_code == 201
    body = created.json()
    assert body["metadata"]["resourceVersion"] == "1"
    assert body["metadata"]["generation"] == 1
    assert body["metadata"]["annotations"] == {"corral.dev/source": "api:otto"}
    assert store.get("VirtualMachine", "web-1").source == "api:otto"

    got = client.get("/api/v1/virtualmachines/web-1", headers=bearer(issued.viewer)).json()
    assert got == body
    listing = client.get("/api/v1/virtualmachines", headers=bearer(issued.viewer)).json()
    assert listing["kind"] == "VirtualMachineList"
    assert [i["metadata"]["name"] for i in listing["items"]] == ["web-1"]
    assert int(listing["metadata"]["resourceVersion"]) == store.revision()


def test_every_kind_is_served(client, issued: Tokens) -> None:
    kinds = client.get("/api/v1", headers=bearer(issued.viewer)).json()["resources"]
    for resource in kinds:
        response = client.get(f"/api/v1/{resource['plural']}", headers=bearer(issued.viewer))
        assert response.status_code == 200
        assert response.json()["kind"] == f"{resource['kind']}List"
    assert len(kinds) == 9


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["web-1", "web-2"]),
        ("app=web,tier=front", ["web-1"]),
        ("app!=web", ["db-1", "plain"]),
        ("app in (web,db)", ["db-1", "web-1", "web-2"]),
        ("app notin (web)", ["db-1", "plain"]),
        ("tier", ["web-1"]),
        ("!app", ["plain"]),
    ],
    ids=["equals", "two-labels", "not-equals", "in", "notin", "exists", "not-exists"],
)
def test_list_with_label_selectors(
    client, issued: Tokens, store: Store, selector: str, expected: list[str]
) -> None:
    store.put(vm("web-1", {"app": "web", "tier": "front"}), "api:x")
    store.put(vm("web-2", {"app": "web"}), "api:x")
    store.put(vm("db-1", {"app": "db"}), "git:origin")
    store.put(vm("plain"), "api:x")
    response = client.get(
        "/api/v1/virtualmachines", params={"labelSelector": selector}, headers=bearer(issued.viewer)
    )
    assert [i["metadata"]["name"] for i in response.json()["items"]] == expected


def test_pagination_with_continue_tokens(client, issued: Tokens, store: Store) -> None:
    store.apply_snapshot("git:origin", "r1", [vm(f"vm-{i:02}") for i in range(7)])
    names, token, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"continue": token} if token else {})}
        page = client.get("/api/v1/virtualmachines", params=params, headers=bearer(issued.viewer))
        body = page.json()
        names += [i["metadata"]["name"] for i in body["items"]]
        pages += 1
        token = body["metadata"].get("continue")
        if not token:
            break
    assert pages == 3
    assert names == [f"vm-{i:02}" for i in range(7)]


def test_replace_needs_the_current_resource_version(client, issued: Tokens) -> None:
    auth = bearer(issued.operator)
    client.post("/api/v1/virtualmachines", json=vm_doc("web-1"), headers=auth)
    doc = vm_doc("web-1", cpus=2)
    doc["metadata"]["resourceVersion"] = "1"
    replaced = client.put("/api/v1/virtualmachines/web-1", json=doc, headers=auth)
    assert replaced.status_code == 200
    assert replaced.json()["metadata"]["resourceVersion"] == "2"
    assert replaced.json()["metadata"]["generation"] == 2

    stale = client.put("/api/v1/virtualmachines/web-1", json=doc, headers=auth)
    assert stale.status_code == 409
    assert stale.json()["reason"] == "Conflict"
    assert stale.json()["details"][0]["field"] == "metadata.resourceVersion"
    assert "expected resource version 1, found 2" in stale.json()["message"]


def test_create_of_an_existing_object_is_a_conflict(client, issued: Tokens) -> None:
    auth = bearer(issued.operator)
    assert client.post("/api/v1/virtualmachines", json=vm_doc("a"), headers=auth).status_code == 201
    again = client.post("/api/v1/virtualmachines", json=vm_doc("a"), headers=auth)
    assert again.status_code == 409
    assert again.json()["details"] == [
        {"field": "metadata.name", "message": "already exists", "type": "exists"}
    ]


def test_merge_patch(client, issued: Tokens, store: Store) -> None:
    auth = bearer(issued.operator)
    client.post("/api/v1/virtualmachines", json=vm_doc("web-1", {"app": "web"}), headers=auth)
    patched = client.patch(
        "/api/v1/virtualmachines/web-1",
        json={"metadata": {"labels": {"app": None, "tier": "db"}}, "spec": {"memory": "512Mi"}},
        headers={**auth, **MERGE},
    )
    assert patched.status_code == 200, patched.text
    stored = store.get("VirtualMachine", "web-1")
    assert stored.obj.metadata.labels == {"tier": "db"}
    assert stored.obj.spec.memory == 512 * 2**20
    assert stored.generation == 2


def test_json_patch_with_a_test_precondition(client, issued: Tokens, store: Store) -> None:
    auth = bearer(issued.operator)
    client.post("/api/v1/virtualmachines", json=vm_doc("web-1"), headers=auth)
    ops = [
        {"op": "test", "path": "/spec/cpus", "value": 1},
        {"op": "replace", "path": "/spec/cpus", "value": 4},
        {"op": "add", "path": "/metadata/labels/app", "value": "web"},
    ]
    assert (
        client.patch("/api/v1/virtualmachines/web-1", json=ops, headers={**auth, **JSON_PATCH})
    ).status_code == 200
    assert store.get("VirtualMachine", "web-1").obj.spec.cpus == 4
    failed = client.patch(
        "/api/v1/virtualmachines/web-1", json=ops[:1], headers={**auth, **JSON_PATCH}
    )
    assert failed.status_code == 400
    assert "does not apply" in failed.json()["message"]


def test_patch_with_a_stale_resource_version_is_a_conflict(client, issued: Tokens) -> None:
    auth = bearer(issued.operator)
    client.post("/api/v1/virtualmachines", json=vm_doc("web-1"), headers=auth)
    client.patch(
        "/api/v1/virtualmachines/web-1", json={"spec": {"cpus": 2}}, headers={**auth, **MERGE}
    )
    stale = client.patch(
        "/api/v1/virtualmachines/web-1",
        json={"metadata": {"resourceVersion": "1"}, "spec": {"cpus": 3}},
        headers={**auth, **MERGE},
    )
    assert stale.status_code == 409


def test_delete_leaves_a_tombstone_and_checks_the_version(
    client, issued: Tokens, store: Store
) -> None:
    auth = bearer(issued.operator)
    client.post("/api/v1/virtualmachines", json=vm_doc("web-1"), headers=auth)
    stale = client.delete("/api/v1/virtualmachines/web-1?resourceVersion=7", headers=auth)
    assert stale.status_code == 409
    gone = client.delete("/api/v1/virtualmachines/web-1?resourceVersion=1", headers=auth)
    assert gone.status_code == 200
    assert client.get("/api/v1/virtualmachines/web-1", headers=auth).status_code == 404
    assert [t.name for t in store.list_deleted("VirtualMachine")] == ["web-1"]


def test_status_is_read_only(client, issued: Tokens, store: Store) -> None:
    store.put(vm("web-1"), "api:x")
    store.put_status(
        "VirtualMachine", "web-1", {"phase": "Running", "host": "h1", "observedGeneration": 1}
    )
    status = client.get("/api/v1/virtualmachines/web-1/status", headers=bearer(issued.viewer))
    assert status.json()["phase"] == "Running"
    for method in ("PUT", "PATCH"):
        refused = client.request(
            method,
            "/api/v1/virtualmachines/web-1/status",
            json={"phase": "Stopped"},
            headers={**bearer(issued.admin), **MERGE},
        )
        assert refused.status_code == 405
        assert refused.json()["details"][0]["field"] == "status"
    # A status in a replace body is ignored, not stored.
    doc = {**vm_doc("web-1"), "status": {"phase": "Failed"}}
    client.put("/api/v1/virtualmachines/web-1", json=doc, headers=bearer(issued.admin))
    assert store.get("VirtualMachine", "web-1").obj.status.phase.value == "Running"


def test_every_write_is_audited_with_the_identity(client, issued: Tokens, store: Store) -> None:
    auth = bearer(issued.operator)
    client.post("/api/v1/virtualmachines", json=vm_doc("web-1"), headers=auth)
    client.patch(
        "/api/v1/virtualmachines/web-1", json={"spec": {"cpus": 2}}, headers={**auth, **MERGE}
    )
    client.delete("/api/v1/virtualmachines/web-1", headers=auth)
    events = store.list_events("VirtualMachine", "web-1")
    assert [(e.reason, e.identity, e.component) for e in reversed(events)] == [
        ("ApiCreated", "otto", "api"),
        ("ApiPatched", "otto", "api"),
        ("ApiDeleted", "otto", "api"),
    ]
    assert events[-1].message == (
        "VirtualMachine/web-1 created through the API by otto (operator); "
        "generation 1, resourceVersion 1"
    )
    served = client.get("/api/v1/virtualmachines/web-1/events", headers=auth)
    assert served.status_code == 404  # deleted: its events stay readable under /events
    listed = client.get(
        "/api/v1/events", params={"kind": "vm", "name": "web-1"}, headers=bearer(issued.viewer)
    ).json()["items"]
    assert [e["reason"] for e in listed] == ["ApiDeleted", "ApiPatched", "ApiCreated"]
