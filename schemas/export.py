"""JSON Schema and Kubernetes CRDs generated from the models: one definition, three formats.

The JSON Schema (draft 2020-12) is pydantic's, with the fields every manifest must carry
marked required. A CRD's `openAPIV3Schema` must be *structural* (apiextensions.k8s.io/v1):
no `$ref`, every field typed, no `additionalProperties` beside `properties`, `anyOf` only in
the int-or-string pattern, `nullable` instead of a null type, and no defaults that the API
server would write into objects. `structural_schema` turns pydantic's schema into that.
"""

from __future__ import annotations

import functools
import io
import json
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from schemas.kinds import KINDS, PLURALS, SHORT_NAMES
from schemas.meta import API_GROUP, API_VERSION

CRD_VERSION = API_VERSION.split("/", 1)[1]

_COPIED = (
    "description",
    "type",
    "format",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "multipleOf",
)
_INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]

_READY = {
    "name": "Ready",
    "type": "string",
    "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
}
_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
_PHASE = {"name": "Phase", "type": "string", "jsonPath": ".status.phase"}
PRINTER_COLUMNS: dict[str, list[dict[str, str]]] = {
    "VirtualMachine": [
        _PHASE,
        {"name": "Host", "type": "string", "jsonPath": ".status.host"},
        _READY,
        _AGE,
    ],
    "Host": [
        _PHASE,
        _READY,
        {"name": "VMs", "type": "integer", "jsonPath": ".status.vms"},
        _AGE,
    ],
}
"""Columns `kubectl get` shows per kind; kinds not listed show Ready and Age."""


class SchemaExportError(ValueError):
    """A model cannot be expressed as a structural schema; `path` names the field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


def json_schema(kind: str) -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of a manifest of `kind`, camelCase fields."""
    schema = KINDS[kind].model_json_schema(by_alias=True, mode="validation")
    schema["required"] = ["apiVersion", "kind", *schema.get("required", [])]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://{API_GROUP}/schemas/{CRD_VERSION}/{kind.lower()}.json",
        **schema,
    }


def structural_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Return a pydantic JSON Schema rewritten as a Kubernetes structural schema.

    Raises SchemaExportError for what a structural schema cannot say (a recursive model,
    a union other than "X or null", a field without a type).
    """
    return _structural(schema, schema.get("$defs", {}), "", ())


def _structural(
    node: dict[str, Any], defs: dict[str, Any], path: str, seen: tuple[str, ...]
) -> dict[str, Any]:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            raise SchemaExportError(path or "<root>", f"recursive model {name}")
        merged = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs, path, (*seen, name))
    if node.get("x-kubernetes-int-or-string"):
        out: dict[str, Any] = {
            "x-kubernetes-int-or-string": True,
            "anyOf": [dict(option) for option in _INT_OR_STRING],
        }
        for option in node.get("anyOf", []):
            if "pattern" in option:
                out["pattern"] = option["pattern"]  # applies to the string form only
        if "description" in node:
            out["description"] = node["description"]
        return out
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise SchemaExportError(path or "<root>", "a union other than 'X or null'")
        outer = {k: v for k, v in node.items() if k not in ("anyOf", "default", "title")}
        out = _structural({**options[0], **outer}, defs, path, seen)
        if len(options) < len(node["anyOf"]):
            out["nullable"] = True
        return out
    out = {key: node[key] for key in _COPIED if key in node}
    if "const" in node:
        out["enum"] = [node["const"]]
        out.setdefault("type", "string")
    for bound, flag in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if bound in node:  # JSON Schema 2020 form -> OpenAPI v3.0 form
            out[flag] = node[bound]
            out[bound] = True
    kind = out.get("type")
    if kind == "object":
        if "properties" in node:
            out["properties"] = {
                name: _structural(sub, defs, f"{path}.{name}".lstrip("."), seen)
                for name, sub in node["properties"].items()
            }
            if node.get("required"):
                out["required"] = list(node["required"])
        elif isinstance(node.get("additionalProperties"), dict):
            out["additionalProperties"] = _structural(
                node["additionalProperties"], defs, f"{path}[*]", seen
            )
        else:
            raise SchemaExportError(path or "<root>", "an object without a known shape")
    elif kind == "array":
        out["items"] = _structural(node.get("items", {}), defs, f"{path}[]", seen)
    elif kind is None:
        raise SchemaExportError(path or "<root>", "a field without a type")
    return out


def crd(kind: str) -> dict[str, Any]:
    """Return the CustomResourceDefinition of `kind` (apiextensions.k8s.io/v1) as data."""
    model = KINDS[kind]
    properties = structural_schema(model.model_json_schema(by_alias=True))["properties"]
    root = {
        "type": "object",
        "description": describe_kind(kind),
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": properties["spec"],
            "status": properties["status"],
        },
        "required": ["spec"],
    }
    plural = PLURALS[kind]
    definition = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{API_GROUP}"},
        "spec": {
            "group": API_GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": list(SHORT_NAMES[kind]),
                "categories": ["corral"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": CRD_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS.get(kind, [_READY, _AGE]),
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }
    # A plain-data copy: no shared sub-objects, which YAML would write as anchors.
    return json.loads(json.dumps(definition))


def describe_kind(kind: str) -> str:
    """Return the one-line description of a kind: the first line of its module's docstring."""
    doc = sys.modules[KINDS[kind].__module__].__doc__ or f"{kind}."
    return doc.strip().splitlines()[0]


def render_json_schema(kind: str) -> str:
    """Return the JSON Schema file text of `kind`."""
    return json.dumps(json_schema(kind), indent=2, sort_keys=False) + "\n"


@functools.cache
def render_crd(kind: str) -> str:
    """Return the CRD file text of `kind` (YAML)."""
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False
    yaml.width = 4096
    buffer = io.StringIO()
    buffer.write(f"# Generated from schemas/ by `corral schema --crds`: the {kind} kind.\n")
    yaml.dump(crd(kind), buffer)
    return buffer.getvalue()


def json_schema_filename(kind: str) -> str:
    return f"{kind.lower()}.json"


def crd_filename(kind: str) -> str:
    return f"{API_GROUP}_{PLURALS[kind]}.yaml"


def write_json_schemas(directory: Path) -> list[Path]:
    """Write one JSON Schema file per kind into `directory`; return the paths written."""
    return _write(directory, {json_schema_filename(k): render_json_schema(k) for k in KINDS})


def write_crds(directory: Path) -> list[Path]:
    """Write one CRD file per kind into `directory`; return the paths written."""
    return _write(directory, {crd_filename(k): render_crd(k) for k in KINDS})


def _write(directory: Path, files: dict[str, str]) -> list[Path]:
    """Write files whose content differs (so unchanged files keep their mtime)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = directory / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    return written
