"""A NAT network without a host address is an invalid spec (422), not a libvirt failure (502)."""

from __future__ import annotations

import warnings

import pytest
from pydantic import ValidationError

from agentapi import AgentError, NetworkSpec
from nodeagent.agent import Agent
from nodeagent.server import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def test_nat_without_ipv4_cidr_is_refused_by_the_model() -> None:
    with pytest.raises(ValidationError, match="mode nat needs ipv4_cidr"):
        NetworkSpec(name="lan", mode="nat")


def test_nat_without_ipv4_cidr_is_a_422_from_the_agent(agent: Agent) -> None:
    response = TestClient(create_app(agent)).put(
        "/v1/networks/lan", json={"name": "lan", "mode": "nat"}
    )
    assert response.status_code == 422, response.text
    error = AgentError.model_validate(response.json())
    assert error.type == "invalid_spec"
    assert "mode nat needs ipv4_cidr" in error.message


def test_isolated_without_ipv4_cidr_is_still_allowed() -> None:
    assert NetworkSpec(name="lab", mode="isolated").ipv4_cidr is None
