"""The API's OpenAPI document, with every kind's JSON schema as a component.

`python -m controller.api` rewrites controller/api/openapi.json, which is
committed; a test checks it equals what the app serves, and the SDK is checked
against it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from schemas.kinds import KINDS

OPENAPI_PATH = Path(__file__).with_name("openapi.json")
REF_TEMPLATE = "#/components/schemas/{model}"

STATUS_SCHEMA: dict[str, Any] = {
    "title": "Status",
    "type": "object",
    "required": ["kind", "code", "reason", "message", "details"],
    "properties": {
        "kind": {"const": "Status"},
        "code": {"type": "integer"},
        "reason": {"type": "string", "description": "CamelCase, e.g. Conflict, OwnedBySource"},
        "message": {"type": "string"},
        "details": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message", "type"],
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}

DRY_RUN_SCHEMA: dict[str, Any] = {
    "title": "DryRun",
    "type": "object",
    "required": ["kind", "dryRun", "object", "plan"],
    "properties": {
        "kind": {"const": "DryRun"},
        "dryRun": {"const": True},
        "object": {"type": "object"},
        "plan": {
            "type": "object",
            "required": ["summary", "actions", "verdicts"],
            "properties": {
                "summary": {"type": "string"},
                "actions": {"type": "array", "items": {"type": "object"}},
                "verdicts": {"type": "array", "items": {"type": "object"}},
            },
        },
    },
}


def _list_schema(kind: str) -> dict[str, Any]:
    return {
        "title": f"{kind}List",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"const": f"{kind}List"},
            "metadata": {
                "type": "object",
                "properties": {
                    "continue": {"type": "string"},
                    "resourceVersion": {"type": "string"},
                },
            },
            "items": {"type": "array", "items": {"$ref": REF_TEMPLATE.format(model=kind)}},
        },
    }


def component_schemas() -> dict[str, Any]:
    """Return the components: every kind (and its status), its List, Status, DryRun."""
    from controller.api.actions import MigrateRequest
    from controller.api.routes import status_model

    models: list[Any] = [(m, "serialization") for m in KINDS.values()]
    models += [(status_model(k), "serialization") for k in KINDS]
    models.append((MigrateRequest, "validation"))
    _, top = models_json_schema(models, ref_template=REF_TEMPLATE)
    schemas = dict(top.get("$defs", {}))
    for kind in KINDS:
        schemas[f"{kind}List"] = _list_schema(kind)
    schemas["Status"] = STATUS_SCHEMA
    schemas["DryRun"] = DRY_RUN_SCHEMA
    return schemas


def custom_openapi(app: FastAPI) -> dict[str, Any]:
    """Return (and cache on the app) the OpenAPI document with the kinds' schemas."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {}).update(component_schemas())
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    doc["security"] = [{"bearer": []}]
    doc["paths"]["/healthz"]["get"]["security"] = []
    app.openapi_schema = doc
    return doc


def render_openapi() -> str:
    """Return the app's OpenAPI document as stable, indented JSON."""
    from controller.api.app import create_app

    app = create_app(None, None)  # type: ignore[arg-type]
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"
