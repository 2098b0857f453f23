"""The watch stream (server-sent events) over real HTTPS sees changes as they are committed."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from apikit import LiveApi, Tokens, vm, vm_doc

from controller.store import Store


def read_events(response: Any, count: int) -> list[tuple[str, dict[str, Any], str | None]]:
    """Return the first `count` (event, data, id) messages of an SSE response."""
    events: list[tuple[str, dict[str, Any], str | None]] = []
    event, data, id_ = None, None, None
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line.startswith("id: "):
            id_ = line[4:]
        elif line == "" and event is not None:
            events.append((event, data, id_))
            event, data, id_ = None, None, None
            if len(events) == count:
                break
    return events


def test_watch_sees_a_change(live_api: LiveApi, issued: Tokens, store: Store) -> None:
    since = store.revision()
    with live_api.client(issued.operator, timeout=30) as client:

        def write_later() -> None:
            time.sleep(0.3)
            client.post("/api/v1/virtualmachines", json=vm_doc("web-1", {"app": "web"}))

        writer = threading.Thread(target=write_later)
        with client.stream(
            "GET",
            "/api/v1/watch",
            params={"since": since, "kind": "vm", "topics": "object", "timeoutSeconds": 20},
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            writer.start()
            [(event, data, id_)] = read_events(response, 1)
        writer.join()
    assert event == "object"
    assert data["op"] == "created"
    assert (data["kind"], data["name"], data["resourceVersion"]) == ("VirtualMachine", "web-1", 1)
    assert data["object"]["metadata"]["labels"] == {"app": "web"}
    assert int(id_) == data["seq"] > since


def test_watch_resumes_from_last_event_id(live_api: LiveApi, issued: Tokens, store: Store) -> None:
    store.put(vm("a"), "api:x")
    mark = store.revision()
    store.put(vm("b"), "api:x")
    store.put_status("VirtualMachine", "b", {"phase": "Running"})
    with (
        live_api.client(issued.viewer, timeout=30) as client,
        client.stream(
            "GET",
            "/api/v1/watch",
            params={"timeoutSeconds": 5},
            headers={"Last-Event-ID": str(mark)},
        ) as response,
    ):
        events = read_events(response, 2)
    assert [(e, d["name"], d["op"]) for e, d, _ in events] == [
        ("object", "b", "created"),
        ("status", "b", "updated"),
    ]
    assert events[1][1]["object"]["status"]["phase"] == "Running"


def test_scoped_watch_hides_other_objects(live_api: LiveApi, issued: Tokens, store: Store) -> None:
    since = store.revision()
    store.put(vm("b-1", {"team": "b"}), "api:x")
    store.put(vm("a-1", {"team": "a"}), "api:x")
    with (
        live_api.client(issued.scoped, timeout=30) as client,
        client.stream(
            "GET", "/api/v1/watch", params={"since": since, "timeoutSeconds": 5}
        ) as response,
    ):
        events = read_events(response, 1)
    assert [(d["name"]) for _, d, _ in events] == ["a-1"]


def test_watch_from_a_trimmed_log_says_expired(
    live_api: LiveApi, issued: Tokens, store: Store
) -> None:
    for name in ("a", "b", "c"):
        store.put(vm(name), "api:x")
    store.trim_changes(store.revision() - 1)
    with (
        live_api.client(issued.viewer, timeout=30) as client,
        client.stream("GET", "/api/v1/watch", params={"since": 0, "timeoutSeconds": 5}) as resp,
    ):
        [(event, data, _)] = read_events(resp, 1)
    assert event == "expired"
    assert data["since"] == 0
