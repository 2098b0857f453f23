"""The API served on loopback over a SQLite store, and a tiny guest it knows, for console
tests on the real libvirtd."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from agentapi import DomainSpec
from controller.agentpool import AgentPool
from controller.agents import AgentClient
from controller.api.app import create_app
from controller.api.serve import ServerThread, build_server
from controller.api.tokens import TokenStore
from controller.store import Store, open_store
from schemas import Host, VirtualMachine

HOST = "h1"


@dataclass
class ServedApi:
    """A store, its token store, and the base URL of the API serving them."""

    store: Store
    tokens: TokenStore
    base_url: str


@contextmanager
def serving_api(tmp_path: Path) -> Iterator[ServedApi]:
    """Yield the API on a free loopback port (plain HTTP) over tmp_path/corral.db, with an
    agent pool for console routes; stop the server and close everything on exit."""
    url = f"sqlite:///{tmp_path / 'corral.db'}"
    store = open_store(url)
    tokens = TokenStore.open(url)
    app = create_app(store, tokens)
    app.state.agent_pool = AgentPool()
    server = ServerThread(build_server(app, "127.0.0.1:0", None, insecure_dev=True))
    server.start()
    try:
        yield ServedApi(store, tokens, f"http://127.0.0.1:{server.port}")
    finally:
        server.stop()
        app.state.agent_pool.close()
        tokens.close()
        store.close()


@contextmanager
def guest_on_agent(
    store: Store, agent: AgentClient, spec: DomainSpec, source: str
) -> Iterator[Path]:
    """Put host h1 (at `agent`) and VM `spec.name` (1 CPU, 96Mi) in the store, define the
    domain on the agent, and yield its serial log; undefine it and remove the log on exit."""
    store.put(
        Host.model_validate(
            {"kind": "Host", "metadata": {"name": HOST}, "spec": {"address": agent.base_url}}
        ),
        source,
    )
    store.put(
        VirtualMachine.model_validate(
            {"kind": "VirtualMachine", "metadata": {"name": spec.name},
             "spec": {"cpus": 1, "memory": "96Mi"}}
        ),
        source,
    )  # fmt: skip
    serial = Path(spec.serial_log_path or "")
    try:
        agent.ensure_domain_defined(spec)
        yield serial
    finally:
        agent.ensure_undefined(spec.name, force=True)
        serial.unlink(missing_ok=True)


def observe(store: Store, agent: AgentClient) -> None:
    """Record the agent's current state as host h1's observation."""
    store.put_observed(HOST, True, agent.get_state().model_dump(mode="json"))
