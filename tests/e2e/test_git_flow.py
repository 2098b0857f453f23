"""GitOps end to end on this machine's real libvirtd, on SQLite and on PostgreSQL.

A git repository made in a temp dir, four commits, one Controller with a GitSource and a
real `corral agent` process; every claim is checked on libvirt itself and on the guests'
serial consoles, not on what the store says:

1. a host, a dir pool, an isolated network and one tiny VM: the guest boots and beats;
2. the VM's memory 96Mi -> 128Mi (restart allowed) and a second VM: both happen;
3. a broken manifest: nothing changes on the host, the source is Stalled with
   file:line:column, the last good revision stays applied;
4. the second VM's manifest deleted (prune on): its domain is undefined, the object purged.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import git
import pytest

from controller.agentpool import AgentPool
from controller.lab.guest import GuestImage
from controller.loop import Controller, PassResult, SourceSetting
from controller.sources import GitSource
from controller.store import NotFound, Store, open_store
from schemas.meta import ConditionStatus
from tests.e2e.e2ekit import AgentProcess, LibvirtObjects, free_subnet, wait_heartbeats

pytestmark = pytest.mark.libvirtd

CONVERGE_TIMEOUT_S = 180.0
AUTHOR = git.Actor("Corral E2E", "e2e@corral.invalid")


def host_yaml(name: str, address: str) -> str:
    return f"""\
apiVersion: corral.dev/v1alpha1
kind: Host
metadata:
  name: {name}
spec:
  address: {address}
  virtualization: qemu
"""


def network_yaml(name: str, cidr: str) -> str:
    return f"""\
apiVersion: corral.dev/v1alpha1
kind: Network
metadata:
  name: {name}
spec:
  mode: isolated
  ipv4:
    cidr: {cidr}
"""


def pool_yaml(name: str, path: Path) -> str:
    return f"""\
apiVersion: corral.dev/v1alpha1
kind: StoragePool
metadata:
  name: {name}
spec:
  type: dir
  path: {path}
---
apiVersion: corral.dev/v1alpha1
kind: Volume
metadata:
  name: {name}-data
spec:
  pool: {name}
  size: 16Mi
  format: qcow2
"""


MEMORY_LINE = 7
"""The line of `memory:` in vm_yaml's output (1-based); its value starts at column 11."""


def vm_yaml(
    name: str, image: GuestImage, network: str, memory: str, *, restart: bool, disk: str | None
) -> str:
    policy = "  updatePolicy:\n    restart: Allowed\n" if restart else ""
    disks = f"  disks:\n    - name: data\n      volume: {disk}\n" if disk else ""
    return f"""\
apiVersion: corral.dev/v1alpha1
kind: VirtualMachine
metadata:
  name: {name}
spec:
  cpus: 1
  memory: {memory}
{policy}  boot:
    kernel: {image.kernel}
    initrd: {image.initrd}
    cmdline: {image.cmdline}
{disks}  nics:
    - name: eth0
      network: {network}
"""


class FleetRepo:
    """A git repository with the fleet under `fleet/`; each `commit` returns its SHA."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.repo = git.Repo.init(path, initial_branch="main")
        (path / "fleet").mkdir()

    def commit(
        self, message: str, write: dict[str, str] | None = None, delete: tuple[str, ...] = ()
    ) -> str:
        for name, text in (write or {}).items():
            (self.path / "fleet" / name).write_text(text)
            self.repo.index.add([f"fleet/{name}"])
        if delete:
            self.repo.index.remove([f"fleet/{name}" for name in delete], working_tree=True)
        return self.repo.index.commit(message, author=AUTHOR, committer=AUTHOR).hexsha


def converge(controller: Controller, timeout_s: float = CONVERGE_TIMEOUT_S) -> list[PassResult]:
    """Run passes until one plans nothing and every object is Ready; return all passes.

    Fails the test with what is not ready (and the last failures) when time runs out.
    """
    passes: list[PassResult] = []
    deadline = time.monotonic() + timeout_s
    while True:
        result = controller.reconcile()
        passes.append(result)
        if result.converged:
            return passes
        if time.monotonic() > deadline:
            failures = [f"{o.action.ref}: {o.error}" for o in result.failed]
            pytest.fail(
                f"not converged after {timeout_s:.0f}s: not ready {result.not_ready}; "
                f"planned {[a.type.value for a in result.plan.actions]}; failed {failures}"
            )
        time.sleep(min(result.requeue_after_s, 1.0))


def domain_memory_kib(conn, name: str) -> tuple[int, int]:
    """Return (maximum, current) memory of domain `name` in KiB, as libvirt defines it."""
    root = ET.fromstring(conn.lookupByName(name).XMLDesc())
    return int(root.findtext("memory")), int(root.findtext("currentMemory"))


def is_active(conn, name: str) -> bool:
    return bool(conn.lookupByName(name).isActive())


def ready(store: Store, kind: str, name: str) -> ConditionStatus | None:
    status = store.get(kind, name).obj.status
    condition = status.condition("Ready") if status is not None else None
    return condition.status if condition is not None else None


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    try:
        yield opened
    finally:
        opened.close()


def test_git_flow(
    tmp_path: Path,
    store: Store,
    real_agent: AgentProcess,
    libvirt_objects: LibvirtObjects,
    tiny_guest: GuestImage,
) -> None:
    made = libvirt_objects
    conn = made.conn
    host = made.name("host")
    network = made.network(made.name("net"))
    pool_path = tmp_path / "pool"
    pool = made.pool(made.name("pool"), pool_path)
    vm1 = made.domain(made.name("vm1"))
    vm2 = made.domain(made.name("vm2"))

    fleet = FleetRepo(tmp_path / "repo")
    source = GitSource(str(fleet.path), tmp_path / "cache", branch="main", path="fleet")
    setting = SourceSetting(source, "git", "origin", prune=True, settings={"url": str(fleet.path)})
    pool_client = AgentPool(connect_timeout_s=2.0, timeout_s=180.0)
    controller = Controller(store, [setting], pool_client, resync_s=30.0)
    try:
        # 1. One tiny VM, its network and its pool: it boots and beats.
        first = fleet.commit(
            "one tiny VM",
            {
                "host.yaml": host_yaml(host, real_agent.address),
                "network.yaml": network_yaml(network, free_subnet(conn)),
                "pool.yaml": pool_yaml(pool, pool_path),
                "vm1.yaml": vm_yaml(
                    vm1, tiny_guest, network, "96Mi", restart=False, disk=f"{pool}-data"
                ),
            },
        )
        passes = converge(controller)
        assert passes[0].plan.actions, "the first pass acts"
        assert store.get_source("origin").last_applied_revision == first
        assert is_active(conn, vm1)
        assert conn.networkLookupByName(network).isActive()
        assert conn.storagePoolLookupByName(pool).isActive()
        assert domain_memory_kib(conn, vm1) == (96 * 1024, 96 * 1024)
        wait_heartbeats(vm1, 2)
        assert ready(store, "VirtualMachine", vm1) is ConditionStatus.TRUE
        assert controller.reconcile().plan.empty, "a converged fleet plans nothing"

        # 2. More memory for vm1 (restart allowed) and a second VM: both happen.
        changed_at = time.monotonic()
        second = fleet.commit(
            "vm1 gets 128Mi; add vm2",
            {
                "vm1.yaml": vm_yaml(
                    vm1, tiny_guest, network, "128Mi", restart=True, disk=f"{pool}-data"
                ),
                "vm2.yaml": vm_yaml(vm2, tiny_guest, network, "96Mi", restart=False, disk=None),
            },
        )
        converge(controller)
        assert store.get_source("origin").last_applied_revision == second
        assert domain_memory_kib(conn, vm1) == (128 * 1024, 128 * 1024)
        assert is_active(conn, vm1) and is_active(conn, vm2)
        wait_heartbeats(vm1, 2, booted_after=changed_at)
        wait_heartbeats(vm2, 2)
        vm1_uuid = conn.lookupByName(vm1).UUIDString()

        # 3. A broken manifest: nothing changes, the source says why and where.
        third = fleet.commit(
            "broken: a bad quantity",
            {"vm2.yaml": vm_yaml(vm2, tiny_guest, network, "12 GB", restart=False, disk=None)},
        )
        result = controller.reconcile()
        assert result.plan.empty and not result.outcomes
        record = store.get_source("origin")
        assert record.last_applied_revision == second
        assert record.last_attempted_revision == third
        conditions = {c["type"]: c for c in record.status["conditions"]}
        assert conditions["Stalled"]["status"] == "True"
        assert conditions["Ready"]["status"] == "False"
        assert conditions["Ready"]["reason"] == "ValidationFailed"
        assert record.status["appliedRevision"] == second
        [error] = record.status["errors"]
        assert error.startswith(f"fleet/vm2.yaml:{MEMORY_LINE}:11: ")
        assert "spec.memory" in error and "12 GB" in error
        assert second[:12] in conditions["Ready"]["message"]
        assert domain_memory_kib(conn, vm2) == (96 * 1024, 96 * 1024)
        assert is_active(conn, vm1) and is_active(conn, vm2)
        assert conn.lookupByName(vm1).UUIDString() == vm1_uuid
        assert store.get("VirtualMachine", vm2).obj.spec.memory == 96 * 2**20

        # 4. vm2's manifest deleted with prune on: gone from the host and from the store.
        fourth = fleet.commit("remove vm2", delete=("vm2.yaml",))
        converge(controller)
        record = store.get_source("origin")
        assert record.last_applied_revision == fourth
        assert "Stalled" not in {c["type"] for c in record.status["conditions"]}
        assert vm2 not in {d.name() for d in conn.listAllDomains()}
        with pytest.raises(NotFound):
            store.get("VirtualMachine", vm2)
        assert ("VirtualMachine", vm2) not in {(s.kind, s.name) for s in store.list_deleted()}
        assert is_active(conn, vm1)
        assert conn.lookupByName(vm1).UUIDString() == vm1_uuid
        wait_heartbeats(vm1, 2)
        reasons = {(e.name, e.reason) for e in store.list_events(limit=1000)}
        assert (vm2, "Deleted") in reasons
    finally:
        pool_client.close()
