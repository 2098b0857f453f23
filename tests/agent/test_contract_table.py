"""The verb table (agentapi.verbs) is the agent contract's one home: every verb has an agent
route, a client method and a simulator handler, each with the table's method, path and
models, and nothing serves or calls an agent path outside the table."""

from __future__ import annotations

import asyncio
import inspect
import json
import typing
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from agentkit import make_spec
from fastapi.routing import APIRoute
from starlette.routing import WebSocketRoute

from agentapi import (
    API_PREFIX,
    BATCHABLE,
    VERBS,
    BatchCall,
    MigrateRequest,
    NetworkSpec,
    PoolSpec,
    Verb,
    VolumeSpec,
)
from controller.agents import AgentClient, AgentUnavailable
from controller.agentverbs import Call, call
from controller.sim.transport import HANDLERS, handler_of
from nodeagent.server import create_app

CLIENT_PLUMBING = {"close", "perform", "batches", "websocket_address"}
"""AgentClient's public names that are not a verb: the client's own machinery."""


def _flat(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        included = getattr(route, "original_router", None)  # an included APIRouter
        yield from _flat(included.routes) if included is not None else [route]


def agent_routes() -> dict[tuple[str, str], APIRoute | WebSocketRoute]:
    """Return the agent app's own routes by (method, path); WS for a websocket."""
    routes: dict[tuple[str, str], APIRoute | WebSocketRoute] = {}
    for route in _flat(create_app().routes):
        if isinstance(route, WebSocketRoute):
            routes["WS", route.path] = route
        elif isinstance(route, APIRoute):
            for method in route.methods:
                routes[method, route.path] = route
    return routes


def test_verbs_have_unique_names_and_calls() -> None:
    verbs = list(VERBS)
    assert len({v.name for v in verbs}) == len(verbs)
    assert len({(v.method, v.path) for v in verbs}) == len(verbs)
    assert all(VERBS[v.name] is v for v in verbs)


def test_every_verb_has_an_agent_route_and_every_route_a_verb() -> None:
    routes = agent_routes()
    assert set(routes) == {(verb.method, verb.route) for verb in VERBS}


@pytest.mark.parametrize("verb", [v for v in VERBS if v.method != "WS"], ids=lambda v: v.name)
def test_agent_route_has_the_verbs_models_and_status(verb: Verb) -> None:
    route = agent_routes()[verb.method, verb.route]
    assert isinstance(route, APIRoute)
    if verb.stream in (None, "upload"):
        assert route.response_model == verb.answer
    assert (route.status_code or 200) == verb.status
    bodies = route.dependant.body_params
    if verb.request is None:
        assert bodies == []
    else:
        (body,) = bodies
        declared = body.field_info.annotation
        assert verb.request in (declared, *typing.get_args(declared))


def test_every_verb_has_a_client_method_and_every_method_a_verb() -> None:
    methods = {name for name, _ in inspect.getmembers(AgentClient) if not name.startswith("_")}
    assert methods - CLIENT_PLUMBING == {verb.name for verb in VERBS}


def test_every_verb_has_a_simulator_handler_and_every_handler_a_verb() -> None:
    """A verb is served by its registered handler, else by the SimHost method of its name."""
    assert set(HANDLERS) <= {verb.name for verb in VERBS}
    for verb in VERBS:
        assert callable(handler_of(verb)), verb.name


def test_batches_carry_exactly_the_batchable_verbs() -> None:
    for verb in BATCHABLE:
        assert verb.idempotent and verb.method in ("PUT", "POST", "DELETE"), verb.name
    for verb in VERBS:
        params = {name: f"x-{name}" for name in verb.params}
        path = verb.url(**params)
        if verb.method in ("PUT", "POST", "DELETE"):
            accepted = True
            try:
                BatchCall(method=verb.method, path=path)  # type: ignore[arg-type]
            except ValueError:
                accepted = False
            assert accepted == verb.batchable, verb.name


SPEC = make_spec("web-1")
SAMPLES: dict[str, Callable[[AgentClient], Any]] = {
    "health": lambda c: c.health(),
    "get_state": lambda c: c.get_state(omit_volumes=["p"]),
    "get_stats": lambda c: c.get_stats(),
    "events": lambda c: list(c.events(since=3)),
    "get_lease": lambda c: c.get_lease(),
    "batch": lambda c: c.batch([call(VERBS.ensure_running, name="a")] * 2),
    "get_domain": lambda c: c.get_domain("web-1"),
    "ensure_domain_defined": lambda c: c.ensure_domain_defined(SPEC),
    "ensure_running": lambda c: c.ensure_running("web-1"),
    "ensure_stopped": lambda c: c.ensure_stopped("web-1", 5.0),
    "ensure_destroyed": lambda c: c.ensure_destroyed("web-1"),
    "ensure_undefined": lambda c: c.ensure_undefined("web-1", force=True),
    "set_balloon": lambda c: c.set_balloon("web-1", 128),
    "list_snapshots": lambda c: c.list_snapshots("web-1"),
    "get_snapshot": lambda c: c.get_snapshot("web-1", "s1"),
    "ensure_snapshot": lambda c: c.ensure_snapshot("web-1", "s1"),
    "ensure_snapshot_deleted": lambda c: c.ensure_snapshot_deleted("web-1", "s1"),
    "revert_snapshot": lambda c: c.revert_snapshot("web-1", "s1"),
    "migrate": lambda c: c.migrate("web-1", MigrateRequest(destination_uri="qemu+tcp://b/system")),
    "get_migration": lambda c: c.get_migration("web-1"),
    "cancel_migration": lambda c: c.cancel_migration("web-1"),
    "list_networks": lambda c: c.list_networks(),
    "get_network": lambda c: c.get_network("lan"),
    "ensure_network_defined": lambda c: c.ensure_network_defined(
        NetworkSpec(name="lan", mode="isolated")
    ),
    "ensure_network_active": lambda c: c.ensure_network_active("lan"),
    "ensure_network_inactive": lambda c: c.ensure_network_inactive("lan"),
    "ensure_network_undefined": lambda c: c.ensure_network_undefined("lan"),
    "list_pools": lambda c: c.list_pools(),
    "get_pool": lambda c: c.get_pool("p"),
    "ensure_pool": lambda c: c.ensure_pool(PoolSpec(name="p", type="dir", target_path="/p")),
    "ensure_pool_undefined": lambda c: c.ensure_pool_undefined("p"),
    "get_volume": lambda c: c.get_volume("p", "v"),
    "ensure_volume": lambda c: c.ensure_volume("p", VolumeSpec(name="v", capacity_bytes=1)),
    "ensure_volume_deleted": lambda c: c.ensure_volume_deleted("p", "v"),
    "upload_volume": lambda c: c.upload_volume("p", "v", b"data"),
    "download_volume": lambda c: list(c.download_volume("p", "v")),
    "open_console": lambda c: asyncio.run(c.open_console("web-1", force=True)),
    "issue_graphics_ticket": lambda c: c.issue_graphics_ticket("web-1"),
    "open_graphics": lambda c: asyncio.run(c.open_graphics("web-1", "t", "vnc")),
}
"""One use of every client method; each must make exactly the call of the verb it is named for."""


class Recorder(httpx.BaseTransport):
    """Records each request and refuses it, as an unreachable agent would."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, bytes]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode().split("?", 1)[0]
        self.sent.append((request.method, path, request.content))
        raise httpx.ConnectError("recorded", request=request)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[AgentClient, Recorder]]:
    recorder = Recorder()

    async def open_websocket(self: AgentClient, c: Call, subprotocols: Any = None) -> None:
        recorder.sent.append(("WS", API_PREFIX + c.path, b""))
        raise AgentUnavailable("recorded")

    monkeypatch.setattr(AgentClient, "_open_websocket", open_websocket)
    with AgentClient("http://h1.test:8470", transport=recorder) as client:
        yield client, recorder


def test_every_verb_has_a_sample_client_use() -> None:
    assert set(SAMPLES) == {verb.name for verb in VERBS}


@pytest.mark.parametrize("verb", list(VERBS), ids=lambda v: v.name)
def test_each_client_method_makes_the_call_of_its_verb(
    verb: Verb, recorded: tuple[AgentClient, Recorder]
) -> None:
    client, recorder = recorded
    with pytest.raises(AgentUnavailable):
        SAMPLES[verb.name](client)
    ((method, path, content),) = recorder.sent
    assert path.startswith(API_PREFIX)
    found = VERBS.find(method, httpx.URL(path).path.removeprefix(API_PREFIX))
    assert found is not None and found[0] is verb, (method, path)
    if verb.request is not None and verb.stream is None:
        verb.request.model_validate(json.loads(content))
