"""The sampler over real node agents on libvirt's test driver, reached in process.

A Controller converges one host with a running VM; the sampler then reads the agent's
statistics twice and stores host and VM samples, which roll up into the hour.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import libvirt
import pytest

from controller.agentpool import AgentPool
from controller.history.model import Period, Subject
from controller.history.sampler import Sampler
from controller.loop import Controller, SourceSetting
from controller.sources import DirectorySource
from controller.store import Store, open_store
from nodeagent.agent import Agent
from nodeagent.server import create_app

NODE_URI = f"test://{Path(__file__).resolve().parents[1] / 'data' / 'node.xml'}"
T0 = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
MANIFESTS = """\
apiVersion: corral.dev/v1alpha1
kind: Host
metadata:
  name: h1
spec:
  address: http://h1.test:8470
  virtualization: qemu
---
apiVersion: corral.dev/v1alpha1
kind: Network
metadata:
  name: lan
spec:
  mode: isolated
  ipv4:
    cidr: 10.98.0.0/24
---
apiVersion: corral.dev/v1alpha1
kind: VirtualMachine
metadata:
  name: web-1
spec:
  cpus: 1
  memory: 96Mi
  boot:
    kernel: /boot/vmlinuz
  nics:
    - name: eth0
      network: lan
"""

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


class InProcessLink(httpx.BaseTransport):
    """A synchronous httpx transport into the agent's ASGI app (the network is the edge)."""

    def __init__(self, app) -> None:
        self._asgi = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def exchange() -> httpx.Response:
            response = await self._asgi.handle_async_request(request)
            body = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=body)

        return asyncio.run(exchange())


@pytest.fixture
def converged(tmp_path: Path) -> Iterator[tuple[Store, AgentPool]]:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "fleet.yaml").write_text(MANIFESTS)
    agent = Agent(NODE_URI)
    agent.start()
    link = InProcessLink(create_app(agent))
    pool = AgentPool(transport_for={"h1": link}.get)
    now = [T0]
    store = open_store(f"sqlite:///{tmp_path / 'corral.db'}", clock=lambda: now[0])
    source = DirectorySource(tmp_path / "m", name="dir:fleet")
    controller = Controller(
        store, [SourceSetting(source, "dir", "fleet")], pool, clock=lambda: now[0], resync_s=3600
    )
    for _ in range(6):
        result = controller.reconcile()
        now[0] += timedelta(seconds=1)
        if result.converged:
            break
    assert result.converged
    yield store, pool
    pool.close()
    store.close()
    agent.close()


def test_samples_hosts_and_vms_then_rolls_up(converged: tuple[Store, AgentPool]) -> None:
    store, pool = converged
    sampler = Sampler(store, pool)
    first = sampler.sample(T0 + timedelta(minutes=1))
    second = sampler.sample(T0 + timedelta(minutes=2))
    by_subject = {(s.subject, s.name): s for s in second}
    assert set(by_subject) == {(Subject.HOST, "h1"), (Subject.VM, "web-1")}
    host = by_subject[(Subject.HOST, "h1")]
    assert host.config_version == store.get("Host", "h1").generation
    assert host.cpu_pct is not None and 0.0 <= host.cpu_pct <= 100.0
    assert next(s for s in first if s.subject is Subject.HOST).cpu_pct is None
    web = by_subject[(Subject.VM, "web-1")]
    assert (web.running, web.host, web.config_version) == (True, "h1", 1)

    done = sampler.maintain(T0 + timedelta(hours=1, minutes=5))
    assert done == {"hour": 1, "day": 0, "pruned": 0}
    (rolled,) = sampler.warehouse.rollups(Period.HOUR, T0, T0 + timedelta(hours=1), Subject.VM)
    assert (rolled.name, rolled.samples, rolled.running) == ("web-1", 2, 2)
