"""Serving the agent: uvicorn with mutual TLS, or plain HTTP on loopback for development."""

from __future__ import annotations

import logging
from pathlib import Path

import uvicorn

from nodeagent.agent import Agent
from nodeagent.server import create_app
from nodeagent.tls import ServeConfigError, build_tls_server, parse_listen

__all__ = ["ServeConfigError", "build_server", "parse_listen"]

log = logging.getLogger(__name__)


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
    server = build_tls_server(
        create_app(agent),
        listen,
        certs_dir,
        insecure_dev=insecure_dev,
        log_level=log_level,
        cert_name="NAME",
        require_controller=True,
        graceful_shutdown_s=5,
    )
    if certs_dir is None:
        log.warning(
            "serving plain HTTP on %s:%d (--insecure-dev)", server.config.host, server.config.port
        )
    return server
