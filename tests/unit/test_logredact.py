"""Secrets in request URLs never reach the servers' logs (nodeagent.logredact)."""

from __future__ import annotations

import io
import logging

import pytest

from controller.api.serve import build_server as build_api_server
from nodeagent.logredact import RedactSecrets, redact
from nodeagent.serve import build_server as build_agent_server


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        pytest.param(
            "/v1/domains/web-1/graphics?ticket=Zk3j9_x&kind=vnc",
            "/v1/domains/web-1/graphics?ticket=***&kind=vnc",
            id="agent-console-ticket",
        ),
        pytest.param(
            "/api/v1/virtualmachines/web-1/graphics?ticket=abc.def",
            "/api/v1/virtualmachines/web-1/graphics?ticket=***",
            id="api-console-ticket",
        ),
        pytest.param(
            "/x?access_token=t0k&Password=p", "/x?access_token=***&Password=***", id="mixed"
        ),
        pytest.param(
            "/api/v1/virtualmachines?continue=42", "/api/v1/virtualmachines?continue=42", id="none"
        ),
    ],
)
def test_redact(text: str, shown: str) -> None:
    assert redact(text) == shown


def access_line(logger: logging.Logger, path: str) -> str:
    """Log an access line the way uvicorn does and return what the handler wrote."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", path, "1.1", 101)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return out.getvalue()


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(
            lambda: build_agent_server(None, "127.0.0.1:0", None, insecure_dev=True), id="agent"
        ),
        pytest.param(
            lambda: build_api_server(None, "127.0.0.1:0", None, insecure_dev=True), id="api"
        ),
    ],
)
def test_servers_mask_tickets_in_their_logs(build) -> None:
    build()
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        assert sum(isinstance(f, RedactSecrets) for f in logger.filters) == 1
        line = access_line(logger, "/v1/domains/w/graphics?ticket=SeCrEt&kind=vnc")
        assert "SeCrEt" not in line
        assert "ticket=***&kind=vnc" in line
