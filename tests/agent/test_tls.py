"""Mutual TLS on a real uvicorn over 127.0.0.1: only the controller's certificate gets in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from agentkit import NODE_URI, ServerThread, free_port

from agentapi import VERBS
from controller.agents import AgentClient, AgentUnauthorized, AgentUnavailable
from controller.agentverbs import call
from nodeagent.agent import Agent
from nodeagent.serve import ServeConfigError, build_server
from nodeagent.tls import make_ca, make_controller_cert, make_host_cert


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    certs = tmp_path_factory.mktemp("fleet")
    make_ca(certs)
    make_host_cert(certs, "host-a", ips=["127.0.0.1"])
    make_host_cert(certs, "host-b", ips=["127.0.0.1"])
    make_controller_cert(certs)
    make_controller_cert(certs, name="operator-laptop", subdir="operator")
    return certs


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    certs = tmp_path_factory.mktemp("rogue")
    make_ca(certs, name="Rogue CA")
    make_controller_cert(certs)
    return certs


@pytest.fixture(scope="module")
def tls_url(fleet: Path) -> Iterator[str]:
    agent = Agent(NODE_URI)
    agent.start()
    port = free_port()
    server = ServerThread(
        build_server(agent, f"127.0.0.1:{port}", fleet / "hosts" / "host-a", log_level="error")
    )
    server.start()
    yield f"https://127.0.0.1:{port}"
    server.stop()
    agent.close()


def _as_client(directory: Path, url: str) -> AgentClient:
    return AgentClient(url, cert_dir=directory, connect_timeout_s=2, timeout_s=5)


def _host_cert_as_client(fleet: Path, tmp_path: Path) -> Path:
    """Lay a host certificate out as if it were a client certificate directory."""
    src = fleet / "hosts" / "host-b"
    (tmp_path / "ca.crt").write_bytes((src / "ca.crt").read_bytes())
    (tmp_path / "client.crt").write_bytes((src / "agent.crt").read_bytes())
    (tmp_path / "client.key").write_bytes((src / "agent.key").read_bytes())
    return tmp_path


def test_controller_certificate_is_accepted(fleet, tls_url):
    with _as_client(fleet / "controller", tls_url) as client:
        assert client.health().ok is True
        assert client.get_state().cpus == 4


def test_request_without_client_certificate_is_refused(fleet, tls_url):
    import httpx

    from controller.agents import error_from_response

    context = __import__("ssl").create_default_context(cafile=str(fleet / "ca.crt"))
    with httpx.Client(verify=context, timeout=5) as http:
        try:
            response = http.get(f"{tls_url}/v1/health")
        except httpx.TransportError:
            return
    pytest.fail(f"served without a client certificate: {error_from_response(response, None, None)}")


def test_certificate_from_another_ca_is_refused(fleet, other_ca, tls_url, tmp_path):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "ca.crt").write_bytes((fleet / "ca.crt").read_bytes())
    (mixed / "client.crt").write_bytes((other_ca / "controller" / "client.crt").read_bytes())
    (mixed / "client.key").write_bytes((other_ca / "controller" / "client.key").read_bytes())

    with _as_client(mixed, tls_url) as client, pytest.raises(AgentUnavailable):
        client.health()


def test_host_certificate_is_refused(fleet, tls_url, tmp_path):
    """A host certificate has no clientAuth usage: the TLS handshake already fails."""
    client = _as_client(_host_cert_as_client(fleet, tmp_path), tls_url)
    with client, pytest.raises(AgentUnavailable):
        client.health()


def test_fleet_client_certificate_without_controller_identity_is_refused(fleet, tls_url):
    """Chains to the fleet CA with clientAuth, but CN is not corral-controller: 403."""
    with _as_client(fleet / "operator", tls_url) as client:
        with pytest.raises(AgentUnauthorized, match="not the controller"):
            client.health()
        with pytest.raises(AgentUnauthorized):
            client.ensure_running("web-1")
        with pytest.raises(AgentUnauthorized):
            client.batch(
                [call(VERBS.ensure_running, name="web-1"), call(VERBS.ensure_destroyed, name="x")]
            )


def test_the_controller_certificate_batches_verbs(fleet, tls_url):
    with _as_client(fleet / "controller", tls_url) as client:
        answers = client.batch(
            [call(VERBS.ensure_running, name="absent"), call(VERBS.ensure_pool_undefined, name="p")]
        )
        assert client.batches, "served as one batch"
        assert [type(a).__name__ for a in answers] == ["AgentNotFound", "VerbResult"]


def test_plain_http_only_with_insecure_dev_on_loopback(fleet):
    agent = Agent(NODE_URI)
    with pytest.raises(ServeConfigError, match="--certs is required"):
        build_server(agent, "127.0.0.1:9", None)
    with pytest.raises(ServeConfigError, match="loopback only"):
        build_server(agent, "0.0.0.0:9", None, insecure_dev=True)
    assert build_server(agent, "127.0.0.1:9", None, insecure_dev=True).config.port == 9
