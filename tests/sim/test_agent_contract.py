"""One contract, two agents: the same verb sequence against the real agent (libvirt's test
driver, served by nodeagent.server's app in process) and against a controller.sim host,
through the same AgentClient. Answers must agree in kind, idempotency and error type."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import libvirt
import pytest

from agentapi import VERBS, DiskSpec, DomainSpec, NetworkSpec, NicSpec, PoolSpec, VolumeSpec
from controller.agents import (
    AgentClient,
    AgentConflict,
    AgentNotFound,
    InvalidSpec,
)
from controller.agentverbs import call
from controller.sim import INSTANT, SimFleet
from nodeagent.agent import Agent
from nodeagent.server import create_app

NODE_URI = f"test://{Path(__file__).resolve().parents[1] / 'data' / 'node.xml'}"
UUID = "5b2c1f3e-8a4d-4c1e-9f00-1234567890ab"

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


class InProcess(httpx.BaseTransport):
    """A synchronous httpx transport into an ASGI app."""

    def __init__(self, app) -> None:
        self._asgi = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def exchange() -> httpx.Response:
            response = await self._asgi.handle_async_request(request)
            body = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=body)

        return asyncio.run(exchange())


@pytest.fixture(params=["real", "sim"])
def agent(request: pytest.FixtureRequest) -> Iterator[AgentClient]:
    if request.param == "real":
        real = Agent(NODE_URI)
        real.start()
        transport: httpx.BaseTransport = InProcess(create_app(real))
        close: Callable[[], None] = real.close
    else:
        fleet = SimFleet(["h1"], latency=INSTANT)
        transport = fleet.transport_for("h1")
        close = lambda: None  # noqa: E731
    with AgentClient("http://h1.test:8470", transport=transport) as client:
        yield client
    close()


def domain(memory_mib: int = 256) -> DomainSpec:
    return DomainSpec(
        name="web-1",
        uuid=UUID,
        vcpus=1,
        memory_mib=memory_mib,
        disks=[DiskSpec(target="vda", pool="vols", volume="web-1-root")],
        nics=[NicSpec(network="lan")],
    )


def test_domain_lifecycle_contract(agent: AgentClient) -> None:
    net = agent.ensure_network_defined(
        NetworkSpec(name="lan", mode="isolated", bridge="cr-lan", ipv4_cidr="10.9.0.1/24")
    )
    assert (net.created, net.changed) == (True, True)
    assert agent.ensure_network_active("lan").changed
    assert not agent.ensure_network_active("lan").changed
    assert agent.ensure_pool(PoolSpec(name="vols", type="dir", target_path="/tmp/vols")).created
    vol = agent.ensure_volume("vols", VolumeSpec(name="web-1-root", capacity_bytes=2**30))
    assert (vol.created, vol.volume.capacity_bytes) == (True, 2**30)
    assert not agent.ensure_volume(
        "vols", VolumeSpec(name="web-1-root", capacity_bytes=2**30)
    ).changed
    with pytest.raises(InvalidSpec) as shrink:
        agent.ensure_volume("vols", VolumeSpec(name="web-1-root", capacity_bytes=2**20))
    assert shrink.value.field == "capacity_bytes"

    defined = agent.ensure_domain_defined(domain())
    assert (defined.created, defined.changed) == (True, True)
    again = agent.ensure_domain_defined(domain())
    assert (again.created, again.changed) == (False, False)
    state = agent.get_domain("web-1")
    assert (state.state, state.persistent, state.spec.memory_mib) == ("shutoff", True, 256)
    # libvirt fills in a MAC; the machine type only QEMU fills in (the test driver leaves it)
    assert state.spec.nics[0].mac is not None

    assert agent.ensure_running("web-1").changed
    assert not agent.ensure_running("web-1").changed
    assert agent.get_state().domains[0].state == "running"
    with pytest.raises(AgentConflict):
        agent.ensure_undefined("web-1")
    with pytest.raises(AgentConflict):
        agent.ensure_network_undefined("lan")
    assert agent.ensure_destroyed("web-1").changed
    assert not agent.ensure_destroyed("web-1").changed
    assert agent.ensure_undefined("web-1").changed
    assert not agent.ensure_undefined("web-1").changed
    with pytest.raises(AgentNotFound):
        agent.get_domain("web-1")
    with pytest.raises(AgentNotFound):
        agent.ensure_running("web-1")


def test_conflicting_uuid_and_renamed_spec(agent: AgentClient) -> None:
    agent.ensure_network_defined(NetworkSpec(name="lan", mode="isolated", bridge="cr-lan"))
    agent.ensure_network_active("lan")
    agent.ensure_pool(PoolSpec(name="vols", type="dir", target_path="/tmp/vols"))
    agent.ensure_domain_defined(domain())
    other = domain().model_copy(update={"uuid": "00000000-0000-4000-8000-000000000001"})
    with pytest.raises(AgentConflict):
        agent.ensure_domain_defined(other)
    with pytest.raises(InvalidSpec) as caught:
        agent.perform(call(VERBS.ensure_domain_defined, domain(), name="web-2"))
    assert caught.value.field == "name"


def test_lease_without_etcd_contract(agent: AgentClient) -> None:
    """Neither agent here has etcd: no lease, nothing fenced, and HA domains may start."""
    lease = agent.get_lease()
    assert (lease.arbiter, lease.held, lease.granted, lease.lease_id, lease.fenced) == (
        "none",
        False,
        False,
        None,
        [],
    )
    assert agent.get_state().lease.arbiter == "none"
    agent.ensure_network_defined(NetworkSpec(name="lan", mode="isolated", bridge="cr-lan"))
    agent.ensure_network_active("lan")
    agent.ensure_pool(PoolSpec(name="vols", type="dir", target_path="/tmp/vols"))
    agent.ensure_volume("vols", VolumeSpec(name="web-1-root", capacity_bytes=2**30))
    agent.ensure_domain_defined(domain().model_copy(update={"ha": True}))
    assert agent.ensure_running("web-1").state == "running"


def test_term_contract(agent: AgentClient, request: pytest.FixtureRequest) -> None:
    """A mutating call under an older controller term than one seen is refused; reads never."""
    term = 2
    agent.epoch = lambda: term
    agent.ensure_network_defined(NetworkSpec(name="lan", mode="isolated", bridge="cr-lan"))
    assert agent.get_lease().term == 2
    term = 1
    with pytest.raises(AgentConflict, match="controller term 1 is older than term 2"):
        agent.ensure_network_active("lan")
    assert agent.get_network("lan").active is False
    assert agent.get_lease().term == 2
    term = 3
    assert agent.ensure_network_active("lan").changed


def test_state_leaves_out_the_volumes_of_named_pools(agent: AgentClient) -> None:
    agent.ensure_pool(PoolSpec(name="vols", type="dir", target_path="/tmp/vols"))
    agent.ensure_volume("vols", VolumeSpec(name="web-1-root", capacity_bytes=2**30))

    def pool(state):
        return next(p for p in state.pools if p.name == "vols")

    full = pool(agent.get_state())
    assert full.volumes_listed and [v.name for v in full.volumes] == ["web-1-root"]
    left_out = pool(agent.get_state(omit_volumes=["vols", "absent"]))
    assert (left_out.volumes_listed, left_out.volumes, left_out.active) == (False, [], True)


def test_batch_contract(agent: AgentClient) -> None:
    lan = NetworkSpec(name="lan", mode="isolated", bridge="cr-lan", ipv4_cidr="10.9.0.1/24")
    setup = agent.batch(
        [
            call(VERBS.ensure_network_defined, lan, name="lan"),
            call(
                VERBS.ensure_pool,
                PoolSpec(name="vols", type="dir", target_path="/tmp/vols"),
                name="vols",
            ),
        ]
    )
    assert [(a.created, a.changed) for a in setup] == [(True, True), (True, True)]
    answers = agent.batch(
        [
            call(VERBS.ensure_network_active, name="lan"),
            call(
                VERBS.ensure_volume,
                VolumeSpec(name="web-1-root", capacity_bytes=2**30),
                pool="vols",
                vol="web-1-root",
            ),
            call(VERBS.ensure_running, name="web-1"),
            call(VERBS.ensure_network_undefined, name="absent"),
        ]
    )
    assert [type(a).__name__ for a in answers] == [
        "VerbResult",
        "VolumeApplyResult",
        "AgentNotFound",
        "VerbResult",
    ]
    assert [answers[0].changed, answers[1].created, answers[3].changed] == [True, True, False]
    defined = agent.batch(
        [
            call(VERBS.ensure_domain_defined, domain(), name="web-1"),
            call(VERBS.ensure_running, name="x"),
        ]
    )
    assert defined[0].created and isinstance(defined[1], AgentNotFound)
    started = agent.batch(
        [call(VERBS.ensure_running, name="web-1"), call(VERBS.ensure_destroyed, name="x")]
    )
    assert started[0].changed and isinstance(started[1], AgentNotFound)
    assert agent.get_domain("web-1").state == "running"
    refused = agent._http.post("batch", json={"calls": [{"method": "GET", "path": "state"}]})
    assert refused.status_code == 422
    assert (refused.json()["type"], refused.json()["field"]) == ("invalid_spec", "calls.0.method")


def provision(agent: AgentClient, **domain_fields: object) -> None:
    """Define and start what domain() needs (network lan, pool vols, its volume), then it."""
    agent.ensure_network_defined(NetworkSpec(name="lan", mode="isolated", bridge="cr-lan"))
    agent.ensure_network_active("lan")
    agent.ensure_pool(PoolSpec(name="vols", type="dir", target_path="/tmp/vols"))
    agent.ensure_volume("vols", VolumeSpec(name="web-1-root", capacity_bytes=2**30))
    agent.ensure_domain_defined(domain().model_copy(update=domain_fields))


def test_balloon_and_stats_contract(agent: AgentClient) -> None:
    provision(agent, max_memory_mib=512)
    with pytest.raises(AgentConflict, match="not running"):
        agent.set_balloon("web-1", 128)
    agent.ensure_running("web-1")
    assert agent.set_balloon("web-1", 128).changed
    assert not agent.set_balloon("web-1", 128).changed
    with pytest.raises(InvalidSpec) as above:
        agent.set_balloon("web-1", 1024)
    assert above.value.field == "target_mib"
    (stats,) = agent.get_stats().domains
    assert (stats.name, stats.state, stats.balloon_current_kib) == ("web-1", "running", 128 * 1024)


def test_snapshot_revert_contract(agent: AgentClient) -> None:
    provision(agent)
    assert agent.ensure_snapshot("web-1", "s1").changed
    assert agent.get_snapshot("web-1", "s1").domain_state == "shutoff"
    with pytest.raises(AgentNotFound):
        agent.get_snapshot("web-1", "nope")
    agent.ensure_running("web-1")
    reverted = agent.revert_snapshot("web-1", "s1")
    assert (reverted.changed, reverted.state) == (True, "shutoff")
    assert agent.get_state().domains[0].state == "shutoff"
    with pytest.raises(AgentConflict, match="no display"):
        agent.issue_graphics_ticket("web-1")


def test_simulated_streams_and_consoles() -> None:
    """What only the simulator answers this way: it keeps no events (a resync), keeps
    uploaded content in memory, and refuses the console's websocket handshake."""
    fleet = SimFleet(["h1"], latency=INSTANT)
    with AgentClient("http://h1.test:8470", transport=fleet.transport_for("h1")) as agent:
        provision(agent, graphics="vnc")
        (resync,) = agent.events(since=0)
        assert (resync.kind, resync.seq) == ("resync", agent.get_state().events_seq)
        assert list(agent.events()) == []
        agent.upload_volume("vols", "web-1-root", b"qcow2 bytes")
        assert b"".join(agent.download_volume("vols", "web-1-root")) == b"qcow2 bytes"
        agent.ensure_running("web-1")
        assert agent.issue_graphics_ticket("web-1").kind == "vnc"
        handshake = {"upgrade": "websocket", "connection": "upgrade"}
        refused = agent._http.get(VERBS.open_console.url(name="web-1"), headers=handshake)
        assert (refused.status_code, refused.json()["type"]) == (503, "unavailable")
