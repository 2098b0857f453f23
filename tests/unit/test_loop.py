"""The reconcile loop over real node agents on libvirt's test driver.

Each host is a real `nodeagent.Agent` on its own test-driver connection, served by the
real agent app; only the network is replaced: `AgentPool(transport_for=...)` routes a
host's requests to its app in process (httpx.ASGITransport), and a host whose link is
cut raises httpx.ConnectError exactly as a refused connection does. The store is SQLite
with a clock the test moves.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import libvirt
import pytest

from controller.agentpool import AgentPool
from controller.agents import AgentClient
from controller.loop import Controller, PassResult, SourceSetting
from controller.sources import DirectorySource
from controller.store import NotFound, Store, open_store
from nodeagent.agent import Agent
from nodeagent.server import create_app

NODE_URI = f"test://{Path(__file__).resolve().parents[1] / 'data' / 'node.xml'}"
MAX_PASSES = 6

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


class InProcessLink(httpx.BaseTransport):
    """A synchronous httpx transport into an ASGI app; `cut` makes it refuse like a dead link."""

    def __init__(self, app) -> None:
        self._asgi = httpx.ASGITransport(app=app)
        self.cut = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.cut:
            raise httpx.ConnectError("connection refused", request=request)

        async def exchange() -> httpx.Response:
            response = await self._asgi.handle_async_request(request)
            body = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=body)

        return asyncio.run(exchange())


class Clock:
    """The controller's and the store's clock: moved by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 1.0) -> None:
        self.now += timedelta(seconds=seconds)


class Fleet:
    """Test-driver hosts with real agents, a manifest directory and a controller over them."""

    def __init__(self, root: Path, hosts: list[str]) -> None:
        self.manifests = root / "manifests"
        self.manifests.mkdir()
        self.clock = Clock()
        self.agents = {}
        self.links = {}
        for host in hosts:
            agent = Agent(NODE_URI)
            agent.start()
            self.agents[host] = agent
            self.links[host] = InProcessLink(create_app(agent))
        self.pool = AgentPool(transport_for=self.links.get)
        self.store: Store = open_store(f"sqlite:///{root / 'corral.db'}", clock=self.clock)
        self.controller: Controller | None = None

    def start(
        self, prune: bool = True, busy_requeue_s: float = 1.0, poll_s: float | None = None
    ) -> Controller:
        source = DirectorySource(self.manifests, name="dir:fleet")
        setting = SourceSetting(source, "dir", "fleet", prune=prune, poll_s=poll_s)
        self.controller = Controller(
            self.store,
            [setting],
            self.pool,
            clock=self.clock,
            resync_s=3600,
            busy_requeue_s=busy_requeue_s,
        )
        return self.controller

    def write(self, name: str, text: str) -> None:
        (self.manifests / name).write_text(text)

    def client(self, host: str) -> AgentClient:
        return self.pool.client(host, f"http://{host}.test:8470")

    def domains(self, host: str) -> dict[str, str]:
        """Return name -> state of the domains the host's agent reports."""
        return {d.name: d.state for d in self.client(host).get_state().domains}

    def converge(self) -> list[PassResult]:
        """Run passes until one converges; fail after MAX_PASSES."""
        assert self.controller is not None
        passes = []
        for _ in range(MAX_PASSES):
            result = self.controller.reconcile()
            passes.append(result)
            assert not result.failed, [f"{o.action.ref}: {o.error}" for o in result.failed]
            self.clock.advance()
            if result.converged:
                return passes
        pytest.fail(f"not converged in {MAX_PASSES} passes: {passes[-1].not_ready}")

    def ready(self, kind: str, name: str) -> tuple[str, str]:
        """Return (Ready status, reason) of an object."""
        status = self.store.get(kind, name).obj.status
        condition = status.condition("Ready") if status else None
        return (condition.status.value, condition.reason) if condition else ("", "")

    def close(self) -> None:
        self.pool.close()
        self.store.close()
        for agent in self.agents.values():
            agent.close()


@pytest.fixture
def make_fleet(tmp_path: Path) -> Iterator[Callable[[list[str]], Fleet]]:
    made: list[Fleet] = []

    def make(hosts: list[str]) -> Fleet:
        fleet = Fleet(tmp_path, hosts)
        made.append(fleet)
        return fleet

    yield make
    for fleet in made:
        fleet.close()


def host(name: str) -> str:
    return f"""\
---
apiVersion: corral.dev/v1alpha1
kind: Host
metadata:
  name: {name}
spec:
  address: http://{name}.test:8470
  virtualization: qemu
"""


NETWORK = """\
---
apiVersion: corral.dev/v1alpha1
kind: Network
metadata:
  name: lan
spec:
  mode: isolated
  ipv4:
    cidr: 10.98.0.0/24
"""

POOL = """\
---
apiVersion: corral.dev/v1alpha1
kind: StoragePool
metadata:
  name: vmstore
spec:
  type: dir
  path: /var/lib/corral/vmstore
---
apiVersion: corral.dev/v1alpha1
kind: Volume
metadata:
  name: web-1-root
spec:
  pool: vmstore
  size: 1Gi
  format: qcow2
"""


def vm(name: str, on: str | None = None, memory: str = "96Mi", run: str = "Always") -> str:
    placement = f"  placement:\n    host: {on}\n" if on else ""
    return f"""\
---
apiVersion: corral.dev/v1alpha1
kind: VirtualMachine
metadata:
  name: {name}
spec:
  runStrategy: {run}
  cpus: 1
  memory: {memory}
  boot:
    kernel: /boot/vmlinuz
{placement}  nics:
    - name: eth0
      network: lan
"""


def web_vm() -> str:
    return vm("web-1", on="h1").replace(
        "  nics:", "  disks:\n    - name: root\n      volume: web-1-root\n  nics:"
    )


def test_full_pass_converges_and_the_next_plans_nothing(make_fleet):
    fleet = make_fleet(["h1", "h2"])
    fleet.write("hosts.yaml", host("h1") + host("h2"))
    fleet.write("infra.yaml", NETWORK + POOL)
    fleet.write("vms.yaml", web_vm() + vm("db-1", on="h2") + vm("spare", on="h2", run="Halted"))
    controller = fleet.start()

    passes = fleet.converge()
    first = passes[0]
    acted = {(a.type.value, a.target[1], a.host) for a in first.plan.actions}
    assert {
        ("DefineNetwork", "lan", "h1"),
        ("DefineNetwork", "lan", "h2"),
        ("DefinePool", "vmstore", "h1"),
        ("CreateVolume", "web-1-root", "h1"),
        ("DefineVM", "web-1", "h1"),
        ("StartVM", "web-1", "h1"),
        ("DefineVM", "db-1", "h2"),
        ("StartVM", "db-1", "h2"),
        ("DefineVM", "spare", "h2"),
    } <= acted
    assert ("StartVM", "spare", "h2") not in acted
    assert fleet.domains("h1") == {"web-1": "running"}
    assert fleet.domains("h2") == {"db-1": "running", "spare": "shutoff"}

    again = controller.reconcile()
    assert again.plan.empty and again.converged and not again.outcomes
    for stored in fleet.store.list().items:
        assert fleet.ready(stored.kind, stored.name)[0] == "True", stored.kind + stored.name
    vm_status = fleet.store.get("VirtualMachine", "web-1").obj.status
    assert (vm_status.phase.value, vm_status.host) == ("Running", "h1")
    source = fleet.store.get_source("fleet")
    assert source.last_applied_revision == DirectorySource(fleet.manifests).revision()
    assert source.status["conditions"][0]["reason"] == "ApplySucceeded"
    [plan] = fleet.store.list_plans()  # only passes with actions are recorded
    assert len(plan.actions) == len(first.plan.actions) and not plan.failed


def test_unreachable_agent_holds_back_only_its_host(make_fleet):
    fleet = make_fleet(["h1", "h2"])
    fleet.write("hosts.yaml", host("h1") + host("h2") + NETWORK)
    fleet.write("vms.yaml", vm("a-1", on="h1") + vm("b-1", on="h2"))
    fleet.start()
    fleet.converge()

    fleet.links["h2"].cut = True
    fleet.write("more.yaml", vm("a-2", on="h1") + vm("b-2", on="h2"))
    results = [fleet.controller.reconcile() for _ in range(3)]
    acted = {(a.type.value, a.target[1], a.host) for r in results for a in r.plan.actions}
    assert acted == {("DefineVM", "a-2", "h1"), ("StartVM", "a-2", "h1")}
    assert not any(r.failed for r in results)
    assert fleet.domains("h1") == {"a-1": "running", "a-2": "running"}
    assert fleet.ready("VirtualMachine", "a-2") == ("True", "Converged")
    assert fleet.ready("Host", "h1") == ("True", "HostUp")
    # This controller has no etcd: a host that does not answer is failed at once, and
    # nothing of it restarts elsewhere (no arbiter can prove its VMs stopped).
    assert fleet.ready("Host", "h2") == ("False", "HostFailed")
    assert fleet.ready("VirtualMachine", "b-1") == ("False", "NotHighlyAvailable")
    b1 = fleet.store.get("VirtualMachine", "b-1").obj.status
    assert b1.condition("Stalled") is None
    assert (b1.phase.value, b1.host) == ("Unknown", "h2")
    assert "h2" in b1.condition("Ready").message
    assert "no etcd is configured" in b1.condition("Ready").message
    assert results[-1].not_ready == ["Host/h2", "VirtualMachine/b-1", "VirtualMachine/b-2"]

    fleet.links["h2"].cut = False
    fleet.converge()
    assert fleet.domains("h2") == {"b-1": "running", "b-2": "running"}
    assert fleet.ready("Host", "h2") == ("True", "HostUp")


def test_broken_revision_keeps_the_last_good_one(make_fleet):
    fleet = make_fleet(["h1"])
    fleet.write("fleet.yaml", host("h1") + NETWORK + vm("web-1"))
    fleet.start()
    fleet.converge()
    good = fleet.store.get_source("fleet").last_applied_revision

    broken = host("h1") + NETWORK + vm("web-1", memory="2 GB")
    line = broken.splitlines().index("  memory: 2 GB") + 1
    fleet.write("fleet.yaml", broken)
    fleet.write("extra.yaml", vm("web-2"))
    for _ in range(2):
        result = fleet.controller.reconcile()
        assert result.plan.empty and not result.outcomes
        fleet.clock.advance()
    source = fleet.store.get_source("fleet")
    assert source.last_applied_revision == good
    assert source.last_attempted_revision != good
    conditions = {c["type"]: c for c in source.status["conditions"]}
    assert (conditions["Stalled"]["status"], conditions["Stalled"]["reason"]) == (
        "True",
        "ValidationFailed",
    )
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["message"].startswith(
        f"Revision {source.last_attempted_revision[:19]} is invalid (1 error); "
        f"revision {good[:19]} stays applied. First: fleet.yaml:"
    )
    assert source.status["appliedRevision"] == good
    [error] = source.status["errors"]
    assert error.startswith(f"fleet.yaml:{line}:11: VirtualMachine/web-1: spec.memory: ")
    assert error.endswith('got "2 GB"')
    with pytest.raises(NotFound):
        fleet.store.get("VirtualMachine", "web-2")
    assert fleet.store.get("VirtualMachine", "web-1").obj.spec.memory == 96 * 2**20
    assert fleet.domains("h1") == {"web-1": "running"}
    warnings = fleet.store.list_events(kind="Source", type_="Warning")
    assert [(e.reason, e.count) for e in warnings] == [("ValidationFailed", 1)]

    fleet.write("fleet.yaml", host("h1") + NETWORK + vm("web-1"))
    fleet.converge()
    source = fleet.store.get_source("fleet")
    assert "Stalled" not in {c["type"] for c in source.status["conditions"]}
    assert source.status["errors"] == []
    assert fleet.domains("h1") == {"web-1": "running", "web-2": "running"}


@pytest.mark.parametrize("prune", [True, False], ids=["prune", "no-prune"])
def test_removed_manifest_is_deleted_only_with_prune(make_fleet, prune: bool):
    fleet = make_fleet(["h1"])
    fleet.write("base.yaml", host("h1") + NETWORK + vm("keep"))
    fleet.write("gone.yaml", vm("gone"))
    fleet.start(prune=prune)
    fleet.converge()

    (fleet.manifests / "gone.yaml").unlink()
    fleet.converge()
    if prune:
        assert fleet.domains("h1") == {"keep": "running"}
        with pytest.raises(NotFound):
            fleet.store.get("VirtualMachine", "gone", include_deleted=True)
        reasons = {e.reason for e in fleet.store.list_events(kind="VirtualMachine", name="gone")}
        assert "Deleted" in reasons
    else:
        assert fleet.domains("h1") == {"keep": "running", "gone": "running"}
        assert fleet.ready("VirtualMachine", "gone") == ("True", "Converged")


def test_source_gone_changes_nothing(make_fleet, tmp_path: Path):
    fleet = make_fleet(["h1"])
    fleet.write("fleet.yaml", host("h1") + NETWORK + vm("web-1"))
    fleet.start()
    fleet.converge()

    fleet.manifests.rename(tmp_path / "elsewhere")
    result = fleet.controller.reconcile()
    assert result.plan.empty and result.converged
    source = fleet.store.get_source("fleet")
    [ready] = source.status["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == (
        "Ready",
        "False",
        "SourceUnreachable",
    )
    assert "is not a directory" in ready["message"]
    assert fleet.domains("h1") == {"web-1": "running"}


@pytest.mark.parametrize("wake", ["trigger", "poll"])
def test_run_wakes_on_a_change(make_fleet, wake: str):
    fleet = make_fleet(["h1"])
    fleet.write("fleet.yaml", host("h1") + NETWORK + vm("web-1"))
    controller = fleet.start(busy_requeue_s=0.1, poll_s=0.05 if wake == "poll" else None)
    passes: list[PassResult] = []
    seen = threading.Condition()

    def on_pass(result: PassResult) -> None:
        with seen:
            passes.append(result)
            seen.notify_all()

    stop = threading.Event()
    runner = threading.Thread(target=controller.run, args=(stop, on_pass), daemon=True)
    runner.start()
    try:
        with seen:
            assert seen.wait_for(lambda: passes and passes[-1].converged, timeout=30)
            count = len(passes)
        fleet.write("more.yaml", vm("web-2"))
        if wake == "trigger":
            controller.trigger()
        with seen:
            # The resync interval is an hour and the store did not change: only the
            # trigger or the source poller can start this pass.
            assert seen.wait_for(lambda: len(passes) > count and passes[-1].converged, 30)
        assert fleet.domains("h1") == {"web-1": "running", "web-2": "running"}
    finally:
        stop.set()
        runner.join(timeout=10)
    assert not runner.is_alive()


def test_unchanged_statuses_are_kept_and_a_foreign_write_is_repaired(make_fleet):
    fleet = make_fleet(["h1"])
    fleet.write("fleet.yaml", host("h1") + NETWORK + vm("web-1", on="h1"))
    controller = fleet.start()
    fleet.converge()
    controller.reconcile()
    settled = fleet.store.get_status("VirtualMachine", "web-1")

    fleet.clock.advance(600)
    again = controller.reconcile()
    assert again.converged
    assert fleet.store.get_status("VirtualMachine", "web-1") == settled

    stale = settled.status.copy()
    stale["conditions"] = [
        {**c, "status": "False", "reason": "Stale", "message": "written by another writer"}
        for c in stale["conditions"]
    ]
    fleet.store.put_statuses({("VirtualMachine", "web-1"): stale})
    assert fleet.ready("VirtualMachine", "web-1") == ("False", "Stale")
    repaired = controller.reconcile()
    assert repaired.converged
    assert fleet.ready("VirtualMachine", "web-1") == ("True", "Converged")
    ready = fleet.store.get("VirtualMachine", "web-1").obj.status.condition("Ready")
    assert ready.last_transition_time == fleet.clock.now.replace(microsecond=0)
