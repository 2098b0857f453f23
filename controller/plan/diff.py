"""RFC 6902 patches between observed and desired dumps, and what they touch."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

import jsonpatch


def make_diff(observed: dict[str, Any] | None, desired: dict[str, Any]) -> Sequence[dict[str, Any]]:
    """Return the JSON patch operations turning `observed` into `desired` (add all if None)."""
    if not observed:
        return AddAll(desired)
    return tuple(jsonpatch.make_patch(observed, desired).patch)


class AddAll(Sequence[dict[str, Any]]):
    """The patch that adds a document whole: one `add` per field, in the document's order.

    The operations are made when read and carry the document's own values: a plan
    creating 10,000 domains holds each spec once, not once more as 25 operation dicts.
    Equal to any sequence of the same operations.
    """

    __slots__ = ("doc",)

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def __len__(self) -> int:
        return len(self.doc)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for key, value in self.doc.items():
            yield {"op": "add", "path": "/" + _escape(key), "value": value}

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[dict[str, Any], ...]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | tuple[dict[str, Any], ...]:
        ops = tuple(self)
        return ops[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AddAll):
            return self.doc == other.doc
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    def __hash__(self) -> int:
        raise TypeError("a patch is not hashable")

    def __repr__(self) -> str:
        return f"AddAll({self.doc!r})"


def _escape(key: str) -> str:
    """Return `key` as one JSON pointer token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def changed_fields(diff: Sequence[dict[str, Any]]) -> list[str]:
    """Return the top-level fields a patch touches, in first-seen order."""
    seen: dict[str, None] = {}
    for op in diff:
        top = op["path"].lstrip("/").split("/", 1)[0]
        seen.setdefault(top, None)
    return list(seen)
