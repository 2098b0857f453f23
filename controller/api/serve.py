"""Serving the API with uvicorn: TLS with a fleet-CA certificate, or plain HTTP on loopback.

The server certificate is issued like an agent's (`corral certs host corral-api --dir
DIR --ip ...`): `--certs DIR/hosts/corral-api` then holds ca.crt, agent.crt and
agent.key. Clients verify it with the fleet CA (ca.crt) and authenticate with a
bearer token; no client certificate is asked for.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from nodeagent import logredact

log = logging.getLogger(__name__)

API_CERT_NAME = "corral-api"
CERT_FILES = ("agent.crt", "agent.key")


class ServeConfigError(ValueError):
    """The listen address or TLS options cannot be served safely."""


def parse_listen(listen: str) -> tuple[str, int]:
    """Return (host, port) of 'HOST:PORT' (IPv6 as '[::1]:PORT')."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ServeConfigError(f"expected HOST:PORT, got {listen!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    host, port = parse_listen(listen)
    options: dict[str, Any] = {}
    if certs_dir is None:
        if not insecure_dev:
            raise ServeConfigError("--certs is required (or --insecure-dev on loopback)")
        if not is_loopback(host):
            raise ServeConfigError(f"--insecure-dev serves plain HTTP on loopback only, not {host}")
    else:
        certs = Path(certs_dir)
        for name in CERT_FILES:
            if not (certs / name).exists():
                raise ServeConfigError(
                    f"{certs / name} is missing (corral certs host {API_CERT_NAME} --dir DIR)"
                )
        options = {
            "ssl_certfile": str(certs / CERT_FILES[0]),
            "ssl_keyfile": str(certs / CERT_FILES[1]),
        }
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ws="websockets-sansio",
        lifespan="off",
        log_level=log_level,
        timeout_graceful_shutdown=3,
        **options,
    )
    logredact.install()  # after Config: it sets up uvicorn's loggers
    return uvicorn.Server(config)


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
