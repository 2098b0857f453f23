"""A one-host fleet on the real libvirtd, driven by manifests through the controller loop.

`lab_fleet` serves a real agent on loopback, opens a store and a Controller over a
manifests directory, and makes a dir pool; on exit it removes what it made on libvirt.
The YAML builders write the manifests the lab tests share: a host, a pool, a 16Mi
qcow2 volume, and a tiny guest booting from it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest

from controller.agentpool import AgentPool
from controller.lab.guest import GuestImage
from controller.loop import Controller, PassResult, SourceSetting
from controller.sources import DirectorySource
from controller.store import Store, open_store
from tests.e2e.e2ekit import LibvirtObjects
from tests.helpers.agent_server import serving_agent

CONVERGE_TIMEOUT_S = 180.0


@dataclass
class LabFleet:
    """The manifests directory, the controller over it, and what it made on libvirt."""

    dir: Path
    store: Store
    controller: Controller
    agents: AgentPool
    conn: libvirt.virConnect
    made: LibvirtObjects
    address: str
    """The agent's base URL, for the Host manifest."""
    host: str
    vm: str
    pool_name: str
    pool_path: Path

    def write(self, name: str, text: str) -> None:
        (self.dir / name).write_text(text)

    def remove(self, name: str) -> None:
        (self.dir / name).unlink()

    def converge(self, timeout_s: float = CONVERGE_TIMEOUT_S) -> list[PassResult]:
        """Return the passes run until one converged; fail the test with what was left."""
        passes: list[PassResult] = []
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.controller.reconcile()
            passes.append(result)
            if result.converged:
                return passes
            if time.monotonic() > deadline:
                failed = [f"{o.action.ref}: {o.error}" for o in result.failed]
                pytest.fail(f"not converged: {result.not_ready}; failed {failed}")
            time.sleep(min(result.requeue_after_s, 1.0))

    def volumes(self) -> set[str]:
        """Return the names of the volumes in the fleet's pool, as libvirt lists them now."""
        pool = self.conn.storagePoolLookupByName(self.pool_name)
        pool.refresh(0)
        return set(pool.listVolumes())

    def volume_path(self, name: str) -> str:
        """Return the file path of volume `name` in the fleet's pool."""
        pool = self.conn.storagePoolLookupByName(self.pool_name)
        pool.refresh(0)
        return pool.storageVolLookupByName(name).path()


@contextmanager
def lab_fleet(
    system_libvirt: str,
    tmp_path: Path,
    prefix: str,
    vm_suffix: str = "vm",
    hooks_dir: Path | None = None,
) -> Iterator[LabFleet]:
    """Yield a LabFleet whose libvirt names start with `corral-t-<prefix>-<random>`.

    The manifests directory is empty: the test writes its own. On exit the agent
    stops and every domain, pool and volume the fleet named is removed.
    """
    conn = libvirt.open(system_libvirt)
    made = LibvirtObjects(conn, f"corral-t-{prefix}-{uuid.uuid4().hex[:4]}")
    host, vm, pool_name = made.name("host"), made.domain(made.name(vm_suffix)), made.name("pool")
    pool_path = tmp_path / "pool"
    made.pool(pool_name, pool_path)
    manifests = tmp_path / "fleet"
    manifests.mkdir()
    store = open_store(None, state_dir=tmp_path / "state")
    agents = AgentPool(timeout_s=300.0)
    try:
        with serving_agent(system_libvirt, hooks_dir=hooks_dir) as agent:
            source = SourceSetting(DirectorySource(manifests), "dir", "fleet", prune=True)
            controller = Controller(store, [source], agents, resync_s=30.0)
            yield LabFleet(
                manifests, store, controller, agents, conn, made,
                agent.base_url, host, vm, pool_name, pool_path,
            )  # fmt: skip
    finally:
        agents.close()
        store.close()
        made.cleanup()
        conn.close()


def storage_yaml(fleet: LabFleet, volume: str) -> str:
    """Return the Host, the dir StoragePool and a 16Mi qcow2 Volume `volume` in it."""
    return f"""\
apiVersion: corral.dev/v1alpha1
kind: Host
metadata: {{name: {fleet.host}}}
spec: {{address: "{fleet.address}", virtualization: qemu}}
---
apiVersion: corral.dev/v1alpha1
kind: StoragePool
metadata: {{name: {fleet.pool_name}}}
spec: {{type: dir, path: {fleet.pool_path}}}
---
apiVersion: corral.dev/v1alpha1
kind: Volume
metadata: {{name: {volume}}}
spec: {{pool: {fleet.pool_name}, size: 16Mi, format: qcow2}}
"""


def tiny_vm_fleet_yaml(fleet: LabFleet, guest: GuestImage, *spec_lines: str) -> str:
    """Return storage_yaml with the VM's root volume, and the VM: 1 CPU, 96Mi, the tiny
    guest's kernel booting from that volume; `spec_lines` add spec fields ("nics: []")."""
    extra = "".join(f"  {line}\n" for line in spec_lines)
    return (
        storage_yaml(fleet, f"{fleet.vm}-root")
        + f"""\
---
apiVersion: corral.dev/v1alpha1
kind: VirtualMachine
metadata: {{name: {fleet.vm}}}
spec:
  cpus: 1
  memory: 96Mi
  boot: {{kernel: {guest.kernel}, initrd: {guest.initrd}, cmdline: "{guest.cmdline}"}}
  disks:
    - {{name: root, volume: {fleet.vm}-root}}
{extra}"""
    )
