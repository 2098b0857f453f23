"""The committed OpenAPI document is the one the agent app serves."""

from __future__ import annotations

import json
from pathlib import Path

from agentapi import VERBS
from nodeagent.openapi import OPENAPI_PATH, render_openapi


def test_committed_openapi_matches_the_app():
    committed = json.loads(Path(OPENAPI_PATH).read_text())
    assert committed == json.loads(render_openapi()), (
        "nodeagent/openapi.json is stale: run `python -m nodeagent.openapi`"
    )


def test_openapi_lists_every_verb_and_nothing_else():
    paths = json.loads(render_openapi())["paths"]
    operations = {(method.upper(), path) for path, item in paths.items() for method in item}
    assert operations == {(v.method, v.route) for v in VERBS if v.method != "WS"}
