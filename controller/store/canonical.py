"""Canonical forms and content hashes of objects and documents."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

from pydantic import BaseModel

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


@dataclass(frozen=True)
class PreparedObject:
    """An object ready to store: its manifest and the hashes that decide what changed.

    `manifest_hash` covers the stored manifest (any change rewrites the row);
    `spec_hash` covers spec, labels and annotations with defaults filled in, so only a
    change of meaning bumps the generation.
    """

    kind: str
    name: str
    manifest: dict[str, Any]
    manifest_hash: str
    spec_hash: str
    protected: bool


def prepare_object(obj: AnyResource) -> PreparedObject:
    """Return the stored form of a validated object (status and store-owned metadata dropped)."""
    if not isinstance(obj, BaseModel) or getattr(obj, "kind", None) not in KINDS:
        raise InvalidInput("kind", f"expected a Corral object of a known kind, got {obj!r:.80}")
    manifest = obj.to_manifest()
    manifest.pop("status", None)
    meta = manifest.setdefault("metadata", {})
    for key in STORE_OWNED_META:
        meta.pop(key, None)
    full = obj.model_dump(mode="json", by_alias=True, exclude_none=True)
    full_meta = full.get("metadata", {})
    meaning = {
        "spec": full.get("spec"),
        "labels": full_meta.get("labels") or {},
        "annotations": full_meta.get("annotations") or {},
    }
    annotations = obj.metadata.annotations or {}
    return PreparedObject(
        kind=obj.kind,
        name=obj.metadata.name,
        manifest=manifest,
        manifest_hash=content_hash(manifest),
        spec_hash=content_hash(meaning),
        protected=annotations.get(PROTECT_ANNOTATION) == "true",
    )


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
    return KINDS[kind].model_validate(doc)
