"""Lease renewals are granted on time: counted from arrival, never queued behind slow
verbs, refused when granting would start later than the renewal's request timeout."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest
import uvicorn
from agentkit import ServerThread, free_port, make_spec, write_hook

from controller.agents import AgentClient
from nodeagent.errors import AgentFailure
from nodeagent.lease import Lease, renew_lease
from nodeagent.models import LeaseRenewal
from nodeagent.server import create_app

HELD = Lease(ttl_s=10, holder="ctl", epoch=2, expires_at=110.0)


@pytest.mark.parametrize(
    ("renewal", "now", "arrived_at", "expires_at"),
    [
        pytest.param(LeaseRenewal(holder="ctl", epoch=2), 100.0, None, 110.0, id="no-stamp"),
        pytest.param(LeaseRenewal(holder="ctl", epoch=2), 101.5, 100.0, 110.0, id="from-arrival"),
        pytest.param(
            LeaseRenewal(holder="ctl", epoch=2, request_timeout_s=5),
            104.9,
            100.0,
            110.0,
            id="within-own-timeout",
        ),
        pytest.param(
            LeaseRenewal(holder="ctl", epoch=2), 100.0, 100.5, 110.0, id="stamp-after-now"
        ),
    ],
)
def test_renewal_counts_from_its_arrival(renewal, now, arrived_at, expires_at):
    assert renew_lease(HELD, renewal, now=now, arrived_at=arrived_at).expires_at == expires_at


@pytest.mark.parametrize(
    ("renewal", "now"),
    [
        pytest.param(LeaseRenewal(holder="ctl", epoch=2), 102.01, id="default-2s"),
        pytest.param(
            LeaseRenewal(holder="ctl", epoch=2, request_timeout_s=0.5), 100.6, id="own-timeout"
        ),
    ],
)
def test_renewal_granted_later_than_its_timeout_is_refused(renewal, now):
    with pytest.raises(AgentFailure, match="lease_renewal_late") as refused:
        renew_lease(HELD, renewal, now=now, arrived_at=100.0)
    assert (refused.value.error.type, refused.value.error.retryable) == ("conflict", True)


class SmallThreadPool:
    """ASGI wrapper: the server's thread pool (sync routes) holds `tokens` workers."""

    def __init__(self, app: Any, tokens: int) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        anyio.to_thread.current_default_thread_limiter().total_tokens = self.tokens
        await self.app(scope, receive, send)


@pytest.fixture
def small_pool_url(make_agent) -> Iterator[str]:
    """Serve a fresh agent with a two-worker thread pool on loopback."""
    agent = make_agent(hook_timeout_s=30.0, lease_ttl_s=5.0)
    port = free_port()
    config = uvicorn.Config(
        SmallThreadPool(create_app(agent), tokens=2),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        ws="none",
    )
    server = ServerThread(uvicorn.Server(config))
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_renewal_is_granted_at_once_while_slow_verbs_fill_the_thread_pool(
    small_pool_url, hooks_dir: Path, tmp_path: Path
):
    url = small_pool_url
    started = tmp_path / "started"
    started.mkdir()
    write_hook(hooks_dir, "before_vm_start", "10_slow.sh", f'touch "{started}/$$"\nsleep 2\ncat\n')
    names = [f"slow-{n}" for n in range(3)]
    with AgentClient(url, timeout_s=30) as client:
        client.renew_lease("ctl", ttl_s=5.0, epoch=1)
        for n, name in enumerate(names):
            client.ensure_domain_defined(make_spec(name, n=n, hooks=["slow"]))

    def call(verb: str, *args: str) -> None:
        with AgentClient(url, timeout_s=30) as own:
            getattr(own, verb)(*args)

    slow = [threading.Thread(target=call, args=("ensure_running", name)) for name in names]
    for thread in slow:
        thread.start()
    deadline = time.monotonic() + 10
    while len(list(started.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(list(started.iterdir())) == 2, "two slow starts should occupy both workers"
    # A sync read queues behind them: proof the pool is full while the renewal is served.
    read = threading.Thread(target=call, args=("get_state",))
    read.start()

    with AgentClient(url, timeout_s=30) as client:
        sent = time.monotonic()
        lease = client.renew_lease("ctl", ttl_s=5.0, epoch=1, request_timeout_s=2.0)
        answered_s = time.monotonic() - sent
        queued_read = read.is_alive()
        queued_starts = sum(thread.is_alive() for thread in slow)

    assert answered_s < 0.5
    assert lease.held and lease.expires_in_s is not None and lease.expires_in_s > 4.5
    assert (queued_read, queued_starts) == (True, 3)
    for thread in [*slow, read]:
        thread.join(timeout=30)
    with AgentClient(url, timeout_s=30) as client:
        states = {d.name: d.state for d in client.get_state().domains if d.name in names}
    assert states == dict.fromkeys(names, "running")


def _post_with_late_body(url: str, renewal: dict[str, Any], body_delay_s: float) -> int:
    """POST /v1/lease sending the headers at once and the body `body_delay_s` later;
    return the HTTP status."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps(renewal).encode()
    head = (
        f"POST /v1/lease HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        time.sleep(body_delay_s)
        sock.sendall(body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize(
    ("request_timeout_s", "status", "extended"),
    [
        pytest.param(0.5, 409, False, id="stale-refused"),
        pytest.param(5.0, 200, True, id="slow-granted-from-arrival"),
    ],
)
def test_renewal_whose_body_arrives_late_counts_from_arrival_or_is_refused(
    agent, client_for, request_timeout_s, status, extended
):
    client = client_for(agent)
    client.renew_lease("ctl", ttl_s=30.0, epoch=1)
    renewal = {"holder": "ctl", "epoch": 1, "ttl_s": 30.0, "request_timeout_s": request_timeout_s}

    assert _post_with_late_body(client.base_url, renewal, body_delay_s=1.0) == status

    expires_in_s = client.get_lease().expires_in_s
    assert expires_in_s is not None
    if extended:
        # Granted about 1 s after arrival, yet counted from arrival: 30 s minus that second.
        assert 28.5 < expires_in_s < 29.2
    else:
        assert expires_in_s < 29.0


def test_renewal_from_a_client_that_disconnected_is_not_granted(agent):
    """The ASGI app sees the body and then the client's disconnect before granting."""
    app = create_app(agent)
    body = json.dumps({"holder": "ctl", "epoch": 1, "ttl_s": 30.0}).encode()
    inbox: list[dict[str, Any]] = [
        {"type": "http.request", "body": body, "more_body": False},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/lease",
        "raw_path": b"/v1/lease",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"agent.test"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8470),
    }
    asyncio.run(app(scope, receive, send))

    assert sent[0]["status"] == 409
    assert b"client disconnected" in sent[1]["body"]
    assert agent.lease.state().granted is False
