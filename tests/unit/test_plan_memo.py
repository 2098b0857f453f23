"""IdentityMemo: a value is reused while its sources are the same objects, and forgotten
as soon as one of them is freed."""

from __future__ import annotations

import gc

from controller.plan.memo import IdentityMemo


class Source:
    """A weakly referenceable stand-in for a desired or observed object."""


def test_same_objects_reuse_the_value() -> None:
    memo: IdentityMemo[str] = IdentityMemo()
    a, b = Source(), Source()
    assert memo.get((a, b), 1, lambda: "first") == "first"
    assert memo.get((a, b), 1, lambda: "second") == "first"
    assert memo.get((a, b), 2, lambda: "other extra") == "other extra"
    assert memo.get((b, a), 1, lambda: "other order") == "other order"
    assert len(memo) == 3


def test_freed_source_drops_its_entries() -> None:
    memo: IdentityMemo[str] = IdentityMemo()
    kept, freed = Source(), Source()
    memo.get((kept,), None, lambda: "kept")
    memo.get((kept, freed), None, lambda: "pair")
    memo.get((freed,), None, lambda: "alone")
    del freed
    gc.collect()
    assert len(memo) == 1
    assert memo.get((kept,), None, lambda: "recomputed") == "kept"


def test_recycled_id_never_returns_a_stale_value() -> None:
    memo: IdentityMemo[int] = IdentityMemo()
    values = []
    for n in range(50):
        source = Source()
        values.append(memo.get((source,), None, lambda n=n: n))
        del source
    assert values == list(range(50))
    assert len(memo) == 0


def test_unreferenceable_sources_compute_every_time() -> None:
    memo: IdentityMemo[int] = IdentityMemo()
    calls = []
    for _ in range(2):
        memo.get((1, "text"), None, lambda: calls.append(1) or len(calls))
    assert calls == [1, 1]
    assert len(memo) == 0


def test_full_table_is_cleared() -> None:
    memo: IdentityMemo[int] = IdentityMemo(limit=3)
    sources = [Source() for _ in range(4)]
    for n, source in enumerate(sources):
        memo.get((source,), None, lambda n=n: n)
    assert len(memo) == 1


def test_an_entry_a_whole_generation_did_not_use_is_forgotten() -> None:
    memo: IdentityMemo[str] = IdentityMemo()
    a, b = Source(), Source()
    memo.get((a,), "first host", lambda: "on first host")
    memo.get((b,), None, lambda: "b")
    memo.age()
    assert memo.get((a,), "second host", lambda: "on second host") == "on second host"
    assert memo.get((b,), None, lambda: "recomputed") == "b"
    memo.age()
    assert memo.get((b,), None, lambda: "recomputed") == "b"
    assert memo.get((a,), "first host", lambda: "recomputed") == "recomputed"
    assert len(memo) == 3


def test_a_freed_source_drops_its_entry_from_either_generation() -> None:
    memo: IdentityMemo[str] = IdentityMemo()
    older, newer = Source(), Source()
    memo.get((older,), None, lambda: "older")
    memo.age()
    memo.get((newer,), None, lambda: "newer")
    del older, newer
    gc.collect()
    assert len(memo) == 0
