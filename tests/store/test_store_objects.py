"""get, list, put and delete with optimistic concurrency; tombstones and purge."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from store_objects import host, vm

from controller.store import (
    Conflict,
    InvalidInput,
    NotFound,
    ObjectRef,
    OwnedElsewhere,
    Store,
)

API = "api"


def test_get_of_a_missing_object_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="VirtualMachine/nope not found"):
        store.get("VirtualMachine", "nope")


def test_list_filters_by_kind_labels_and_source(store: Store) -> None:
    store.apply_snapshot(
        "git:a", "r1", [vm("web-1", labels={"tier": "web"}), vm("db-1"), host("h1")]
    )
    store.put(vm("web-2", labels={"tier": "web", "zone": "b"}), API)
    assert [o.name for o in store.list("VirtualMachine").items] == ["db-1", "web-1", "web-2"]
    assert [o.name for o in store.list(label_selector="tier=web").items] == ["web-1", "web-2"]
    assert [o.name for o in store.list(label_selector={"zone": "b"}).items] == ["web-2"]
    assert [o.name for o in store.list(source="git:a").items] == ["h1", "db-1", "web-1"]


def test_label_keys_with_prefixes_and_dots_select(store: Store) -> None:
    key = "app.kubernetes.io/part-of"
    store.put(vm("web-1", labels={key: "shop", "tier": "web"}), API)
    store.put(vm("web-2", labels={key: "blog"}), API)
    assert [o.name for o in store.list(label_selector={key: "shop"}).items] == ["web-1"]
    assert [o.name for o in store.list(label_selector=f"{key}=blog").items] == ["web-2"]


def test_list_pages_with_continue_tokens(store: Store) -> None:
    names = [f"vm-{i:02d}" for i in range(25)]
    store.apply_snapshot(
        "git:a",
        "r1",
        [vm(n, labels={"even": str(i % 2 == 0).lower()}) for i, n in enumerate(names)],
    )
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = store.list(
            "VirtualMachine", label_selector="even=true", limit=4, continue_token=token
        )
        seen += [o.name for o in page.items]
        pages += 1
        token = page.continue_token
        if token is None:
            break
    assert seen == names[::2]
    assert pages == 4


def test_a_malformed_continue_token_is_refused(store: Store) -> None:
    with pytest.raises(InvalidInput, match="continue_token"):
        store.list(continue_token="not-a-token!")


def test_put_creates_then_updates_with_expected_versions(store: Store) -> None:
    created = store.put(vm("api-1"), API, expected_version=0)
    assert (created.resource_version, created.generation, created.source) == (1, 1, API)
    updated = store.put(vm("api-1", memory="2Gi"), API, expected_version=1)
    assert (updated.resource_version, updated.generation) == (2, 2)
    same = store.put(vm("api-1", memory="2Gi"), API, expected_version=2)
    assert same.resource_version == 2


@pytest.mark.parametrize(
    ("expected", "error"),
    [
        pytest.param(0, Conflict, id="create-only-but-exists"),
        pytest.param(7, Conflict, id="stale-version"),
    ],
)
def test_put_refuses_a_wrong_expected_version(store: Store, expected: int, error: type) -> None:
    store.put(vm("api-1"), API)
    with pytest.raises(error) as info:
        store.put(vm("api-1", memory="2Gi"), API, expected_version=expected)
    assert (info.value.kind, info.value.name, info.value.expected, info.value.actual) == (
        "VirtualMachine",
        "api-1",
        expected,
        1,
    )
    assert store.get("VirtualMachine", "api-1").obj.spec.memory == 2**30


def test_put_with_a_version_of_a_missing_object_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.put(vm("ghost"), API, expected_version=3)


def test_two_writers_interleaved_one_gets_a_conflict(open_db: Callable[[], Store]) -> None:
    alice, bob = open_db(), open_db()
    alice.put(vm("shared"), API)
    seen_by_alice = alice.get("VirtualMachine", "shared").resource_version
    seen_by_bob = bob.get("VirtualMachine", "shared").resource_version
    alice.put(vm("shared", memory="2Gi"), API, expected_version=seen_by_alice)
    with pytest.raises(Conflict) as info:
        bob.put(vm("shared", memory="3Gi"), API, expected_version=seen_by_bob)
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert "expected resource version 1, found 2" in str(info.value)
    assert bob.get("VirtualMachine", "shared").obj.spec.memory == 2 * 2**30


def test_concurrent_read_modify_write_loses_no_update(open_db: Callable[[], Store]) -> None:
    """Two threads, each with its own Store, add 1 to a label 15 times, retrying conflicts."""
    first = open_db()
    first.put(vm("counter", labels={"n": "0"}), API)
    stores = [first, open_db()]
    conflicts = [0, 0]

    def bump(index: int) -> None:
        store = stores[index]
        for _ in range(15):
            while True:
                current = store.get("VirtualMachine", "counter")
                n = int(current.obj.metadata.labels["n"]) + 1
                try:
                    store.put(vm("counter", labels={"n": str(n)}), API, current.resource_version)
                    break
                except Conflict:
                    conflicts[index] += 1

    threads = [threading.Thread(target=bump, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = first.get("VirtualMachine", "counter")
    assert final.obj.metadata.labels["n"] == "30"
    assert final.resource_version == 31


def test_put_does_not_take_objects_of_another_source(store: Store) -> None:
    store.apply_snapshot("git:origin", "r1", [vm("web-1")])
    with pytest.raises(OwnedElsewhere, match="owned by source 'git:origin', not 'api'"):
        store.put(vm("web-1", memory="2Gi"), API)
    taken = store.put(vm("web-1", memory="2Gi"), API, take_ownership=True)
    assert (taken.source, taken.resource_version) == (API, 2)


def test_delete_leaves_a_tombstone_until_purged(store: Store) -> None:
    store.put(vm("api-1"), API)
    store.put_status("VirtualMachine", "api-1", {"phase": "Stopping"})
    tombstone = store.delete("VirtualMachine", "api-1", expected_version=1)
    assert tombstone.deleted_at is not None
    assert tombstone.resource_version == 2
    with pytest.raises(NotFound):
        store.get("VirtualMachine", "api-1")
    assert store.list().items == []
    assert [o.ref for o in store.list_deleted()] == [ObjectRef("VirtualMachine", "api-1")]
    kept = store.get("VirtualMachine", "api-1", include_deleted=True)
    assert kept.obj.status is not None and kept.obj.status.phase == "Stopping"
    assert store.purge("VirtualMachine", "api-1") is True
    assert store.purge("VirtualMachine", "api-1") is False
    with pytest.raises(NotFound):
        store.get("VirtualMachine", "api-1", include_deleted=True)


def test_delete_checks_the_expected_version(store: Store) -> None:
    store.put(vm("api-1"), API)
    with pytest.raises(Conflict):
        store.delete("VirtualMachine", "api-1", expected_version=5)
    with pytest.raises(NotFound):
        store.delete("VirtualMachine", "missing")


def test_purge_leaves_live_objects_alone(store: Store) -> None:
    store.put(vm("api-1"), API)
    assert store.purge("VirtualMachine", "api-1") is False
    assert store.get("VirtualMachine", "api-1").resource_version == 1


def test_put_on_a_tombstone_revives_it(store: Store) -> None:
    store.put(vm("api-1"), API)
    store.delete("VirtualMachine", "api-1")
    revived = store.put(vm("api-1"), API, expected_version=0)
    assert (revived.deleted_at, revived.resource_version, revived.generation) == (None, 3, 2)
