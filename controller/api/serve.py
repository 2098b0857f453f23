"""Serving the API with uvicorn: TLS with a fleet-CA certificate, or plain HTTP on loopback.

The server certificate is issued like an agent's (`corral certs host corral-api --dir
DIR --ip ...`): `--certs DIR/hosts/corral-api` then holds ca.crt, agent.crt and
agent.key. Clients verify it with the fleet CA (ca.crt) and authenticate with a
bearer token; no client certificate is asked for.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from nodeagent.tls import ServeConfigError, build_tls_server, is_loopback, parse_listen

__all__ = [
    "API_CERT_NAME",
    "ServeConfigError",
    "ServerThread",
    "build_server",
    "is_loopback",
    "parse_listen",
]

log = logging.getLogger(__name__)

API_CERT_NAME = "corral-api"


def build_server(
    app: Any,
    listen: str,
    certs_dir: str | Path | None,
    *,
    insecure_dev: bool = False,
    log_level: str = "warning",
) -> uvicorn.Server:
    """Return a uvicorn server for the API app.

    With `certs_dir` (ca.crt, agent.crt, agent.key) it serves HTTPS; plain HTTP needs
    `insecure_dev` and a loopback address: tokens must never cross a network in clear.
    """
    return build_tls_server(
        app,
        listen,
        certs_dir,
        insecure_dev=insecure_dev,
        log_level=log_level,
        cert_name=API_CERT_NAME,
        require_controller=False,
        graceful_shutdown_s=3,
    )


class ServerThread:
    """Runs a uvicorn server on a thread (beside the reconcile loop, or in tests)."""

    def __init__(self, server: uvicorn.Server) -> None:
        self.server = server
        self.thread = threading.Thread(target=server.run, name="corral-api", daemon=True)

    def start(self, timeout_s: float = 10.0) -> None:
        """Start serving; return once the socket listens (raise RuntimeError if it did not)."""
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start (is the port taken?)")
            time.sleep(0.02)

    @property
    def port(self) -> int:
        """Return the port actually bound (useful with port 0)."""
        return self.server.servers[0].sockets[0].getsockname()[1]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
