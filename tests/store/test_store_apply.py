"""apply_snapshot: create, update, no-op, prune, protect, ownership, generation."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from store_objects import host, network, protected_vm, vm

from controller.store import InvalidInput, ObjectRef, OwnershipConflict, Store

GIT = "git:origin"
DIR = "dir:local"


def test_first_apply_creates_every_object(store: Store) -> None:
    result = store.apply_snapshot(GIT, "r1", [vm("web-1"), host("h1"), network("lan")])
    assert sorted(result.created) == [
        ObjectRef("Host", "h1"),
        ObjectRef("Network", "lan"),
        ObjectRef("VirtualMachine", "web-1"),
    ]
    assert (result.updated, result.unchanged, result.deleted, result.conflicts) == ([], [], [], [])
    stored = store.get("VirtualMachine", "web-1")
    assert (stored.source, stored.revision, stored.generation, stored.resource_version) == (
        GIT,
        "r1",
        1,
        1,
    )
    assert stored.obj.spec.memory == 2**30
    assert stored.obj.metadata.generation == 1
    assert stored.obj.metadata.resource_version == "1"
    assert stored.obj.status is None


def test_reapplying_the_same_objects_writes_nothing(store: Store) -> None:
    store.apply_snapshot(GIT, "r1", [vm("web-1"), vm("web-2")])
    seq = store.revision()
    result = store.apply_snapshot(GIT, "r2", [vm("web-1"), vm("web-2")])
    assert result.unchanged == [
        ObjectRef("VirtualMachine", "web-1"),
        ObjectRef("VirtualMachine", "web-2"),
    ]
    assert not result.changed
    assert store.revision() == seq
    stored = store.get("VirtualMachine", "web-1")
    assert (stored.revision, stored.resource_version) == ("r1", 1)


def test_spec_change_bumps_generation_and_version(store: Store) -> None:
    store.apply_snapshot(GIT, "r1", [vm("web-1", memory="1Gi")])
    result = store.apply_snapshot(GIT, "r2", [vm("web-1", memory="2Gi")])
    assert result.updated == [ObjectRef("VirtualMachine", "web-1")]
    stored = store.get("VirtualMachine", "web-1")
    assert (stored.generation, stored.resource_version, stored.revision) == (2, 2, "r2")
    assert stored.obj.spec.memory == 2 * 2**30


@pytest.mark.parametrize(
    ("before", "after", "generation"),
    [
        pytest.param({}, {"labels": {"tier": "web"}}, 2, id="label-added"),
        pytest.param({}, {"annotations": {"owner": "ops"}}, 2, id="annotation-added"),
        pytest.param({}, {"description": "front end"}, 2, id="spec-field-added"),
        pytest.param({}, {"run_strategy": "Always"}, 1, id="explicit-default-same-meaning"),
        pytest.param({"memory": "1024Mi"}, {"memory": "1Gi"}, 1, id="same-quantity-other-form"),
    ],
)
def test_generation_bumps_only_when_meaning_changes(
    store: Store, before: dict[str, object], after: dict[str, object], generation: int
) -> None:
    store.apply_snapshot(GIT, "r1", [vm("web-1", **before)])
    store.apply_snapshot(GIT, "r2", [vm("web-1", **after)])
    assert store.get("VirtualMachine", "web-1").generation == generation


def test_without_prune_missing_objects_stay(store: Store) -> None:
    store.apply_snapshot(GIT, "r1", [vm("web-1"), vm("web-2")])
    result = store.apply_snapshot(GIT, "r2", [vm("web-1")], prune=False)
    assert result.deleted == []
    assert [o.name for o in store.list().items] == ["web-1", "web-2"]


def test_prune_deletes_missing_objects_of_this_source_only(store: Store) -> None:
    store.apply_snapshot(GIT, "r1", [vm("web-1"), vm("web-2")])
    store.apply_snapshot(DIR, "d1", [vm("db-1")])
    result = store.apply_snapshot(GIT, "r2", [vm("web-1")], prune=True)
    assert result.deleted == [ObjectRef("VirtualMachine", "web-2")]
    assert [o.name for o in store.list().items] == ["db-1", "web-1"]
    assert [o.name for o in store.list_deleted()] == ["web-2"]


def test_prune_never_deletes_protected_objects(store: Store) -> None:
    store.apply_snapshot(GIT, "r1", [vm("web-1"), protected_vm("keep-me")])
    result = store.apply_snapshot(GIT, "r2", [], prune=True)
    assert result.deleted == [ObjectRef("VirtualMachine", "web-1")]
    assert result.skipped_protected == [ObjectRef("VirtualMachine", "keep-me")]
    assert [o.name for o in store.list().items] == ["keep-me"]
    again = store.apply_snapshot(GIT, "r3", [], prune=True)
    assert (again.deleted, again.skipped_protected) == (
        [],
        [ObjectRef("VirtualMachine", "keep-me")],
    )


def test_objects_of_another_source_are_not_overwritten(store: Store) -> None:
    store.apply_snapshot(DIR, "d1", [vm("web-1", memory="1Gi")])
    result = store.apply_snapshot(GIT, "r1", [vm("web-1", memory="4Gi"), vm("web-2")])
    assert result.conflicts == [OwnershipConflict("VirtualMachine", "web-1", DIR)]
    assert result.created == [ObjectRef("VirtualMachine", "web-2")]
    stored = store.get("VirtualMachine", "web-1")
    assert (stored.source, stored.obj.spec.memory, stored.resource_version) == (DIR, 2**30, 1)


def test_a_pruned_object_comes_back_as_a_new_object(store: Store) -> None:
    store.apply_snapshot(GIT, "r1", [vm("web-1")])
    store.put_status("VirtualMachine", "web-1", {"phase": "Running"})
    store.apply_snapshot(GIT, "r2", [], prune=True)
    result = store.apply_snapshot(GIT, "r3", [vm("web-1")])
    assert result.created == [ObjectRef("VirtualMachine", "web-1")]
    stored = store.get("VirtualMachine", "web-1")
    assert (stored.deleted_at, stored.obj.status, stored.revision) == (None, None, "r3")
    assert stored.generation == 2
    assert store.list_deleted() == []


def test_a_tombstone_of_another_source_may_be_taken_over(store: Store) -> None:
    store.apply_snapshot(DIR, "d1", [vm("web-1")])
    store.apply_snapshot(DIR, "d2", [], prune=True)
    result = store.apply_snapshot(GIT, "r1", [vm("web-1")])
    assert result.created == [ObjectRef("VirtualMachine", "web-1")]
    assert store.get("VirtualMachine", "web-1").source == GIT


def test_a_duplicate_in_the_snapshot_is_refused_and_nothing_changes(store: Store) -> None:
    store.apply_snapshot(GIT, "r1", [vm("web-1")])
    with pytest.raises(InvalidInput, match="VirtualMachine/web-2 appears twice") as info:
        store.apply_snapshot(GIT, "r2", [vm("web-2"), vm("web-2", memory="2Gi")], prune=True)
    assert info.value.field == "objects"
    assert [o.name for o in store.list().items] == ["web-1"]


def test_apply_stamps_the_configured_source(store: Store) -> None:
    store.put_source("origin", "git", {"url": "https://example.invalid/fleet.git"})
    store.apply_snapshot(GIT, "abc123", [vm("web-1")])
    source = store.get_source("origin")
    assert (source.last_applied_revision, source.last_attempted_revision) == ("abc123", "abc123")


def test_summary_counts_every_outcome(store: Store) -> None:
    store.apply_snapshot(DIR, "d1", [vm("theirs")])
    store.apply_snapshot(GIT, "r1", [vm("a"), vm("b"), protected_vm("p")])
    result = store.apply_snapshot(
        GIT, "r2", [vm("a", memory="2Gi"), vm("c"), vm("theirs")], prune=True
    )
    assert result.summary() == (
        "1 created, 1 updated, 0 unchanged, 1 deleted, 1 protected from prune, "
        "1 owned by other sources"
    )


def test_concurrent_applies_of_one_source_are_each_all_or_nothing(
    open_db: Callable[[], Store],
) -> None:
    """Two controllers apply different snapshots of one source; every apply lands whole."""
    stores = [open_db(), open_db()]
    snapshots = [
        [vm(f"vm-{i:03d}", memory=memory) for i in range(150)] for memory in ("1Gi", "2Gi")
    ]
    errors: list[BaseException] = []

    def apply(index: int) -> None:
        try:
            for round_ in range(4):
                stores[index].apply_snapshot(GIT, f"r{index}-{round_}", snapshots[index])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=apply, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    memories = {o.obj.spec.memory for o in stores[0].list("VirtualMachine").items}
    assert len(memories) == 1
    assert len(stores[0].list("VirtualMachine").items) == 150
