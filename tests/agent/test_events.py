"""The SSE event stream: sequence numbers, resume from a seq, resync when unknown."""

from __future__ import annotations

import threading
import time

from agentkit import make_spec

from controller.agents import parse_sse
from nodeagent.events import EventHub


def test_lifecycle_events_carry_increasing_seq(agent, client, spec):
    since = agent.events.last_seq
    client.ensure_domain_defined(spec)
    client.ensure_running("web-1")
    client.ensure_destroyed("web-1")

    events = list(client.events(since=since, wait_s=0.3))

    assert [(e.object, e.name, e.event, e.detail) for e in events] == [
        ("domain", "web-1", "defined", "added"),
        ("domain", "web-1", "started", "booted"),
        ("domain", "web-1", "stopped", "destroyed"),
    ]
    assert [e.seq for e in events] == [since + 1, since + 2, since + 3]


def test_resume_from_a_seq_gets_only_newer_events(agent, client, spec):
    client.ensure_domain_defined(spec)
    middle = agent.events.last_seq
    client.ensure_running("web-1")

    events = list(client.events(since=middle, wait_s=0.2))

    assert [e.event for e in events] == ["started"]


def test_unknown_seq_gets_resync_first(agent, client, spec):
    client.ensure_domain_defined(spec)

    from_older_agent = list(client.events(since=5, wait_s=0.2))
    from_future = list(client.events(since=agent.events.last_seq + 100, wait_s=0.2))

    for events in (from_older_agent, from_future):
        assert [e.kind for e in events] == ["resync"]
        assert events[0].seq == agent.events.last_seq


def test_ring_buffer_overflow_means_resync():
    hub = EventHub(capacity=3, first_seq=1)
    for n in range(5):
        hub.publish("lifecycle", "domain", f"vm-{n}", "started")

    assert hub.since(1) == (False, [])
    complete, events = hub.since(2)
    assert complete is True
    assert [e.name for e in events] == ["vm-2", "vm-3", "vm-4"]


def test_live_stream_delivers_events_as_they_happen(client):
    received = []

    def _listen() -> None:
        for event in client.events(wait_s=2.0):
            received.append(event)
            if event.event == "started":
                return

    listener = threading.Thread(target=_listen)
    listener.start()
    time.sleep(0.3)
    client.ensure_domain_defined(make_spec("live-1", n=4))
    client.ensure_running("live-1")
    listener.join(timeout=5)

    assert [(e.name, e.event) for e in received] == [("live-1", "defined"), ("live-1", "started")]


def test_sse_parser_handles_comments_and_multiline_data():
    lines = [
        ": keepalive",
        "",
        "id: 7",
        "event: resync",
        'data: {"last_seq": 7,',
        'data:  "reason": "x"}',
        "",
    ]
    events = list(parse_sse(lines))
    assert [(e.kind, e.seq, e.detail) for e in events] == [("resync", 7, "x")]
