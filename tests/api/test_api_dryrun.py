"""?dryRun=true validates, checks preconditions and returns the plan; it writes nothing."""

from __future__ import annotations

from apikit import MERGE, Tokens, bearer, host, host_state, vm, vm_doc

from controller.store import Store


def _fleet(store: Store) -> None:
    store.put(host("h1"), "git:origin")
    store.put_observed("h1", True, host_state("h1"))


def test_dry_run_create_returns_the_plan_and_writes_nothing(
    client, issued: Tokens, store: Store
) -> None:
    _fleet(store)
    before = store.revision()
    response = client.post(
        "/api/v1/virtualmachines?dryRun=true", json=vm_doc("web-1"), headers=bearer(issued.operator)
    )
    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "DryRun"
    assert body["object"]["metadata"]["name"] == "web-1"
    plan = body["plan"]
    assert plan["summary"] == "2 actions: 1 DefineVM, 1 StartVM"
    assert [(a["type"], a["target"], a["host"]) for a in plan["actions"]] == [
        ("DefineVM", "VirtualMachine/web-1", "h1"),
        ("StartVM", "VirtualMachine/web-1", "h1"),
    ]
    assert plan["verdicts"][0]["name"] == "web-1"
    assert store.revision() == before
    assert store.list(kind="VirtualMachine").items == []
    assert store.list_events() == []
    assert store.list_plans() == []


def test_dry_run_patch_and_delete(client, issued: Tokens, store: Store) -> None:
    _fleet(store)
    store.put(vm("web-1"), "api:x")
    before = store.revision()
    auth = bearer(issued.operator)
    patched = client.patch(
        "/api/v1/virtualmachines/web-1?dryRun=true",
        json={"spec": {"runStrategy": "Halted"}},
        headers={**auth, **MERGE},
    )
    assert patched.status_code == 200
    assert patched.json()["object"]["spec"]["runStrategy"] == "Halted"
    deleted = client.delete("/api/v1/virtualmachines/web-1?dryRun=true", headers=auth)
    assert deleted.status_code == 200
    assert deleted.json()["kind"] == "DryRun"
    assert store.revision() == before
    assert store.get("VirtualMachine", "web-1").obj.spec.run_strategy.value == "Always"


def test_dry_run_still_refuses_what_the_write_would_refuse(
    client, issued: Tokens, store: Store
) -> None:
    store.apply_snapshot("git:origin", "abc", [vm("web-1")])
    auth = bearer(issued.operator)
    owned = client.put(
        "/api/v1/virtualmachines/web-1?dryRun=true", json=vm_doc("web-1"), headers=auth
    )
    assert owned.status_code == 409
    stale_doc = vm_doc("web-1")
    stale_doc["metadata"]["resourceVersion"] = "5"
    stale = client.put(
        "/api/v1/virtualmachines/web-1?dryRun=true&force=true",
        json=stale_doc,
        headers=bearer(issued.admin),
    )
    assert stale.status_code == 409
    assert stale.json()["reason"] == "Conflict"
    invalid = client.post(
        "/api/v1/virtualmachines?dryRun=true", json=vm_doc("x", cpus=0), headers=auth
    )
    assert invalid.status_code == 422


def test_dry_run_drain_plans_the_evacuation(client, issued: Tokens, store: Store) -> None:
    _fleet(store)
    before = store.revision()
    response = client.post("/api/v1/hosts/h1/drain?dryRun=true", headers=bearer(issued.operator))
    assert response.status_code == 200
    assert response.json()["object"]["spec"]["maintenance"] is True
    assert store.revision() == before
