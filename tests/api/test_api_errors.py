"""Bad input: every 4xx is a Status with the field path and a message a person can act on."""

from __future__ import annotations

import json

import pytest
from apikit import MERGE, Tokens, bearer, vm, vm_doc

from controller.api.bodies import MAX_BODY_BYTES
from controller.store import Store

BAD_BODIES = [
    # (id, raw body, status, reason, field)
    ("not-json", b"{bad", 400, "BadRequest", "(body)"),
    ("empty", b"", 400, "BadRequest", "(body)"),
    ("nan", b'{"spec": NaN}', 400, "BadRequest", "(body)"),
    ("array", b"[1, 2]", 422, "Invalid", "(body)"),
    (
        "unknown-field",
        json.dumps({**vm_doc("a"), "spec": {"cpus": 1, "memory": "1Gi", "colour": "red"}}).encode(),
        422,
        "Invalid",
        "spec.colour",
    ),
    (
        "unknown-top-level",
        json.dumps({**vm_doc("a"), "extra": 1}).encode(),
        422,
        "Invalid",
        "extra",
    ),
    (
        "bad-quantity",
        json.dumps(vm_doc("a", memory="20 GB")).encode(),
        422,
        "Invalid",
        "spec.memory",
    ),
    (
        "bad-name",
        json.dumps(vm_doc("Not_A_Name")).encode(),
        422,
        "Invalid",
        "metadata.name",
    ),
    (
        "wrong-kind",
        json.dumps({**vm_doc("a"), "kind": "Host"}).encode(),
        422,
        "Invalid",
        "kind",
    ),
    (
        "deep-nesting",
        b'{"spec":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        400,
        "BadRequest",
        "(body)",
    ),
]


@pytest.mark.parametrize(
    ("raw", "status", "reason", "field"),
    [row[1:] for row in BAD_BODIES],
    ids=[row[0] for row in BAD_BODIES],
)
def test_bad_bodies(
    client, issued: Tokens, raw: bytes, status: int, reason: str, field: str
) -> None:
    response = client.post(
        "/api/v1/virtualmachines",
        content=raw,
        headers={**bearer(issued.operator), "content-type": "application/json"},
    )
    assert response.status_code == status, response.text
    body = response.json()
    assert body["kind"] == "Status"
    assert body["reason"] == reason
    assert body["message"]
    assert body["details"][0]["field"] == field


def test_huge_body_is_refused_before_it_is_parsed(client, issued: Tokens) -> None:
    raw = b'{"pad": "' + b"x" * MAX_BODY_BYTES + b'"}'
    response = client.post(
        "/api/v1/virtualmachines",
        content=raw,
        headers={**bearer(issued.operator), "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["reason"] == "RequestEntityTooLarge"


def test_huge_chunked_body_is_refused(client, issued: Tokens) -> None:
    def chunks():
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"x" * 65536

    response = client.post(
        "/api/v1/virtualmachines",
        content=chunks(),
        headers={**bearer(issued.operator), "content-type": "application/json"},
    )
    assert response.status_code == 413


def test_patch_content_types(client, issued: Tokens, store: Store) -> None:
    store.put(vm("a"), "api:x")
    auth = bearer(issued.operator)
    plain = client.patch(
        "/api/v1/virtualmachines/a",
        json={"spec": {"cpus": 2}},
        headers={**auth, "content-type": "application/json"},
    )
    assert plain.status_code == 415
    assert "application/merge-patch+json" in plain.json()["message"]
    not_object = client.patch("/api/v1/virtualmachines/a", json=[1], headers={**auth, **MERGE})
    assert not_object.status_code == 400
    bad_rv = client.patch(
        "/api/v1/virtualmachines/a",
        json={"metadata": {"resourceVersion": "abc"}},
        headers={**auth, **MERGE},
    )
    assert bad_rv.status_code == 422
    assert bad_rv.json()["details"][0]["field"] == "metadata.resourceVersion"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/virtualmachines?limit=0", "query.limit"),
        ("/api/v1/virtualmachines?limit=abc", "query.limit"),
        ("/api/v1/virtualmachines?labelSelector=a%20in%20b", "labelSelector"),
        ("/api/v1/virtualmachines?continue=%%%", "continue"),
        ("/api/v1/events?type=Loud", "query.type"),
        ("/api/v1/watch?topics=gossip", None),
    ],
    ids=["limit-zero", "limit-text", "selector", "continue", "event-type", "topics"],
)
def test_bad_query_parameters_are_400(client, issued: Tokens, path: str, field: str | None) -> None:
    response = client.get(path, headers=bearer(issued.viewer))
    assert response.status_code == 400, response.text
    if field:
        assert response.json()["details"][0]["field"] == field


def test_name_in_body_must_match_the_path(client, issued: Tokens, store: Store) -> None:
    store.put(vm("a"), "api:x")
    response = client.put(
        "/api/v1/virtualmachines/a", json=vm_doc("b"), headers=bearer(issued.operator)
    )
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "metadata.name"


def test_unknown_paths_and_methods_answer_in_the_status_shape(client, issued: Tokens) -> None:
    auth = bearer(issued.viewer)
    unknown = client.get("/api/v1/gadgets", headers=auth)
    assert unknown.status_code == 404
    assert unknown.json()["kind"] == "Status"
    wrong = client.request("PUT", "/api/v1/virtualmachines", headers=auth)
    assert wrong.status_code == 405
    assert wrong.json()["reason"] == "MethodNotAllowed"
