"""RFC 6902 patches between observed and desired dumps, and what they touch."""

from __future__ import annotations

from typing import Any

import jsonpatch


def make_diff(observed: dict[str, Any] | None, desired: dict[str, Any]) -> tuple[dict, ...]:
    """Return the JSON patch operations turning `observed` into `desired` (add all if None)."""
    return tuple(jsonpatch.make_patch(observed or {}, desired).patch)


def changed_fields(diff: tuple[dict[str, Any], ...]) -> list[str]:
    """Return the top-level fields a patch touches, in first-seen order."""
    seen: dict[str, None] = {}
    for op in diff:
        top = op["path"].lstrip("/").split("/", 1)[0]
        seen.setdefault(top, None)
    return list(seen)
