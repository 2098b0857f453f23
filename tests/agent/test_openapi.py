"""The committed OpenAPI document is the one the agent app serves."""

from __future__ import annotations

import json
from pathlib import Path

from nodeagent.openapi import OPENAPI_PATH, render_openapi


def test_committed_openapi_matches_the_app():
    committed = json.loads(Path(OPENAPI_PATH).read_text())
    assert committed == json.loads(render_openapi()), (
        "nodeagent/openapi.json is stale: run `python -m nodeagent.openapi`"
    )


def test_openapi_lists_every_verb():
    paths = json.loads(render_openapi())["paths"]
    assert {
        "/v1/state",
        "/v1/events",
        "/v1/domains/{name}",
        "/v1/domains/{name}/ensure-running",
        "/v1/domains/{name}/migrate",
        "/v1/pools/{pool}/volumes/{vol}/content",
        "/v1/lease",
    } <= set(paths)
