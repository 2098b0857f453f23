"""JSON Schemas and CRDs: generated from the models, structural, committed up to date."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from controller.manifests import load_paths
from schemas.export import (
    SchemaExportError,
    crd,
    crd_filename,
    json_schema,
    json_schema_filename,
    structural_schema,
    write_crds,
    write_json_schemas,
)
from schemas.kinds import KINDS, PLURALS, SHORT_NAMES
from tests.helpers.services import require_module

REPO = Path(__file__).parents[2]
TYPES = {"object", "array", "string", "integer", "number", "boolean"}
VALUE_KEYS = {
    "description", "type", "format", "enum", "pattern", "minLength", "maxLength", "minimum",
    "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems", "multipleOf",
    "properties", "required", "items", "additionalProperties", "nullable", "anyOf",
    "x-kubernetes-int-or-string",
}  # fmt: skip


def structural_violations(schema: dict[str, Any], path: str = "") -> list[str]:
    """Return every way `schema` breaks the apiextensions/v1 structural-schema rules."""
    problems = []
    where = path or "<root>"
    unknown = set(schema) - VALUE_KEYS
    if unknown:
        problems.append(f"{where}: keys not allowed here: {sorted(unknown)}")
    if schema.get("x-kubernetes-int-or-string"):
        if "type" in schema:
            problems.append(f"{where}: int-or-string must not set type")
        if schema.get("anyOf") != [{"type": "integer"}, {"type": "string"}]:
            problems.append(f"{where}: int-or-string anyOf must be exactly [integer, string]")
        return problems
    if "anyOf" in schema:
        problems.append(f"{where}: anyOf outside the int-or-string pattern")
    kind = schema.get("type")
    if kind not in TYPES:
        problems.append(f"{where}: untyped field (type={kind!r})")
    if "nullable" in schema and not isinstance(schema["nullable"], bool):
        problems.append(f"{where}: nullable must be a boolean")
    for bound in ("exclusiveMinimum", "exclusiveMaximum"):
        if bound in schema and not isinstance(schema[bound], bool):
            problems.append(f"{where}: {bound} must be a boolean in OpenAPI v3.0")
    if kind == "object":
        if "properties" in schema and "additionalProperties" in schema:
            problems.append(f"{where}: additionalProperties beside properties")
        if schema.get("additionalProperties") is False:
            problems.append(f"{where}: additionalProperties: false")
        for name, sub in schema.get("properties", {}).items():
            problems += structural_violations(sub, f"{path}.{name}")
        if isinstance(schema.get("additionalProperties"), dict):
            problems += structural_violations(schema["additionalProperties"], f"{path}[*]")
        missing = set(schema.get("required", [])) - set(schema.get("properties", {}))
        if missing:
            problems.append(f"{where}: required names unknown fields {sorted(missing)}")
    elif kind == "array":
        if "items" not in schema:
            problems.append(f"{where}: array without items")
        else:
            problems += structural_violations(schema["items"], f"{path}[]")
    elif set(schema) & {"properties", "items", "additionalProperties"}:
        problems.append(f"{where}: {kind} with object or array keywords")
    return problems


def load_yaml(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


@pytest.mark.parametrize("kind", list(KINDS))
def test_crd_is_structural_and_complete(kind: str) -> None:
    definition = load_yaml((REPO / "deploy" / "crds" / crd_filename(kind)).read_text())
    assert definition["apiVersion"] == "apiextensions.k8s.io/v1"
    assert definition["kind"] == "CustomResourceDefinition"
    spec = definition["spec"]
    assert definition["metadata"]["name"] == f"{PLURALS[kind]}.corral.dev"
    assert spec["group"] == "corral.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == kind
    assert spec["names"]["shortNames"] == SHORT_NAMES[kind]
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    schema = version["schema"]["openAPIV3Schema"]
    assert structural_violations(schema) == []
    assert schema["properties"]["metadata"] == {"type": "object"}
    assert "$ref" not in str(schema) and "$defs" not in str(schema)
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    for column in version["additionalPrinterColumns"]:
        field = column["jsonPath"].split("[")[0].lstrip(".").split(".")
        if field[0] == "status":
            node = schema
            for part in field:
                node = node["properties"][part]
            assert node["type"] in ("string", "integer", "array")
    assert columns[-1] == "Age"
    assert "Ready" in columns


def test_printer_columns() -> None:
    def columns(kind: str) -> list[str]:
        return [c["name"] for c in crd(kind)["spec"]["versions"][0]["additionalPrinterColumns"]]

    assert columns("VirtualMachine") == ["Phase", "Host", "Ready", "Age"]
    assert columns("Host") == ["Phase", "Ready", "VMs", "Age"]
    assert columns("Network") == ["Ready", "Age"]


def test_quantities_are_int_or_string_with_their_pattern() -> None:
    spec = crd("Volume")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["size"] == {
        "x-kubernetes-int-or-string": True,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|K|M|G|T|P)?$",
        "description": 'Virtual size, e.g. "20Gi"',
    }
    assert spec["properties"]["source"]["nullable"] is True
    assert spec["required"] == ["pool", "size"]


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "object", "properties": {"x": {}}}, "x: a field without a type"),
        (
            {"type": "object",
             "properties": {"x": {"anyOf": [{"type": "string"}, {"type": "integer"}]}}},
            "x: a union other than 'X or null'",
        ),
        (
            {"$defs": {"N": {"type": "object", "properties": {"n": {"$ref": "#/$defs/N"}}}},
             "$ref": "#/$defs/N"},
            "n: recursive model N",
        ),
        ({"type": "object"}, "<root>: an object without a known shape"),
    ],
)  # fmt: skip
def test_structural_schema_refuses_what_crds_cannot_say(
    schema: dict[str, Any], message: str
) -> None:
    with pytest.raises(SchemaExportError, match=message.replace("(", r"\(").replace(")", r"\)")):
        structural_schema(schema)


def test_exclusive_bounds_become_openapi_booleans() -> None:
    out = structural_schema({"type": "integer", "exclusiveMinimum": 0})
    assert out == {"type": "integer", "minimum": 0, "exclusiveMinimum": True}


def test_committed_files_match_the_models(tmp_path: Path) -> None:
    for directory, write, name in (
        (REPO / "deploy" / "crds", write_crds, crd_filename),
        (REPO / "schemas" / "json", write_json_schemas, json_schema_filename),
    ):
        fresh = write(tmp_path / directory.name)
        assert sorted(p.name for p in fresh) == sorted(p.name for p in directory.iterdir())
        for kind in KINDS:
            assert (directory / name(kind)).read_text() == (
                tmp_path / directory.name / name(kind)
            ).read_text(), f"{directory / name(kind)} is stale: run corral schema"


def test_write_keeps_unchanged_files(tmp_path: Path) -> None:
    first = write_crds(tmp_path)
    mtimes = [p.stat().st_mtime_ns for p in first]
    second = write_crds(tmp_path)
    assert [p.stat().st_mtime_ns for p in second] == mtimes


def test_json_schema_accepts_every_example_and_rejects_unknown_fields() -> None:
    require_module("tools", "jsonschema")
    import jsonschema

    result = load_paths([REPO / "examples" / "manifests"])
    assert result.errors == []
    validators = {k: jsonschema.Draft202012Validator(json_schema(k)) for k in KINDS}
    for obj in result.objects:
        manifest = obj.resource.to_manifest()
        assert list(validators[obj.resource.kind].iter_errors(manifest)) == [], obj.ref
    host = next(o.resource for o in result.objects if o.resource.kind == "Host").to_manifest()
    host["spec"]["adress"] = "typo"
    assert [e.validator for e in validators["Host"].iter_errors(host)] == ["additionalProperties"]
