"""The real node agent served over HTTP on loopback, in this process, for real-libvirt tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from controller.agents import AgentClient
from nodeagent.agent import Agent
from nodeagent.serve import build_server

AGENT_CALL_TIMEOUT_S = 180.0
"""Verbs wait for libvirt (a graceful stop waits for the guest): allow slow TCG guests."""


def free_port() -> int:
    """Returns a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving_agent(libvirt_uri: str, hooks_dir: Path | None = None) -> Iterator[AgentClient]:
    """Yields a client of a real agent (uvicorn, plain HTTP on loopback, --insecure-dev)
    that owns `libvirt_uri`; stops the server and closes libvirt on exit.
    """
    agent = Agent(libvirt_uri, hooks_dir=hooks_dir)
    port = free_port()
    server = build_server(agent, f"127.0.0.1:{port}", None, insecure_dev=True, log_level="warning")
    agent.start()
    thread = threading.Thread(target=server.run, name="agent-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"agent server on 127.0.0.1:{port} did not start")
            time.sleep(0.02)
        with AgentClient(f"http://127.0.0.1:{port}", timeout_s=AGENT_CALL_TIMEOUT_S) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        agent.close()
