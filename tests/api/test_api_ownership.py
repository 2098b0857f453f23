"""Objects owned by git/dir/kube sources: 409 unless an admin forces; actions override; release."""

from __future__ import annotations

from apikit import MERGE, Tokens, bearer, host, vm, vm_doc

from controller.store import Store


def test_writing_a_git_owned_object_is_409_with_the_reason(
    client, issued: Tokens, store: Store
) -> None:
    store.apply_snapshot("git:origin", "abc", [vm("web-1")])
    auth = bearer(issued.operator)
    for response in (
        client.put("/api/v1/virtualmachines/web-1", json=vm_doc("web-1", cpus=2), headers=auth),
        client.patch(
            "/api/v1/virtualmachines/web-1", json={"spec": {"cpus": 2}}, headers={**auth, **MERGE}
        ),
        client.delete("/api/v1/virtualmachines/web-1", headers=auth),
    ):
        assert response.status_code == 409
        assert response.json()["reason"] == "OwnedBySource"
        assert "owned by source 'git:origin'" in response.json()["message"]
    assert store.get("VirtualMachine", "web-1").resource_version == 1


def test_force_needs_admin_and_takes_the_object_over(client, issued: Tokens, store: Store) -> None:
    store.apply_snapshot("git:origin", "abc", [vm("web-1")])
    body = vm_doc("web-1", cpus=2)
    refused = client.put(
        "/api/v1/virtualmachines/web-1?force=true", json=body, headers=bearer(issued.operator)
    )
    assert refused.status_code == 403
    forced = client.put(
        "/api/v1/virtualmachines/web-1?force=true", json=body, headers=bearer(issued.admin)
    )
    assert forced.status_code == 200
    stored = store.get("VirtualMachine", "web-1")
    assert stored.source == "api:ada"
    assert stored.obj.metadata.annotations == {"corral.dev/taken-from": "git:origin"}
    assert stored.obj.spec.cpus == 2
    # The git source now leaves it alone and reports the conflict.
    result = store.apply_snapshot("git:origin", "def", [vm("web-1")])
    assert [str(c) for c in result.conflicts] == ["VirtualMachine/web-1 (owned by api:ada)"]
    reasons = [(e.type, e.reason) for e in store.list_events("VirtualMachine", "web-1")]
    assert ("Warning", "TakenFromSource") in reasons


def test_release_hands_the_object_back_to_its_source(client, issued: Tokens, store: Store) -> None:
    store.apply_snapshot("git:origin", "abc", [vm("web-1")])
    client.put(
        "/api/v1/virtualmachines/web-1?force=true",
        json=vm_doc("web-1", cpus=2),
        headers=bearer(issued.admin),
    )
    released = client.post("/api/v1/virtualmachines/web-1/release", headers=bearer(issued.operator))
    assert released.status_code == 200
    assert store.get("VirtualMachine", "web-1").source == "git:origin"
    # The source's next revision wins again.
    result = store.apply_snapshot("git:origin", "def", [vm("web-1")])
    assert [str(r) for r in result.updated] == ["VirtualMachine/web-1"]
    assert store.get("VirtualMachine", "web-1").obj.spec.cpus == 1
    again = client.post("/api/v1/virtualmachines/web-1/release", headers=bearer(issued.operator))
    assert again.status_code == 409


def test_drain_is_an_allowed_override_of_a_git_owned_host(
    client, issued: Tokens, store: Store
) -> None:
    store.apply_snapshot("git:origin", "abc", [host("h1")])
    drained = client.post("/api/v1/hosts/h1/drain", headers=bearer(issued.operator))
    assert drained.status_code == 200, drained.text
    stored = store.get("Host", "h1")
    assert stored.obj.spec.maintenance is True
    assert stored.source == "api:otto"
    assert stored.obj.metadata.annotations["corral.dev/taken-from"] == "git:origin"
    undrained = client.post("/api/v1/hosts/h1/undrain", headers=bearer(issued.operator))
    assert undrained.json()["spec"]["maintenance"] is False
    events = [e.reason for e in store.list_events("Host", "h1")]
    assert {"DrainRequested", "UndrainRequested", "TakenFromSource"} <= set(events)


def test_migrate_pins_the_vm_to_the_target_host(client, issued: Tokens, store: Store) -> None:
    store.put(host("h1"), "git:origin")
    store.put(host("h2"), "git:origin")
    store.put(vm("web-1"), "api:x")
    moved = client.post(
        "/api/v1/virtualmachines/web-1/migrate",
        json={"host": "h2"},
        headers=bearer(issued.operator),
    )
    assert moved.status_code == 200
    assert store.get("VirtualMachine", "web-1").obj.spec.placement.host == "h2"
    assert store.get("VirtualMachine", "web-1").source == "api:x"
    missing = client.post(
        "/api/v1/virtualmachines/web-1/migrate",
        json={"host": "h9"},
        headers=bearer(issued.operator),
    )
    assert missing.status_code == 404
    assert missing.json()["details"][0]["field"] == "host"
    bad = client.post(
        "/api/v1/virtualmachines/web-1/migrate",
        json={"host": "h2", "live": True},
        headers=bearer(issued.operator),
    )
    assert bad.status_code == 422
    assert bad.json()["details"][0]["field"] == "live"
    viewer = client.post(
        "/api/v1/virtualmachines/web-1/migrate", json={"host": "h2"}, headers=bearer(issued.viewer)
    )
    assert viewer.status_code == 403


def test_scoped_token_sees_and_writes_only_its_labels(client, issued: Tokens, store: Store) -> None:
    store.put(vm("a-1", {"team": "a"}), "api:x")
    store.put(vm("b-1", {"team": "b"}), "api:x")
    auth = bearer(issued.scoped)
    listed = client.get("/api/v1/virtualmachines", headers=auth).json()["items"]
    assert [i["metadata"]["name"] for i in listed] == ["a-1"]
    assert client.get("/api/v1/virtualmachines/b-1", headers=auth).status_code == 404
    assert client.delete("/api/v1/virtualmachines/b-1", headers=auth).status_code == 404
    outside = client.post(
        "/api/v1/virtualmachines", json=vm_doc("c-1", {"team": "b"}), headers=auth
    )
    assert outside.status_code == 403
    assert outside.json()["details"][0]["field"] == "metadata.labels"
    relabel = client.patch(
        "/api/v1/virtualmachines/a-1",
        json={"metadata": {"labels": {"team": "b"}}},
        headers={**auth, **MERGE},
    )
    assert relabel.status_code == 403
    inside = client.post("/api/v1/virtualmachines", json=vm_doc("a-2", {"team": "a"}), headers=auth)
    assert inside.status_code == 201
    events = client.get("/api/v1/events", headers=auth).json()["items"]
    assert {e["involvedObject"]["name"] for e in events} == {"a-2"}
