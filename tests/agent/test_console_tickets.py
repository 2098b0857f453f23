"""Graphics tickets: one use, short life, one domain; the proxy refuses without a valid one.
Serial and graphics websockets refuse what cannot be reached, with a typed error."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
from agentkit import NODE_URI, ServerThread, free_port, make_spec
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from controller.agents import AgentClient, AgentNotFound, client_ssl_context
from nodeagent.agent import Agent
from nodeagent.serve import build_server
from nodeagent.server import create_app
from nodeagent.tls import make_ca, make_controller_cert, make_host_cert
from nodeagent.vncproxy import (
    DisplayEndpoint,
    NoDisplay,
    TicketBook,
    TicketRefused,
    display_endpoint,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def book(clock: FakeClock) -> TicketBook:
    return TicketBook(clock=clock)


def test_ticket_works_once(book: TicketBook) -> None:
    ticket = book.issue("web-1", "vnc", ttl_s=30)
    assert (ticket.domain, ticket.kind, ticket.ttl_s, len(ticket.ticket) >= 40) == (
        "web-1",
        "vnc",
        30,
        True,
    )
    book.redeem(ticket.ticket, "web-1", "vnc")
    with pytest.raises(TicketRefused, match="unknown or already used"):
        book.redeem(ticket.ticket, "web-1", "vnc")


@pytest.mark.parametrize(
    ("age_s", "domain", "kind", "error"),
    [
        pytest.param(29.9, "web-1", "vnc", None, id="just-in-time"),
        pytest.param(30.0, "web-1", "vnc", "expired", id="expired-at-ttl"),
        pytest.param(31.0, "web-1", "vnc", "unknown or already used", id="expired-and-swept"),
        pytest.param(1.0, "db-1", "vnc", "for vnc of 'web-1'", id="other-domain"),
        pytest.param(1.0, "web-1", "spice", "for vnc of 'web-1'", id="other-display"),
    ],
)
def test_ticket_redeem_rules(
    book: TicketBook, clock: FakeClock, age_s: float, domain: str, kind: str, error: str | None
) -> None:
    ticket = book.issue("web-1", "vnc", ttl_s=30)
    other = book.issue("other", "vnc", ttl_s=60)
    clock.now += age_s
    if age_s > 30.0:
        book.redeem(other.ticket, "other", "vnc")  # any use sweeps expired tickets
    if error is None:
        book.redeem(ticket.ticket, domain, kind)
    else:
        with pytest.raises(TicketRefused, match=error):
            book.redeem(ticket.ticket, domain, kind)
    with pytest.raises(TicketRefused):  # whatever happened, the ticket is gone
        book.redeem(ticket.ticket, "web-1", "vnc")


@pytest.mark.parametrize("token", [None, ""], ids=["none", "empty"])
def test_no_ticket_is_refused(book: TicketBook, token: str | None) -> None:
    with pytest.raises(TicketRefused, match="a ticket is required"):
        book.redeem(token, "web-1", "vnc")


def test_ttl_is_clamped_and_expired_tickets_are_not_outstanding(
    book: TicketBook, clock: FakeClock
) -> None:
    assert book.issue("a", "vnc", ttl_s=0.01).ttl_s == 1.0
    assert book.issue("a", "vnc", ttl_s=10_000).ttl_s == 300.0
    assert book.outstanding() == 2
    clock.now += 1.0
    assert book.outstanding() == 1


@pytest.mark.parametrize(
    ("graphics", "kind", "expected"),
    [
        pytest.param(
            "<graphics type='vnc' port='5901' autoport='yes' listen='127.0.0.1'>"
            "<listen type='address' address='127.0.0.1'/></graphics>",
            "vnc",
            DisplayEndpoint(host="127.0.0.1", port=5901),
            id="vnc-loopback",
        ),
        pytest.param(
            "<graphics type='vnc' port='5902'><listen type='address' address='0.0.0.0'/>"
            "</graphics>",
            "vnc",
            DisplayEndpoint(host="127.0.0.1", port=5902),
            id="vnc-any-reached-on-loopback",
        ),
        pytest.param(
            "<graphics type='vnc' socket='/run/libvirt/qemu/vnc-1.sock'>"
            "<listen type='socket' socket='/run/libvirt/qemu/vnc-1.sock'/></graphics>",
            "vnc",
            DisplayEndpoint(socket="/run/libvirt/qemu/vnc-1.sock"),
            id="vnc-unix-socket",
        ),
        pytest.param(
            "<graphics type='vnc' port='5900'/><graphics type='spice' port='5930'/>",
            "spice",
            DisplayEndpoint(host="127.0.0.1", port=5930),
            id="spice-beside-vnc",
        ),
    ],
)
def test_display_endpoint(graphics: str, kind: str, expected: DisplayEndpoint) -> None:
    assert display_endpoint(f"<domain><devices>{graphics}</devices></domain>", kind) == expected


@pytest.mark.parametrize(
    ("graphics", "error"),
    [
        pytest.param("", "has no vnc display", id="none"),
        pytest.param("<graphics type='spice' port='5930'/>", "has no vnc display", id="spice-only"),
        pytest.param("<graphics type='vnc' port='-1' autoport='yes'/>", "no port", id="no-port"),
    ],
)
def test_display_endpoint_missing(graphics: str, error: str) -> None:
    with pytest.raises(NoDisplay, match=error):
        display_endpoint(f"<domain><devices>{graphics}</devices></domain>", "vnc")


@pytest.fixture
def app_client(agent: Agent) -> TestClient:
    return TestClient(create_app(agent))


def test_ticket_for_a_missing_domain_or_display_is_refused(
    agent: Agent, client_for: Callable[[Agent], AgentClient]
) -> None:
    client = client_for(agent)
    with pytest.raises(AgentNotFound, match="domain 'nope' not found"):
        client.issue_graphics_ticket("nope")
    spec = make_spec(disks=[], graphics="none")
    client.ensure_domain_defined(spec)
    client.ensure_running(spec.name)
    with pytest.raises(AgentNotFound, match="display 'vnc of web-1' not found"):
        client.issue_graphics_ticket(spec.name)


@pytest.mark.parametrize(
    "query", ["", "?ticket=made-up", "?ticket="], ids=["none", "unknown", "empty"]
)
def test_graphics_proxy_without_a_valid_ticket_is_refused(
    app_client: TestClient, query: str
) -> None:
    url = f"/v1/domains/web-1/graphics{query}"
    with pytest.raises(WebSocketDisconnect) as refused, app_client.websocket_connect(url) as ws:
        ws.receive_bytes()
    assert refused.value.code == 4403


def test_serial_console_error_is_typed(agent: Agent, app_client: TestClient) -> None:
    with app_client.websocket_connect("/v1/domains/absent/console") as ws:
        message = json.loads(ws.receive_text())
        assert (message["type"], message["error"]["type"]) == ("error", "not_found")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 4404


@pytest.fixture(scope="module")
def tls_agent(tmp_path_factory: pytest.TempPathFactory):
    certs = tmp_path_factory.mktemp("fleet")
    make_ca(certs)
    make_host_cert(certs, "host-a", ips=["127.0.0.1"])
    make_controller_cert(certs)
    make_controller_cert(certs, name="operator-laptop", subdir="operator")
    agent = Agent(NODE_URI)
    agent.start()
    port = free_port()
    server = ServerThread(
        build_server(agent, f"127.0.0.1:{port}", certs / "hosts" / "host-a", log_level="error")
    )
    server.start()
    yield certs, f"wss://127.0.0.1:{port}"
    server.stop()
    agent.close()


def _tls(cert_dir: Path) -> ssl.SSLContext:
    return client_ssl_context(cert_dir)


def test_console_websocket_needs_the_controller_certificate(tls_agent) -> None:
    certs, url = tls_agent
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{url}/v1/domains/absent/console", ssl=_tls(certs / "operator"))
    assert refused.value.response.status_code == 403
    with connect(f"{url}/v1/domains/absent/console", ssl=_tls(certs / "controller")) as ws:
        assert json.loads(ws.recv(timeout=10))["error"]["type"] == "not_found"
