"""The dashboard's web consoles against the real app served on 127.0.0.1.

The edge is faked: the host's agent is a loopback websocket server that behaves like
the agent's serial console over a tiny shell (it says "attached", echoes what is typed
and answers `echo WORD`). Everything between the browser and that socket is real:
the dashboard's cookie-authenticated websocket, the API's console relay and its events.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.sync.server import ServerConnection, serve

from controller.agentpool import AgentPool
from controller.api import TokenStore, create_app
from controller.api.serve import ServerThread, build_server
from controller.dashboard.consoles import same_origin
from controller.dashboard.session import COOKIE, csrf_token
from controller.store import Store, open_store
from schemas import Host, VirtualMachine
from tests.helpers.services import CHROMIUM, playwright_sync

VM = "web-con"


def fake_shell(conn: ServerConnection) -> None:
    """Serve one serial console session: echo keystrokes, run `echo WORD` on Enter."""
    domain = conn.request.path.split("/")[3]
    conn.send(json.dumps({"type": "attached", "domain": domain, "message": "serial console"}))
    conn.send(b"~ # ")
    line = b""
    for frame in conn:
        data = frame if isinstance(frame, bytes) else frame.encode()
        for byte in data:
            char = bytes([byte])
            if char == b"\r":
                command = line.decode()
                out = command[5:] + "\r\n" if command.startswith("echo ") else ""
                conn.send(b"\r\n" + out.encode() + b"~ # ")
                line = b""
            else:
                line += char
                conn.send(char)


class ConsoleSite:
    """The API + dashboard on loopback, one host whose agent is the fake shell."""

    def __init__(self, root: Path) -> None:
        url = f"sqlite:///{root / 'corral.db'}"
        self.store: Store = open_store(url)
        self.tokens = TokenStore.open(url)
        self.agent = serve(fake_shell, "127.0.0.1", 0)
        self.agent_thread = threading.Thread(target=self.agent.serve_forever, daemon=True)
        self.agent_thread.start()
        agent_port = self.agent.socket.getsockname()[1]
        self.store.put(
            Host.model_validate(
                {"kind": "Host", "metadata": {"name": "h1"},
                 "spec": {"address": f"http://127.0.0.1:{agent_port}"}}
            ),
            "test",
        )  # fmt: skip
        self.store.put(
            VirtualMachine.model_validate(
                {"kind": "VirtualMachine", "metadata": {"name": VM},
                 "spec": {"cpus": 1, "memory": "96Mi"}}
            ),
            "test",
        )  # fmt: skip
        domain = {"name": VM, "state": "running", "metadata": {"corral.dev/vm": VM}}
        self.store.put_observed("h1", True, {"domains": [domain]})
        app = create_app(self.store, self.tokens)
        app.state.agent_pool = AgentPool()
        self.pool = app.state.agent_pool
        self.server = ServerThread(build_server(app, "127.0.0.1:0", None, insecure_dev=True))
        self.server.start()
        self.operator = self.tokens.create("otto", "operator")
        self.viewer = self.tokens.create("vera", "viewer")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def ws_url(self, session: str) -> str:
        return (
            self.url.replace("http://", "ws://")
            + f"/ui/vms/{VM}/console/ws?csrf={csrf_token(session)}"
        )

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for event in self.store.list_events("VirtualMachine", VM, limit=50):
            counts[event.reason] = counts.get(event.reason, 0) + event.count
        return counts

    def close(self) -> None:
        self.server.stop()
        self.agent.shutdown()
        self.agent_thread.join(timeout=5)
        self.pool.close()
        self.tokens.close()
        self.store.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[ConsoleSite]:
    site = ConsoleSite(tmp_path)
    yield site
    site.close()


def _handshake(site: ConsoleSite, session: str, origin: str | None, csrf: str | None = None):
    headers = {"Cookie": f"{COOKIE}={session}"}
    if origin is not None:
        headers["Origin"] = origin
    url = site.ws_url(session)
    if csrf is not None:
        url = url.split("?")[0] + f"?csrf={csrf}"
    return connect(url, additional_headers=headers, open_timeout=10)


def test_same_origin_compares_scheme_host_and_port() -> None:
    assert same_origin("http://127.0.0.1:8080", "127.0.0.1:8080", secure=False)
    assert same_origin("https://corral.example", "corral.example", secure=True)
    assert not same_origin("https://corral.example", "corral.example", secure=False)
    assert not same_origin("http://127.0.0.1:8081", "127.0.0.1:8080", secure=False)
    assert not same_origin("http://evil.example", "127.0.0.1:8080", secure=False)
    assert not same_origin(None, "127.0.0.1:8080", secure=False)
    assert not same_origin("null", "127.0.0.1:8080", secure=False)


def test_session_cookie_from_the_same_origin_opens_the_console(site: ConsoleSite) -> None:
    with _handshake(site, site.operator, origin=site.url) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "attached"
        assert ws.recv(timeout=10) == b"~ # "
        word = f"hi-{random.randrange(10**6, 10**7)}"
        ws.send(f"echo {word}\r".encode())
        seen = b""
        while f"\r\n{word}\r\n".encode() not in seen:
            seen += ws.recv(timeout=10)
    _wait_for(site, {"ConsoleOpened": 1, "ConsoleClosed": 1})


@pytest.mark.parametrize(
    ("who", "origin", "csrf", "status"),
    [
        ("operator", "http://evil.example", None, 403),
        ("operator", None, None, 403),
        ("operator", "same", "0" * 40, 403),
        ("viewer", "same", None, 403),
        ("made-up", "same", None, 403),
    ],
)
def test_console_refusals(
    site: ConsoleSite, who: str, origin: str | None, csrf: str | None, status: int
) -> None:
    session = {"operator": site.operator, "viewer": site.viewer}.get(who, "made-up-token")
    with pytest.raises(InvalidStatus) as refused:
        _handshake(site, session, site.url if origin == "same" else origin, csrf)
    assert refused.value.response.status_code == status
    counts = site.counts()
    assert counts.get("ConsoleRefused") == 1
    assert "ConsoleOpened" not in counts


def test_console_and_display_pages_need_the_operator_role(site: ConsoleSite) -> None:
    with httpx.Client(base_url=site.url) as client:
        for token, status in ((site.operator, 200), (site.viewer, 403)):
            client.cookies.set(COOKIE, token, path="/ui")
            for page in ("console", "display"):
                answer = client.get(f"/ui/vms/{VM}/{page}")
                assert answer.status_code == status, (page, answer.text[:300])
            vm_page = client.get(f"/ui/vms/{VM}").text
            assert (f'href="/ui/vms/{VM}/console"' in vm_page) == (status == 200)
        client.cookies.set(COOKIE, site.operator, path="/ui")
        page = client.get(f"/ui/vms/{VM}/console").text
        assert f'data-socket="/ui/vms/{VM}/console/ws"' in page
        assert f'data-csrf="{csrf_token(site.operator)}"' in page
        assert client.get("/ui/vms/nope/console").status_code == 404


def test_display_ticket_needs_the_csrf_header_and_the_operator_role(site: ConsoleSite) -> None:
    with httpx.Client(base_url=site.url) as client:
        client.cookies.set(COOKIE, site.operator, path="/ui")
        no_header = client.post(f"/ui/vms/{VM}/display/ticket")
        assert no_header.status_code == 403
        client.cookies.set(COOKIE, site.viewer, path="/ui")
        viewer = client.post(
            f"/ui/vms/{VM}/display/ticket", headers={"X-CSRF-Token": csrf_token(site.viewer)}
        )
        assert viewer.status_code == 403
        assert "operator" in viewer.json()["message"]
        client.cookies.set(COOKIE, site.operator, path="/ui")
        operator = client.post(
            f"/ui/vms/{VM}/display/ticket", headers={"X-CSRF-Token": csrf_token(site.operator)}
        )
    # The fake agent speaks only the console websocket, so its ticket endpoint answers
    # 404 and the API reports the agent as unavailable: the request got past the checks.
    assert operator.status_code == 503, operator.text
    assert "GraphicsTicketIssued" not in site.counts()


def _wait_for(site: ConsoleSite, expected: dict[str, int]) -> None:
    deadline = time.monotonic() + 10
    while site.counts() != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert site.counts() == expected


def test_typing_into_the_terminal_in_chromium(site: ConsoleSite) -> None:
    with playwright_sync().sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.goto(site.url + f"/ui/vms/{VM}/console")
            page.get_by_label("API token").fill(site.operator)
            page.keyboard.press("Enter")
            page.wait_for_url(site.url + f"/ui/vms/{VM}/console")
            page.get_by_role("status").filter(has_text="Attached").wait_for(timeout=15_000)
            page.locator("#terminal .xterm-screen").click()
            word = f"hi-{random.randrange(10**6, 10**7)}"
            page.keyboard.type(f"echo {word}")
            page.keyboard.press("Enter")
            rows = page.locator("#terminal .xterm-rows")
            rows.filter(has_text=f"~ # echo {word}").wait_for(timeout=15_000)
            lines = [line.strip() for line in rows.inner_text().splitlines()]
            assert word in lines
        finally:
            browser.close()
    _wait_for(site, {"ConsoleOpened": 1, "ConsoleClosed": 1})


def test_display_page_asks_for_a_ticket_in_chromium(site: ConsoleSite) -> None:
    with playwright_sync().sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            tickets: list[str] = []
            page.on(
                "request",
                lambda r: (
                    tickets.append(r.headers.get("x-csrf-token", ""))
                    if r.url.endswith("/display/ticket")
                    else None
                ),
            )
            page.goto(site.url + f"/ui/vms/{VM}/display")
            page.get_by_label("API token").fill(site.operator)
            page.keyboard.press("Enter")
            page.wait_for_url(site.url + f"/ui/vms/{VM}/display")
            status = page.locator("#display-status")
            status.filter(has_text="Refused (503)").wait_for(timeout=15_000)
        finally:
            browser.close()
    assert tickets == [csrf_token(site.operator)]
