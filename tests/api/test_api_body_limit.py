"""The API's request-size limit holds on every route, before authentication reads anything."""

from __future__ import annotations

import pytest
from apikit import Tokens, bearer, vm_doc

from controller.api.bodies import MAX_BODY_BYTES

HUGE = b"x" * (MAX_BODY_BYTES + 1)


@pytest.mark.parametrize(
    ("method", "path", "authenticated"),
    [
        pytest.param("POST", "/api/v1/virtualmachines", False, id="create-without-token"),
        pytest.param("POST", "/api/v1/reconcile", True, id="action-ignoring-its-body"),
        pytest.param("PUT", "/api/v1/hosts/h1", True, id="replace"),
        pytest.param("POST", "/healthz", False, id="unrouted-method"),
    ],
)
def test_body_over_the_limit_is_413(client, issued: Tokens, method, path, authenticated) -> None:
    headers = {"content-type": "application/json"}
    if authenticated:
        headers.update(bearer(issued.operator))
    response = client.request(method, path, content=HUGE, headers=headers)
    assert response.status_code == 413
    body = response.json()
    assert (body["kind"], body["code"], body["reason"]) == ("Status", 413, "RequestEntityTooLarge")
    assert f"the limit is {MAX_BODY_BYTES} bytes" in body["message"]


def test_body_within_the_limit_is_served(client, issued: Tokens) -> None:
    doc = vm_doc("small", labels={f"k{i}": "v" * 60 for i in range(60)})
    response = client.post("/api/v1/virtualmachines", json=doc, headers=bearer(issued.operator))
    assert response.status_code == 201, response.text
    assert response.json()["metadata"]["labels"]["k59"] == "v" * 60
