"""The change log: a gapless, commit-ordered sequence a watcher can follow."""

from __future__ import annotations

import threading
from collections.abc import Callable

from store_objects import vm

from controller.store import Store


def test_every_change_is_logged_in_order(store: Store) -> None:
    assert store.revision() == 0
    store.apply_snapshot("git:origin", "r1", [vm("a"), vm("b")])
    store.put_status("VirtualMachine", "a", {"phase": "Running"})
    store.record_event("VirtualMachine", "a", "Normal", "Started", "started on h1")
    store.apply_snapshot("git:origin", "r2", [vm("a", memory="2Gi")], prune=True)
    store.purge("VirtualMachine", "b")
    log = [(c.seq, c.topic, c.op, c.name, c.resource_version) for c in store.changes_since(0)]
    assert log == [
        (1, "object", "created", "a", 1),
        (2, "object", "created", "b", 1),
        (3, "status", "updated", "a", 1),
        (4, "event", "created", "a", log[3][4]),
        (5, "object", "updated", "a", 2),
        (6, "object", "deleted", "b", 2),
        (7, "object", "purged", "b", 2),
    ]
    assert store.revision() == 7
    assert [c.seq for c in store.changes_since(5)] == [6, 7]
    assert [c.seq for c in store.changes_since(0, limit=2)] == [1, 2]


def test_no_op_writes_log_nothing(store: Store) -> None:
    store.apply_snapshot("git:origin", "r1", [vm("a")])
    store.put_status("VirtualMachine", "a", {"phase": "Running"})
    seq = store.revision()
    store.apply_snapshot("git:origin", "r1", [vm("a")], prune=True)
    store.put_status("VirtualMachine", "a", {"phase": "Running"})
    store.put(vm("a"), "git:origin")
    assert store.changes_since(seq) == []


def test_trimmed_changes_are_gone_and_the_oldest_is_known(store: Store) -> None:
    store.apply_snapshot("git:origin", "r1", [vm(f"vm-{i}") for i in range(5)])
    assert store.trim_changes(3) == 3
    assert store.oldest_change() == 4
    assert [c.seq for c in store.changes_since(0)] == [4, 5]
    store.put(vm("late"), "api")
    assert store.revision() == 6


def test_concurrent_writers_get_distinct_gapless_numbers(open_db: Callable[[], Store]) -> None:
    stores = [open_db(), open_db()]

    def write(index: int) -> None:
        for i in range(10):
            stores[index].put(vm(f"w{index}-{i}"), "api")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seqs = [c.seq for c in stores[0].changes_since(0)]
    assert seqs == list(range(1, 21))
    assert stores[1].revision() == 20
