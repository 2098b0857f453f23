"""A body that cannot even be decoded, and an unknown route, get the agent's typed error body."""

from __future__ import annotations

import warnings

import pytest

from agentapi import API_PREFIX, VERBS, AgentError, Verb
from nodeagent.agent import Agent
from nodeagent.server import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


JSON_BODIES = [v for v in VERBS if v.request is not None and v.stream is None]
"""Every verb that takes a JSON body (agentapi.verbs)."""


@pytest.mark.parametrize("verb", JSON_BODIES, ids=lambda v: v.name)
def test_undecodable_body_is_a_typed_400(agent: Agent, verb: Verb) -> None:
    client = TestClient(create_app(agent))
    path = API_PREFIX + verb.url(**{name: "web-1" for name in verb.params})
    response = client.request(
        verb.method, path, content=b"\xff\xfei\xc3C", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    error = AgentError.model_validate(response.json())
    assert (error.type, error.field, error.retryable) == ("invalid_spec", "body", False)


def test_unknown_route_is_a_typed_404(agent: Agent) -> None:
    response = TestClient(create_app(agent)).get("/v1/no-such-thing")
    assert response.status_code == 404
    assert AgentError.model_validate(response.json()).type == "not_found"
