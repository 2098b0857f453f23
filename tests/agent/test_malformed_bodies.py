"""A body that cannot even be decoded, and an unknown route, get the agent's typed error body."""

from __future__ import annotations

import warnings

import pytest

from agentapi import AgentError
from nodeagent.agent import Agent
from nodeagent.server import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v1/domains/web-1"),
        ("PUT", "/v1/networks/lan"),
        ("POST", "/v1/domains/web-1/migrate"),
        ("PUT", "/v1/domains/web-1/balloon"),
    ],
)
def test_undecodable_body_is_a_typed_400(agent: Agent, method: str, path: str) -> None:
    client = TestClient(create_app(agent))
    response = client.request(
        method, path, content=b"\xff\xfei\xc3C", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    error = AgentError.model_validate(response.json())
    assert (error.type, error.field, error.retryable) == ("invalid_spec", "body", False)


def test_unknown_route_is_a_typed_404(agent: Agent) -> None:
    response = TestClient(create_app(agent)).get("/v1/no-such-thing")
    assert response.status_code == 404
    assert AgentError.model_validate(response.json()).type == "not_found"
