"""The controller's lease keeper: a renewal is in flight at most REQUEST_TIMEOUT_S, the bound
the HA timing (controller.ha.HostHealth.safe_at) counts on; a silent agent must not hold it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.agents import AgentClient
from controller.leases import LeaseKeeper
from controller.plan.health import REQUEST_TIMEOUT_S
from controller.store import open_store
from schemas.host import Host


@pytest.fixture
def silent_agent() -> Iterator[str]:
    """Yields the URL of a TCP server on loopback that accepts and reads but never answers
    (an agent whose host froze, or whose answers a partition drops)."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def test_renewal_to_a_silent_agent_gives_up_within_the_request_timeout(
    silent_agent: str, tmp_path: Path
) -> None:
    store = open_store(None, state_dir=tmp_path)
    host = Host.model_validate({"metadata": {"name": "h1"}, "spec": {"address": silent_agent}})
    client = AgentClient(silent_agent, host="h1", timeout_s=30.0)
    keeper = LeaseKeeper(store, lambda: [host], lambda _h: client, holder="c1")
    try:
        started = time.monotonic()
        renewed = keeper.renew_due()
        elapsed = time.monotonic() - started
    finally:
        client.close()
        store.close()
    assert renewed == []
    # The bound is the client timeout; the extra second absorbs thread scheduling on a loaded
    # machine, not network waiting.
    assert elapsed <= REQUEST_TIMEOUT_S + 1.5, f"renewal held the keeper {elapsed:.1f}s"
