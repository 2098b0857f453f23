"""An identity memo: reuse a derived value while the objects it came from are the same objects.

The planner is pure, but a no-op pass over 10,000 VMs cannot afford to validate 10,000
pydantic models again when nothing changed. Desired and observed objects are treated
as immutable values, so a value computed from them stays right for as long as the very
same objects come in again. Entries hold weak references and are checked by identity,
so a recycled `id()` never returns a stale value; the table is cleared when it grows
past its bound, which costs one recomputation, never a wrong answer.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class IdentityMemo(Generic[T]):
    """A bounded table from (source objects, extra key) to a value derived from them."""

    def __init__(self, limit: int = 200_000) -> None:
        self._limit = limit
        self._table: dict[tuple[Any, ...], tuple[tuple[weakref.ref[Any], ...], T]] = {}

    def get(self, sources: tuple[Any, ...], extra: Hashable, compute: Callable[[], T]) -> T:
        """Return the memoised value for `sources` (by identity) and `extra`, else compute it."""
        key = (*map(id, sources), extra)
        hit = self._table.get(key)
        if hit is not None:
            refs, value = hit
            for ref, obj in zip(refs, sources, strict=True):
                if ref() is not obj:
                    break
            else:
                return value
        value = compute()
        try:
            refs = tuple(weakref.ref(obj) for obj in sources)
        except TypeError:
            return value
        if len(self._table) >= self._limit:
            self._table.clear()
        self._table[key] = (refs, value)
        return value

    def clear(self) -> None:
        """Forget every entry."""
        self._table.clear()
