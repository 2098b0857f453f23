"""Events: repeats within the window count up; listing is newest first with filters."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import FakeClock

from controller.store import InvalidInput, Store


def test_a_repeat_within_the_window_bumps_the_count(store: Store, clock: FakeClock) -> None:
    first = store.record_event(
        "VirtualMachine", "web-1", "Warning", "NoHostFits", "no host has 4Gi"
    )
    start = clock.now
    clock.advance(60)
    again = store.record_event(
        "VirtualMachine", "web-1", "Warning", "NoHostFits", "no host has 4Gi"
    )
    assert again.id == first.id
    assert (again.count, again.first_seen, again.last_seen) == (2, start, clock.now)
    assert len(store.list_events()) == 1


def test_a_repeat_after_the_window_is_a_new_event(store: Store, clock: FakeClock) -> None:
    store.event_window = timedelta(minutes=5)
    store.record_event("VirtualMachine", "web-1", "Normal", "Started", "started on h1")
    clock.advance(301)
    store.record_event("VirtualMachine", "web-1", "Normal", "Started", "started on h1")
    assert [e.count for e in store.list_events()] == [1, 1]


def test_another_message_or_object_is_another_event(store: Store) -> None:
    store.record_event("VirtualMachine", "web-1", "Normal", "Started", "started on h1")
    store.record_event("VirtualMachine", "web-1", "Normal", "Started", "started on h2")
    store.record_event("VirtualMachine", "web-2", "Normal", "Started", "started on h1")
    assert len(store.list_events()) == 3


def test_list_is_newest_first_and_filters(store: Store, clock: FakeClock) -> None:
    store.record_event(
        "VirtualMachine", "web-1", "Normal", "Defined", "defined on h1", identity="alice"
    )
    clock.advance(10)
    middle = clock.now
    store.record_event(
        "VirtualMachine", "web-1", "Warning", "StartFailed", "qemu exited", component="executor"
    )
    clock.advance(10)
    store.record_event("Host", "h1", "Warning", "AgentUnreachable", "connection refused")
    assert [e.reason for e in store.list_events()] == ["AgentUnreachable", "StartFailed", "Defined"]
    assert [e.reason for e in store.list_events(kind="VirtualMachine", name="web-1")] == [
        "StartFailed",
        "Defined",
    ]
    assert [e.reason for e in store.list_events(type_="Warning")] == [
        "AgentUnreachable",
        "StartFailed",
    ]
    assert [e.reason for e in store.list_events(since=middle)] == [
        "AgentUnreachable",
        "StartFailed",
    ]
    assert [e.reason for e in store.list_events(limit=1)] == ["AgentUnreachable"]
    defined = store.list_events(kind="VirtualMachine")[-1]
    assert (defined.identity, defined.component) == ("alice", "controller")
    assert store.list_events(type_="Warning")[1].component == "executor"


@pytest.mark.parametrize(
    ("type_", "reason", "field"),
    [
        pytest.param("Error", "Started", "type", id="unknown-type"),
        pytest.param("Normal", "not camel", "reason", id="reason-not-camelcase"),
    ],
)
def test_malformed_events_are_refused(store: Store, type_: str, reason: str, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        store.record_event("VirtualMachine", "web-1", type_, reason, "message")
    assert info.value.field == field


def test_old_events_are_pruned(store: Store, clock: FakeClock) -> None:
    store.record_event("Host", "h1", "Normal", "Up", "agent answered")
    clock.advance(3600)
    store.record_event("Host", "h2", "Normal", "Up", "agent answered")
    assert store.prune_events(clock.now - timedelta(minutes=30)) == 1
    assert [e.name for e in store.list_events()] == ["h2"]
