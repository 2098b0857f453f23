"""Responses match what controller/api/openapi.json declares for their operation and code."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from apikit import Tokens, bearer, host, vm_doc

from controller.api.openapi import OPENAPI_PATH

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
DOC = json.loads(OPENAPI_PATH.read_text())


def assert_documented(path: str, method: str, response: Any) -> None:
    """Fail unless the document declares the response's code and its body fits the schema."""
    declared = DOC["paths"][path][method]["responses"]
    code = str(response.status_code)
    assert code in declared, f"{method.upper()} {path}: {code} not in {sorted(declared)}"
    schema = declared[code]["content"]["application/json"]["schema"]
    jsonschema.validate(response.json(), {**schema, "components": DOC["components"]})


def test_status_before_the_first_pass_is_a_documented_null(client, issued: Tokens) -> None:
    auth = bearer(issued.admin)
    assert client.post("/api/v1/virtualmachines", json=vm_doc("web-1"), headers=auth).is_success
    response = client.get("/api/v1/virtualmachines/web-1/status", headers=auth)
    assert response.status_code == 200
    assert response.json() is None
    assert_documented("/api/v1/virtualmachines/{name}/status", "get", response)


@pytest.mark.parametrize("action", ["drain", "undrain"])
@pytest.mark.parametrize("dry_run", [False, True], ids=["write", "dry-run"])
def test_host_actions_answer_the_documented_host(
    client, issued: Tokens, action: str, dry_run: bool
) -> None:
    auth = bearer(issued.admin)
    doc = host("host-a").model_dump(mode="json", by_alias=True, exclude_none=True)
    assert client.post("/api/v1/hosts", json=doc, headers=auth).is_success
    response = client.post(
        f"/api/v1/hosts/host-a/{action}", params={"dryRun": dry_run}, headers=auth
    )
    assert response.status_code == 200, response.text
    assert response.json()["kind"] == ("DryRun" if dry_run else "Host")
    assert_documented(f"/api/v1/hosts/{{name}}/{action}", "post", response)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/history/rollups", {"until": "2024-01-01T00:00:00"}),
        ("/api/v1/history/samples", {"since": "not a time"}),
    ],
    ids=["rollups-naive-until", "samples-bad-since"],
)
def test_history_refusals_are_documented(
    client, issued: Tokens, path: str, params: dict[str, str]
) -> None:
    response = client.get(path, params=params, headers=bearer(issued.viewer))
    assert response.status_code == 400, response.text
    assert_documented(path, "get", response)
    anonymous = client.get(path)
    assert anonymous.status_code == 401
    assert_documented(path, "get", anonymous)


@pytest.mark.parametrize(
    ("vm_exists", "code"), [(False, 404), (True, 404)], ids=["no-such-vm", "vm-not-running"]
)
def test_graphics_ticket_refusals_are_documented(
    client, issued: Tokens, vm_exists: bool, code: int
) -> None:
    auth = bearer(issued.admin)
    if vm_exists:
        assert client.post("/api/v1/virtualmachines", json=vm_doc("web-1"), headers=auth).is_success
    response = client.post("/api/v1/virtualmachines/web-1/graphics-tickets", headers=auth)
    assert response.status_code == code, response.text
    assert_documented("/api/v1/virtualmachines/{name}/graphics-tickets", "post", response)
    viewer = client.post(
        "/api/v1/virtualmachines/web-1/graphics-tickets", headers=bearer(issued.viewer)
    )
    assert viewer.status_code == 403
    assert_documented("/api/v1/virtualmachines/{name}/graphics-tickets", "post", viewer)
