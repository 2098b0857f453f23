"""RFC 6902 patches between observed and desired dumps, and what they touch."""

from __future__ import annotations

from typing import Any

import jsonpatch


def make_diff(observed: dict[str, Any] | None, desired: dict[str, Any]) -> tuple[dict, ...]:
    """Return the JSON patch operations turning `observed` into `desired` (add all if None).

    Adding an object whole is one `add` per field, in the document's order, whose values
    are `desired`'s own (not copies): a plan creating 10,000 domains holds each spec once.
    """
    if not observed:
        return tuple(
            {"op": "add", "path": "/" + _escape(key), "value": value}
            for key, value in desired.items()
        )
    return tuple(jsonpatch.make_patch(observed, desired).patch)


def _escape(key: str) -> str:
    """Return `key` as one JSON pointer token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def changed_fields(diff: tuple[dict[str, Any], ...]) -> list[str]:
    """Return the top-level fields a patch touches, in first-seen order."""
    seen: dict[str, None] = {}
    for op in diff:
        top = op["path"].lstrip("/").split("/", 1)[0]
        seen.setdefault(top, None)
    return list(seen)
