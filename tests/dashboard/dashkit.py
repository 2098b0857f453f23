"""A simulated fleet under the real Controller, and the real API + dashboard on 127.0.0.1.

The hosts are controller.sim hosts behind the agent's HTTP contract (they support live
migration, which libvirt's test driver does not); the store is SQLite; the API app is
served by uvicorn on a loopback port exactly as `corral up --api` serves it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from controller.agentpool import AgentPool
from controller.api import TokenStore, create_app
from controller.api.serve import ServerThread, build_server
from controller.loop import Controller, PassResult, SourceSetting
from controller.sim import INSTANT, SimFleet, write_fleet
from controller.sources import DirectorySource
from controller.store import Store, open_store

MAX_PASSES = 12


class Clock:
    """The controller's and the store's wall clock, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 1.0) -> None:
        self.now += timedelta(seconds=seconds)


class DashboardFleet:
    """`vms` VMs on simulated hosts, a controller over them, the API served on loopback."""

    def __init__(self, root: Path, vms: int = 6, vms_per_host: int = 2) -> None:
        manifests = root / "manifests"
        self.hosts = write_fleet(manifests, vms, vms_per_host=vms_per_host)
        self.sim = SimFleet(self.hosts, latency=INSTANT)
        self.clock = Clock()
        url = f"sqlite:///{root / 'corral.db'}"
        self.store: Store = open_store(url, clock=self.clock)
        self.tokens = TokenStore.open(url)
        source = DirectorySource(manifests, name="dir:fleet")
        self.controller = Controller(
            self.store,
            [SourceSetting(source, "dir", "fleet", prune=True)],
            AgentPool(transport_for=self.sim.transport_for),
            clock=self.clock,
            resync_s=3600,
        )
        app = create_app(self.store, self.tokens, controller=self.controller)
        self.server = ServerThread(build_server(app, "127.0.0.1:0", None, insecure_dev=True))
        self.server.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def converge(self) -> PassResult:
        """Run passes until one converges (AssertionError after MAX_PASSES)."""
        last = None
        for _ in range(MAX_PASSES):
            last = self.controller.reconcile()
            self.clock.advance()
            if last.converged:
                return last
        raise AssertionError(f"not converged: {last and last.not_ready[:5]}")

    def vms_on(self, host: str) -> list[str]:
        """Return the VMs whose status places them on `host`."""
        return sorted(
            o.name
            for o in self.store.list(kind="VirtualMachine").items
            if o.obj.status is not None and o.obj.status.host == host
        )

    def close(self) -> None:
        self.server.stop()
        self.tokens.close()
        self.store.close()
