"""An identity memo: reuse a derived value while the objects it came from are the same objects.

The planner is pure, but a no-op pass over 10,000 VMs cannot afford to validate 10,000
pydantic models again when nothing changed. Desired and observed objects are treated
as immutable values, so a value computed from them stays right for as long as the very
same objects come in again. Entries hold weak references and are checked by identity,
so a recycled `id()` never returns a stale value. An entry is dropped as soon as one of
its sources is freed: a VM whose status moves each pass is decoded into a new object,
and without the drop every earlier pass's value would stay in the table until its
bound (at 10,000 VMs, tens of copies of each VM's derived specs). The table is also
cleared when it grows past its bound, which costs one recomputation, never a wrong answer.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _SourceRef(weakref.ref):  # type: ignore[type-arg]
    """A weak reference to one source of an entry, naming the entry it belongs to."""

    __slots__ = ("key",)

    def __new__(cls, obj: Any, callback: Callable[[Any], None], key: tuple[Any, ...]) -> _SourceRef:
        return super().__new__(cls, obj, callback)

    def __init__(self, obj: Any, callback: Callable[[Any], None], key: tuple[Any, ...]) -> None:
        super().__init__(obj, callback)
        self.key = key


class IdentityMemo(Generic[T]):
    """A bounded table from (source objects, extra key) to a value derived from them."""

    def __init__(self, limit: int = 200_000) -> None:
        self._limit = limit
        self._on_free = self._drop  # one bound method for every reference, not one each
        self._table: dict[tuple[Any, ...], tuple[tuple[_SourceRef, ...], T]] = {}

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
            refs = tuple(_SourceRef(obj, self._on_free, key) for obj in sources)
        except TypeError:
            return value
        if len(self._table) >= self._limit:
            self._table.clear()
        self._table[key] = (refs, value)
        return value

    def _drop(self, ref: _SourceRef) -> None:
        """Forget the entry a freed source belonged to (unless its key was reused since)."""
        hit = self._table.get(ref.key)
        if hit is not None and any(r is ref for r in hit[0]):
            self._table.pop(ref.key, None)

    def __len__(self) -> int:
        return len(self._table)

    def clear(self) -> None:
        """Forget every entry."""
        self._table.clear()
