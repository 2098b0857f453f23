"""OVF round trip on the real libvirtd: export a running tiny guest, import it under a new
name, apply the manifests the import wrote, and the copy boots (heartbeats).

The written package is checked structurally (tests/helpers/ovfcheck.py) and, when the
Common OVF Tool (`cot`, PyPI) is on PATH, by `cot info` too. Bad input on the way: an
import over an existing volume refuses and keeps it; a package whose disk does not match
its SHA256 sum creates no volume.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest

from controller.agentpool import AgentPool
from controller.cli.ovf import OvfCommandError, choose_target, export_vm, import_ovf
from controller.lab.guest import GuestImage
from controller.loop import Controller, SourceSetting
from controller.ovf.transfer import image_info
from controller.sources import DirectorySource
from controller.store import Store, open_store
from tests.e2e.e2ekit import LibvirtObjects, wait_heartbeats
from tests.helpers.agent_server import serving_agent
from tests.helpers.ovfcheck import check_package

pytestmark = pytest.mark.libvirtd

CONVERGE_TIMEOUT_S = 180.0


@dataclass
class OvfFleet:
    dir: Path
    store: Store
    controller: Controller
    agents: AgentPool
    conn: libvirt.virConnect
    made: LibvirtObjects
    host: str
    vm: str
    pool_name: str

    def converge(self) -> None:
        deadline = time.monotonic() + CONVERGE_TIMEOUT_S
        while True:
            result = self.controller.reconcile()
            if result.converged:
                return
            if time.monotonic() > deadline:
                failed = [f"{o.action.ref}: {o.error}" for o in result.failed]
                pytest.fail(f"not converged: {result.not_ready}; failed {failed}")
            time.sleep(min(result.requeue_after_s, 1.0))


def fleet_yaml(host: str, address: str, pool: str, path: Path, vm: str, guest: GuestImage) -> str:
    return f"""\
apiVersion: corral.dev/v1alpha1
kind: Host
metadata: {{name: {host}}}
spec: {{address: "{address}", virtualization: qemu}}
---
apiVersion: corral.dev/v1alpha1
kind: StoragePool
metadata: {{name: {pool}}}
spec: {{type: dir, path: {path}}}
---
apiVersion: corral.dev/v1alpha1
kind: Volume
metadata: {{name: {vm}-root}}
spec: {{pool: {pool}, size: 16Mi, format: qcow2}}
---
apiVersion: corral.dev/v1alpha1
kind: VirtualMachine
metadata: {{name: {vm}}}
spec:
  cpus: 1
  memory: 96Mi
  description: exported by corral
  boot: {{kernel: {guest.kernel}, initrd: {guest.initrd}, cmdline: "{guest.cmdline}"}}
  disks:
    - {{name: root, volume: {vm}-root}}
"""


@pytest.fixture
def fleet(system_libvirt: str, tiny_guest: GuestImage, tmp_path: Path) -> Iterator[OvfFleet]:
    conn = libvirt.open(system_libvirt)
    made = LibvirtObjects(conn, f"corral-t-ovf-{uuid.uuid4().hex[:4]}")
    host, vm, pool_name = made.name("host"), made.domain(made.name("vm")), made.name("pool")
    made.pool(pool_name, tmp_path / "pool")
    manifests = tmp_path / "fleet"
    manifests.mkdir()
    store = open_store(None, state_dir=tmp_path / "state")
    agents = AgentPool(timeout_s=300.0)
    try:
        with serving_agent(system_libvirt) as agent:
            source = SourceSetting(DirectorySource(manifests), "dir", "fleet", prune=True)
            controller = Controller(store, [source], agents, resync_s=30.0)
            (manifests / "fleet.yaml").write_text(
                fleet_yaml(host, agent.base_url, pool_name, tmp_path / "pool", vm, tiny_guest)
            )
            yield OvfFleet(manifests, store, controller, agents, conn, made, host, vm, pool_name)
    finally:
        agents.close()
        store.close()
        made.cleanup()
        conn.close()


def volumes(fleet: OvfFleet) -> set[str]:
    pool = fleet.conn.storagePoolLookupByName(fleet.pool_name)
    pool.refresh(0)
    return set(pool.listVolumes())


def test_export_import_and_the_copy_boots(fleet: OvfFleet, tmp_path: Path) -> None:
    fleet.converge()
    wait_heartbeats(fleet.vm, 2)

    package = tmp_path / "ovf"
    descriptor = export_vm(fleet.store, fleet.agents, fleet.vm, package, "qcow2")
    assert descriptor == package / f"{fleet.vm}.ovf"
    assert sorted(p.name for p in package.iterdir()) == [
        f"{fleet.vm}.mf",
        f"{fleet.vm}.ovf",
        "root.qcow2",
    ]
    info = image_info(package / "root.qcow2")
    assert (info["format"], info["virtual-size"]) == ("qcow2", 16 * 2**20)
    assert "backing-filename" not in info
    system = check_package(descriptor)
    assert (system.cpus, system.memory_bytes, system.description) == (
        1,
        96 * 2**20,
        "exported by corral",
    )
    if cot := shutil.which("cot"):
        proc = subprocess.run([cot, "info", str(descriptor)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert "root.qcow2" in proc.stdout and "96 MiB" in proc.stdout

    copy = fleet.made.domain(fleet.made.name("copy"))
    pool_name, host = choose_target(fleet.store, None, None)
    assert (pool_name, host) == (fleet.pool_name, fleet.host)
    target = import_ovf(fleet.store, fleet.agents, package, pool_name, host, fleet.dir, copy)
    assert target == fleet.dir / f"{copy}.yaml"
    assert f"{copy}-root" in volumes(fleet)
    fleet.converge()
    wait_heartbeats(copy, 2)
    wait_heartbeats(fleet.vm, 2)
    assert fleet.store.get("VirtualMachine", copy).obj.status.host == fleet.host

    # The same import again: the volume is there, so nothing is overwritten or written.
    elsewhere = tmp_path / "again"
    with pytest.raises(OvfCommandError, match=f"Volume {copy}-root already exists"):
        import_ovf(fleet.store, fleet.agents, package, pool_name, host, elsewhere, copy)
    assert not elsewhere.exists()

    # A disk that no longer matches its sum: refused before any volume is made.
    with (package / "root.qcow2").open("r+b") as image:
        image.seek(4096)
        image.write(b"tampered")
    before = volumes(fleet)
    with pytest.raises(OvfCommandError, match="does not match its SHA256 sum"):
        import_ovf(fleet.store, fleet.agents, package, pool_name, host, elsewhere, "third")
    assert volumes(fleet) == before
    with contextlib.suppress(FileNotFoundError):
        assert not list(elsewhere.iterdir())
