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
Entries also age: `new_generation()`, at the start of each plan, forgets every entry the
previous plan did not use.
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
    """A bounded table from (source objects, extra key) to a value derived from them.

    Entries live by generations (`new_generation`, one per plan): an entry that a whole
    generation did not use is forgotten, even while its sources live. A VM placed on one
    host by a pass's first plan and on another by its verdict plan would otherwise keep
    both resolved specs for as long as the VM object lives.
    """

    def __init__(self, limit: int = 200_000) -> None:
        self._limit = limit
        self._on_free = self._drop  # one bound method for every reference, not one each
        self._table: dict[tuple[Any, ...], tuple[tuple[_SourceRef, ...], T]] = {}
        self._older: dict[tuple[Any, ...], tuple[tuple[_SourceRef, ...], T]] = {}
        _MEMOS.add(self)

    def get(self, sources: tuple[Any, ...], extra: Hashable, compute: Callable[[], T]) -> T:
        """Return the memoised value for `sources` (by identity) and `extra`, else compute it."""
        key = (*map(id, sources), extra)
        hit = self._table.get(key)
        if hit is None:
            hit = self._older.pop(key, None)
            if hit is not None:
                self._table[key] = hit
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
        if len(self) >= self._limit:
            self.clear()
        self._table[key] = (refs, value)
        return value

    def age(self) -> None:
        """Start a new generation: forget what the last one did not use."""
        self._older = self._table
        self._table = {}

    def _drop(self, ref: _SourceRef) -> None:
        """Forget the entry a freed source belonged to (unless its key was reused since)."""
        for table in (self._table, self._older):
            hit = table.get(ref.key)
            if hit is not None and any(r is ref for r in hit[0]):
                table.pop(ref.key, None)

    def __len__(self) -> int:
        return len(self._table) + len(self._older)

    def clear(self) -> None:
        """Forget every entry."""
        self._table.clear()
        self._older.clear()


_MEMOS: weakref.WeakSet[IdentityMemo[Any]] = weakref.WeakSet()


def new_generation() -> None:
    """Age every memo (IdentityMemo.age): called once per plan, so the memos hold what
    the last two plans used and nothing older."""
    for memo in list(_MEMOS):
        memo.age()
