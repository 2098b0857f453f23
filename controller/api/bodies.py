"""Request bodies: JSON read under a size limit, patches applied, objects validated."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

import jsonpatch
import jsonpointer
from fastapi import Request
from pydantic import ValidationError

from controller.api.errors import (
    BAD_REQUEST,
    INVALID,
    TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    ApiError,
    Detail,
    invalid,
)
from schemas.kinds import KINDS, AnyResource
from schemas.meta import API_GROUP

MAX_BODY_BYTES = 1 << 20
"""Bodies above 1 MiB are refused (413): a VM manifest is a few kilobytes."""

SOURCE_ANNOTATION = f"{API_GROUP}/source"
"""Shown on every object the API returns (the owning source); ignored on input."""
TAKEN_FROM_ANNOTATION = f"{API_GROUP}/taken-from"
"""Set when the API took an object over from its source; `release` gives it back."""

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_json(request: Request, limit: int = MAX_BODY_BYTES) -> Any:
    """Return the request's JSON body; 413 above `limit` bytes, 400 when it is not JSON."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise ApiError(413, TOO_LARGE, f"the body is {length} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise ApiError(413, TOO_LARGE, f"the body is over the {limit}-byte limit")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise ApiError(400, BAD_REQUEST, "a JSON body is required", (Detail("(body)", "empty"),))
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        message = f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        raise ApiError(400, BAD_REQUEST, message, (Detail("(body)", message, "json"),)) from exc
    except (ValueError, RecursionError) as exc:
        message = f"the body is not acceptable JSON: {exc}"
        raise ApiError(400, BAD_REQUEST, message, (Detail("(body)", message, "json"),)) from exc


def merge_patch(target: Any, patch: Any) -> Any:
    """Return `target` with an RFC 7386 JSON merge patch applied (`target` is not changed)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def apply_patch(document: dict[str, Any], patch: Any, content_type: str) -> dict[str, Any]:
    """Return `document` patched by a merge patch or a JSON patch, by content type.

    415 for another content type; 400 when a JSON patch is malformed or does not apply.
    """
    media = content_type.split(";")[0].strip().lower()
    if media == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise ApiError(400, BAD_REQUEST, "a merge patch is a JSON object")
        return merge_patch(document, patch)
    if media == JSON_PATCH:
        if not isinstance(patch, list):
            raise ApiError(400, BAD_REQUEST, "a JSON patch is a list of operations")
        try:
            patched = jsonpatch.JsonPatch(patch).apply(document)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            raise ApiError(
                400,
                BAD_REQUEST,
                f"the JSON patch does not apply: {exc}",
                (Detail("(body)", str(exc)),),
            ) from exc
        except (TypeError, KeyError, AttributeError) as exc:
            raise ApiError(400, BAD_REQUEST, f"the JSON patch is malformed: {exc}") from exc
        if not isinstance(patched, dict):
            raise ApiError(400, BAD_REQUEST, "the JSON patch replaced the whole object")
        return patched
    raise ApiError(
        415,
        UNSUPPORTED_MEDIA_TYPE,
        f"PATCH takes {MERGE_PATCH} or {JSON_PATCH}, got {media or 'no content type'!r}",
    )


@dataclass(frozen=True)
class Candidate:
    """An object parsed from a request and the resourceVersion it was based on (if any)."""

    obj: AnyResource
    resource_version: int | None


def parse_object(kind: str, doc: Any, name: str | None = None) -> Candidate:
    """Return the validated object of a request body for `kind` (and path `name`).

    The body's `status` and store-owned metadata are ignored; unknown fields, a
    wrong kind or a name differing from the path are 422 naming the field.
    """
    if not isinstance(doc, dict):
        raise ApiError(
            422, INVALID, f"a {kind} is a JSON object", (Detail("(body)", "not an object"),)
        )
    doc = dict(doc)
    doc.setdefault("kind", kind)
    if doc["kind"] != kind:
        raise ApiError(
            422,
            INVALID,
            f"this path takes kind {kind}, the body says {doc['kind']!r}",
            (Detail("kind", f"expected {kind}", "kind_mismatch"),),
        )
    doc.pop("status", None)
    meta = doc.get("metadata")
    version = None
    if isinstance(meta, dict):
        meta = dict(meta)
        raw_version = meta.pop("resourceVersion", None)
        meta.pop("generation", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict) and SOURCE_ANNOTATION in annotations:
            meta["annotations"] = {k: v for k, v in annotations.items() if k != SOURCE_ANNOTATION}
        doc["metadata"] = meta
        if raw_version not in (None, ""):
            if not str(raw_version).isdigit():
                raise ApiError(
                    422,
                    INVALID,
                    f"metadata.resourceVersion must be a number, got {raw_version!r}",
                    (Detail("metadata.resourceVersion", "not a number", "int_parsing"),),
                )
            version = int(raw_version)
        if name is not None and meta.get("name", name) != name:
            raise ApiError(
                422,
                INVALID,
                f"metadata.name {meta.get('name')!r} differs from the name in the path {name!r}",
                (Detail("metadata.name", "differs from the path", "name_mismatch"),),
            )
        if name is not None:
            meta.setdefault("name", name)
    display = name or (meta.get("name") if isinstance(meta, dict) else None)
    try:
        obj = KINDS[kind].model_validate(doc)
    except ValidationError as exc:
        raise invalid(kind, str(display) if display else None, exc) from exc
    return Candidate(obj, version)
