"""The committed OpenAPI document is the one the app serves, and it covers every kind."""

from __future__ import annotations

import json

from apikit import Tokens, bearer

from controller.api.openapi import OPENAPI_PATH, render_openapi
from schemas.kinds import KINDS, PLURALS


def test_committed_openapi_matches_the_app() -> None:
    committed = json.loads(OPENAPI_PATH.read_text())
    assert committed == json.loads(render_openapi()), (
        "controller/api/openapi.json is stale: run `python -m controller.api`"
    )


def test_every_kind_has_its_operations_and_schema() -> None:
    doc = json.loads(OPENAPI_PATH.read_text())
    for kind in KINDS:
        base = f"/api/v1/{PLURALS[kind]}"
        assert set(doc["paths"][base]) == {"get", "post"}
        assert set(doc["paths"][f"{base}/{{name}}"]) == {"get", "put", "patch", "delete"}
        assert set(doc["paths"][f"{base}/{{name}}/status"]) == {"get"}
        assert kind in doc["components"]["schemas"]
        assert f"{kind}List" in doc["components"]["schemas"]
    assert {"/api/v1/watch", "/api/v1/events", "/api/v1/plans", "/api/v1/reconcile"} <= set(
        doc["paths"]
    )


def test_served_document_equals_the_committed_one(client, issued: Tokens) -> None:
    served = client.get("/api/v1/openapi.json", headers=bearer(issued.viewer)).json()
    assert served == json.loads(OPENAPI_PATH.read_text())
