"""Objects and lists as the API returns them."""

from __future__ import annotations

from typing import Any

from controller.api.bodies import SOURCE_ANNOTATION
from controller.store import Page, StoredObject
from schemas.meta import API_VERSION


def object_json(stored: StoredObject) -> dict[str, Any]:
    """Return the object as JSON with defaults filled, its versions, status and source."""
    doc = stored.obj.model_dump(mode="json", by_alias=True, exclude_none=True)
    meta = doc["metadata"]
    meta["annotations"] = {**meta.get("annotations", {}), SOURCE_ANNOTATION: stored.source}
    return doc


def list_json(kind: str, page: Page, revision: int) -> dict[str, Any]:
    """Return a <Kind>List: items, the continue token and the store revision listed at."""
    metadata: dict[str, Any] = {"resourceVersion": str(revision)}
    if page.continue_token:
        metadata["continue"] = page.continue_token
    return {
        "apiVersion": API_VERSION,
        "kind": f"{kind}List",
        "metadata": metadata,
        "items": [object_json(s) for s in page.items],
    }


def manifest_of(stored: StoredObject) -> dict[str, Any]:
    """Return the object as a client would have sent it: no status, no store metadata."""
    doc = stored.obj.model_dump(mode="json", by_alias=True, exclude_none=True)
    doc.pop("status", None)
    doc["metadata"].pop("generation", None)
    doc["metadata"].pop("resourceVersion", None)
    return doc
