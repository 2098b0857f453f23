"""Serving the agent: uvicorn with mutual TLS, or plain HTTP on loopback for development."""

from __future__ import annotations

import ipaddress
import logging
import ssl
from pathlib import Path
from typing import Any

import uvicorn

from nodeagent import logredact
from nodeagent.agent import Agent
from nodeagent.server import create_app
from nodeagent.tls import PeerIdentityH11Protocol, RequireController

log = logging.getLogger(__name__)


class ServeConfigError(ValueError):
    """The listen address or certificate options cannot be served safely."""


def parse_listen(listen: str) -> tuple[str, int]:
    """Return (host, port) of 'HOST:PORT' (IPv6 as '[::1]:PORT')."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ServeConfigError(f"--listen expects HOST:PORT, got {listen!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_server(
    agent: Agent,
    listen: str,
    certs_dir: str | Path | None,
    *,
    insecure_dev: bool = False,
    log_level: str = "info",
) -> uvicorn.Server:
    """Return a uvicorn server for `agent`.

    With `certs_dir` (hosts/NAME layout: ca.crt, agent.crt, agent.key) it requires
    a client certificate from the fleet CA and the controller identity. Plain HTTP
    needs `insecure_dev` and a loopback address: an agent must never listen
    unauthenticated on a network.
    """
    host, port = parse_listen(listen)
    app: Any = create_app(agent)
    options: dict[str, Any] = {}
    if certs_dir is None:
        if not insecure_dev:
            raise ServeConfigError("--certs is required (or --insecure-dev on loopback)")
        if not _is_loopback(host):
            raise ServeConfigError(f"--insecure-dev serves plain HTTP on loopback only, not {host}")
        log.warning("serving plain HTTP on %s:%d (--insecure-dev)", host, port)
    else:
        certs = Path(certs_dir)
        for name in ("ca.crt", "agent.crt", "agent.key"):
            if not (certs / name).exists():
                raise ServeConfigError(f"{certs / name} is missing (corral certs host NAME)")
        app = RequireController(app)
        options = {
            "ssl_certfile": str(certs / "agent.crt"),
            "ssl_keyfile": str(certs / "agent.key"),
            "ssl_ca_certs": str(certs / "ca.crt"),
            "ssl_cert_reqs": ssl.CERT_REQUIRED,
        }
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=PeerIdentityH11Protocol,
        ws="websockets-sansio",
        lifespan="off",
        log_level=log_level,
        timeout_graceful_shutdown=5,
        **options,
    )
    logredact.install()  # after Config: it sets up uvicorn's loggers
    return uvicorn.Server(config)
