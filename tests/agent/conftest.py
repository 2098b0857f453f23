"""Fixtures for agent tests: a fresh libvirt test-driver host per test, the real agent
app served by uvicorn on loopback, and the real client talking to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from agentkit import NODE_URI, ServerThread, free_port, make_spec
from fastapi import FastAPI

from agentapi import DomainSpec
from controller.agents import AgentClient
from nodeagent.agent import Agent
from nodeagent.server import create_app


@pytest.fixture(scope="session")
def loopback_server() -> Iterator[tuple[FastAPI, str]]:
    app = create_app()
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none"
    )
    server = ServerThread(uvicorn.Server(config))
    server.start()
    yield app, f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def hooks_dir(tmp_path: Path) -> Path:
    path = tmp_path / "hooks"
    path.mkdir()
    return path


@pytest.fixture
def make_agent(hooks_dir: Path) -> Iterator[Callable[..., Agent]]:
    """Return a factory of started agents over a fresh test-driver host; closes them all."""
    agents: list[Agent] = []

    def _make(uri: str = NODE_URI, **kwargs: Any) -> Agent:
        kwargs.setdefault("hooks_dir", hooks_dir)
        kwargs.setdefault("hook_timeout_s", 2.0)
        interval = kwargs.pop("watchdog_interval_s", None)
        agent = Agent(uri, **kwargs)
        agent.start(watchdog_interval_s=interval)
        agents.append(agent)
        return agent

    yield _make
    for agent in agents:
        agent.close()


@pytest.fixture
def agent(make_agent: Callable[..., Agent]) -> Agent:
    return make_agent()


@pytest.fixture
def client_for(
    loopback_server: tuple[FastAPI, str],
) -> Iterator[Callable[[Agent], AgentClient]]:
    """Return a factory: serve this agent on the loopback server and return a client to it."""
    app, url = loopback_server
    clients: list[AgentClient] = []

    def _client(agent: Agent) -> AgentClient:
        app.state.agent = agent
        client = AgentClient(url, host="test-host", timeout_s=10)
        clients.append(client)
        return client

    yield _client
    for client in clients:
        client.close()


@pytest.fixture
def client(agent: Agent, client_for: Callable[[Agent], AgentClient]) -> AgentClient:
    return client_for(agent)


@pytest.fixture
def spec() -> DomainSpec:
    return make_spec()
