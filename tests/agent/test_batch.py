"""Batches on the real agent (test driver): each call answered as it would be alone."""

from __future__ import annotations

import time

import httpx
import pytest
from agentkit import make_spec

from agentapi import VERBS, ApplyResult, StopRequest, VerbResult, VolumeApplyResult, VolumeSpec
from controller import agents
from controller.agents import AgentClient, AgentConflict, AgentNotFound, InvalidSpec
from controller.agentverbs import call

GIB = 1 << 30


def test_a_batch_answers_each_verb_in_order_as_alone(client):
    verbs = [
        call(VERBS.ensure_domain_defined, make_spec("web-1", n=1), name="web-1"),
        call(VERBS.ensure_domain_defined, make_spec("web-2", n=2), name="web-2"),
        call(
            VERBS.ensure_volume,
            VolumeSpec(name="b.qcow2", capacity_bytes=GIB),
            pool="images",
            vol="b.qcow2",
        ),
        call(VERBS.ensure_running, name="absent-vm"),
        call(VERBS.ensure_undefined, name="never-was"),
    ]

    answers = client.batch(verbs)

    assert client.batches, "the agent ran the verbs as one batch"
    assert [type(a) for a in answers] == [
        ApplyResult,
        ApplyResult,
        VolumeApplyResult,
        AgentNotFound,
        VerbResult,
    ]
    assert [a.created for a in answers[:2]] == [True, True]
    assert "absent-vm" in str(answers[3])
    assert answers[4].changed is False
    names = {d.name for d in client.get_state().domains}
    assert {"web-1", "web-2"} <= names
    # The same batch again changes nothing, as the same verbs made alone would not.
    again = client.batch(verbs)
    assert [getattr(a, "changed", None) for a in again] == [False, False, False, None, False]


def test_a_batch_starts_what_it_defined_in_an_earlier_batch(client):
    client.batch(
        [
            call(VERBS.ensure_domain_defined, make_spec(f"web-{n}", n=n), name=f"web-{n}")
            for n in (1, 2)
        ]
    )

    started = client.batch([call(VERBS.ensure_running, name=f"web-{n}") for n in (1, 2)])

    assert [(a.changed, a.state) for a in started] == [(True, "running"), (True, "running")]
    running = {d.name for d in client.get_state().domains if d.state == "running"}
    assert {"web-1", "web-2"} <= running


def test_a_deposed_controller_term_is_refused_for_the_whole_batch(make_agent, client_for):
    agent = make_agent()
    leader = client_for(agent)
    leader.epoch = lambda: 3
    leader.ensure_domain_defined(make_spec("db-0", n=9))
    client = client_for(agent)
    client.epoch = lambda: 2

    with pytest.raises(AgentConflict, match="older than term 3"):
        client.batch(
            [
                call(VERBS.ensure_domain_defined, make_spec(f"web-{n}", n=n), name=f"web-{n}")
                for n in (1, 2)
            ]
        )
    assert not {"web-1", "web-2"} & {d.name for d in client.get_state().domains}


def _raw_batch(client: AgentClient, calls: list[dict]) -> httpx.Response:
    return client._http.post("batch", json={"calls": calls})


def test_an_invalid_body_fails_its_call_alone_naming_the_field(client):
    response = _raw_batch(
        client,
        [
            {"method": "PUT", "path": "domains/web-1", "body": {"name": "web-1", "vcpus": 0}},
            {"method": "POST", "path": "domains/web-1/ensure-running"},
            {"method": "PUT", "path": "pools/images/volumes/a.qcow2", "body": {"name": "a.qcow2"}},
        ],
    )

    assert response.status_code == 200
    answers = response.json()["answers"]
    assert [a["status"] for a in answers] == [422, 404, 422]
    assert answers[0]["body"]["type"] == "invalid_spec"
    assert answers[0]["body"]["field"] in {"vcpus", "memory_mib", "uuid"}
    assert answers[2]["body"]["field"] == "capacity_bytes"


@pytest.mark.parametrize(
    "call",
    [
        pytest.param({"method": "PUT", "path": "batch"}, id="a-batch-in-a-batch"),
        pytest.param({"method": "GET", "path": "lease"}, id="the-lease"),
        pytest.param({"method": "PUT", "path": "pools/images/volumes/a/content"}, id="upload"),
        pytest.param({"method": "PUT", "path": "domains/../state"}, id="dot-dot"),
        pytest.param({"method": "GET", "path": "state"}, id="a-read"),
    ],
)
def test_a_call_that_cannot_be_batched_refuses_the_batch(client, call):
    response = _raw_batch(client, [{"method": "PUT", "path": "domains/web-1"}, call])

    assert response.status_code == 422
    assert response.json()["type"] == "invalid_spec"
    assert response.json()["field"].startswith("calls.1")


def test_an_agent_without_batches_gets_the_verbs_one_by_one(
    agent, loopback_server, client, monkeypatch
):
    monkeypatch.setattr(agents, "BATCH_RETRY_S", 0.3)
    app, _url = loopback_server
    routes = list(app.router.routes)
    app.router.routes[:] = [r for r in routes if getattr(r, "path", "") != "/v1/batch"]
    try:
        answers = client.batch(
            [
                call(VERBS.ensure_domain_defined, make_spec("web-1", n=1), name="web-1"),
                call(VERBS.ensure_running, name="web-1"),
            ]
        )
        assert [a.changed for a in answers] == [True, True]
        assert client.batches is False
    finally:
        app.router.routes[:] = routes
    # Upgraded under the running controller: asked again once the wait is over.
    time.sleep(0.35)
    assert client.batches is True
    again = client.batch(
        [call(VERBS.ensure_destroyed, name="web-1"), call(VERBS.ensure_running, name="x")]
    )
    assert again[0].changed is True and isinstance(again[1], AgentNotFound)
    assert client.batches is True


def test_a_stop_in_a_batch_gets_its_own_wait(client):
    client.batch([call(VERBS.ensure_domain_defined, make_spec("web-1", n=1), name="web-1")])
    client.ensure_running("web-1")

    answers = client.batch(
        [
            call(VERBS.ensure_stopped, StopRequest(timeout_s=1.0), name="web-1", wait_s=1.0),
            call(VERBS.ensure_running, name="nope"),
        ]
    )

    assert answers[0].state == "shutoff"
    assert isinstance(answers[1], AgentNotFound)


def test_a_refused_verb_does_not_stop_the_others(client):
    client.ensure_volume("images", VolumeSpec(name="c.qcow2", capacity_bytes=GIB))

    shrink, other = client.batch(
        [
            call(
                VERBS.ensure_volume,
                VolumeSpec(name="c.qcow2", capacity_bytes=GIB // 2),
                pool="images",
                vol="c.qcow2",
            ),
            call(
                VERBS.ensure_volume,
                VolumeSpec(name="d.qcow2", capacity_bytes=GIB),
                pool="images",
                vol="d.qcow2",
            ),
        ]
    )

    assert isinstance(shrink, InvalidSpec)
    assert other.changed is True
    assert client.get_volume("images", "c.qcow2").capacity_bytes == GIB
