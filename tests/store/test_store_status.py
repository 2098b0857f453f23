"""Status: written only when it changed, versioned on its own, gone with the object."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from store_objects import vm

from controller.store import Conflict, NotFound, Store
from schemas import Condition, ConditionStatus, VirtualMachineStatus, VMPhase


def running(host: str) -> VirtualMachineStatus:
    return VirtualMachineStatus(
        phase=VMPhase.RUNNING,
        host=host,
        observed_generation=1,
        conditions=[
            Condition(
                type="Ready",
                status=ConditionStatus.TRUE,
                reason="Running",
                message=f"running on {host}",
                last_transition_time=datetime(2026, 1, 1, tzinfo=UTC),
            )
        ],
    )


def test_status_is_written_only_when_it_changes(store: Store) -> None:
    store.put(vm("web-1"), "api")
    assert store.put_status("VirtualMachine", "web-1", running("h1")) is True
    seq = store.revision()
    assert store.put_status("VirtualMachine", "web-1", running("h1")) is False
    assert store.revision() == seq
    assert store.put_status("VirtualMachine", "web-1", running("h2")) is True
    stored = store.get_status("VirtualMachine", "web-1")
    assert stored is not None and stored.resource_version == 2
    assert stored.status["host"] == "h2"
    assert stored.status["conditions"][0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"


def test_status_comes_back_as_the_kind_model(store: Store) -> None:
    store.put(vm("web-1"), "api")
    store.put_status("VirtualMachine", "web-1", running("h1"))
    obj = store.get("VirtualMachine", "web-1").obj
    assert obj.status == running("h1")


def test_status_survives_spec_updates_and_keeps_its_own_version(store: Store) -> None:
    store.apply_snapshot("git:origin", "r1", [vm("web-1")])
    store.put_status("VirtualMachine", "web-1", running("h1"))
    store.apply_snapshot("git:origin", "r2", [vm("web-1", memory="2Gi")])
    stored = store.get("VirtualMachine", "web-1")
    assert (stored.resource_version, stored.status_version) == (2, 1)
    assert stored.obj.status is not None and stored.obj.status.host == "h1"


def test_status_writes_may_be_conditional(store: Store) -> None:
    store.put(vm("web-1"), "api")
    store.put_status("VirtualMachine", "web-1", running("h1"), expected_version=0)
    with pytest.raises(Conflict):
        store.put_status("VirtualMachine", "web-1", running("h2"), expected_version=0)


def test_status_of_a_missing_object_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.put_status("VirtualMachine", "nope", running("h1"))


def test_status_is_removed_with_the_object(store: Store) -> None:
    store.put(vm("web-1"), "api")
    store.put_status("VirtualMachine", "web-1", running("h1"))
    store.delete("VirtualMachine", "web-1")
    store.purge("VirtualMachine", "web-1")
    store.put(vm("web-1"), "api")
    assert store.get_status("VirtualMachine", "web-1") is None


def test_many_statuses_are_written_chunk_by_chunk_in_one_transaction(store: Store) -> None:
    names = [f"vm-{i:04d}" for i in range(1234)]
    for name in names:
        store.put(vm(name), "api")
    first = store.put_statuses({("VirtualMachine", n): running("h1") for n in names})
    assert len(first) == len(names)
    seq = store.revision()
    again = {("VirtualMachine", n): running("h2" if n == names[777] else "h1") for n in names}
    assert store.put_statuses(again) == [("VirtualMachine", names[777])]
    assert store.revision() == seq + 1
    stored = store.get_status("VirtualMachine", names[777])
    assert stored is not None and (stored.resource_version, stored.status["host"]) == (2, "h2")


def test_a_missing_object_in_a_later_chunk_writes_no_status(store: Store) -> None:
    names = [f"vm-{i:04d}" for i in range(600)]
    for name in names:
        store.put(vm(name), "api")
    items = {("VirtualMachine", n): running("h1") for n in [*names, "vm-gone"]}
    with pytest.raises(NotFound):
        store.put_statuses(items)
    assert store.get_status("VirtualMachine", names[0]) is None
