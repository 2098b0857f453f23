"""The agent's OpenAPI document: `python -m nodeagent.openapi` rewrites nodeagent/openapi.json."""

from __future__ import annotations

import json
from pathlib import Path

from nodeagent.server import create_app

OPENAPI_PATH = Path(__file__).with_name("openapi.json")


def render_openapi() -> str:
    """Return the OpenAPI document of the agent app as stable, indented JSON."""
    return json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    OPENAPI_PATH.write_text(render_openapi())
    print(OPENAPI_PATH)
