"""Canonical forms and content hashes of objects and documents."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from functools import cached_property
from typing import Any

from pydantic import BaseModel

from controller.sharing import share_field_sets
from controller.store.errors import InvalidInput
from schemas.kinds import KINDS, AnyResource
from schemas.meta import PROTECT_ANNOTATION

STORE_OWNED_META = ("generation", "resourceVersion")


def content_hash(doc: Any) -> str:
    """Return the SHA-256 hex digest of `doc` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def to_document(value: Any, field: str) -> Any:
    """Return `value` as plain JSON data: pydantic models dumped by alias, dataclasses as dicts.

    Raises InvalidInput naming `field` when the value is not JSON-serialisable.
    """
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True, exclude_none=True)
    elif is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    try:
        return json.loads(json.dumps(value, default=_json_default))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(field, f"not JSON-serialisable: {exc}") from exc


class JSONText(str):
    """A JSON document already serialised: a JSON column stores it as it is (see
    `serialize_json`), so a large document is never built twice in memory."""


def serialize_json(value: Any) -> str:
    """The engines' JSON serializer: JSONText as it is, anything else by json.dumps."""
    return value if isinstance(value, JSONText) else json.dumps(value)


def json_array_text(values: Sequence[Any], field: str) -> JSONText:
    """Return `values` as the text of a JSON array, each item serialised as `to_document`
    would make it (raises InvalidInput naming `field[i]`), one item at a time: a plan of
    30,000 actions then never exists twice as Python dicts, only once as text."""
    parts = []
    for i, value in enumerate(values):
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json", by_alias=True, exclude_none=True)
        elif is_dataclass(value) and not isinstance(value, type):
            value = asdict(value)
        try:
            parts.append(json.dumps(value, default=_json_default))
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"{field}[{i}]", f"not JSON-serialisable: {exc}") from exc
    return JSONText(f"[{','.join(parts)}]")


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "value"):  # enums
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


class PreparedObject:
    """An object ready to store, with the hashes that decide what changed.

    `manifest_hash` covers the stored form (any change rewrites the row) and is the
    only thing a no-op apply computes; `manifest` and `spec_hash` are worked out on
    first use. `spec_hash` covers spec, labels and annotations as canonical JSON with
    defaults filled in, so only a change of meaning bumps the generation.
    """

    def __init__(self, obj: AnyResource) -> None:
        if not isinstance(obj, BaseModel) or getattr(obj, "kind", None) not in KINDS:
            raise InvalidInput("kind", f"expected a Corral object of a known kind, got {obj!r:.80}")
        self.obj = obj
        self.kind: str = obj.kind
        self.name: str = obj.metadata.name
        self.protected = (obj.metadata.annotations or {}).get(PROTECT_ANNOTATION) == "true"
        stored_form = obj.model_dump_json(
            by_alias=True, exclude_none=True, exclude_unset=True, exclude=_NOT_STORED
        )
        self.manifest_hash = hashlib.sha256(stored_form.encode()).hexdigest()

    @cached_property
    def manifest(self) -> dict[str, Any]:
        """Return the manifest to store: `to_manifest()` without status and store-owned metadata."""
        manifest = self.obj.to_manifest()
        manifest.pop("status", None)
        meta = manifest.setdefault("metadata", {})
        for key in STORE_OWNED_META:
            meta.pop(key, None)
        return manifest

    @cached_property
    def spec_hash(self) -> str:
        """Return the canonical hash of spec, labels and annotations (defaults included)."""
        full = self.obj.model_dump(mode="json", by_alias=True, exclude_none=True)
        meta = full.get("metadata", {})
        return content_hash(
            {
                "spec": full.get("spec"),
                "labels": meta.get("labels") or {},
                "annotations": meta.get("annotations") or {},
            }
        )


_NOT_STORED: Any = {"status": True, "metadata": {"generation", "resource_version"}}


def prepare_object(obj: AnyResource) -> PreparedObject:
    """Return the stored form of a validated object; raise InvalidInput for a non-object."""
    return PreparedObject(obj)


def decode_object(
    kind: str,
    manifest: Mapping[str, Any],
    generation: int,
    resource_version: int,
    status: Mapping[str, Any] | None,
) -> AnyResource:
    """Return the validated model of a stored manifest with store metadata and status filled."""
    doc = dict(manifest)
    doc["metadata"] = {
        **manifest["metadata"],
        "generation": generation,
        "resourceVersion": str(resource_version),
    }
    if status is not None:
        doc["status"] = status
    obj = KINDS[kind].model_validate(doc)
    # The store's cache holds one decoded object per stored object, 10,000 VMs at fleet
    # scale: fully set models share their class's field-name set (controller.sharing).
    share_field_sets(obj)
    return obj
