"""`corral template create --from-vm` on the real libvirtd: a stopped VM's disk becomes a
flat base volume and a Template; a VM from that template boots from a thin clone of it.
A running VM, an unknown VM and an existing template name are refused."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest
from ruamel.yaml import YAML

from controller.agentpool import AgentPool
from controller.cli.template import TemplateCommandError, create_from_vm
from controller.cli.volume import download, resolve, upload
from controller.lab.guest import GuestImage
from controller.loop import Controller, SourceSetting
from controller.sources import DirectorySource
from controller.store import Store, open_store
from tests.e2e.e2ekit import LibvirtObjects, wait_heartbeats
from tests.helpers.agent_server import serving_agent

pytestmark = pytest.mark.libvirtd

MIB = 2**20
PATTERN = b"\xcd" * MIB


@dataclass
class TemplateFleet:
    dir: Path
    store: Store
    controller: Controller
    agents: AgentPool
    conn: libvirt.virConnect
    made: LibvirtObjects
    vm: str
    pool_name: str

    def converge(self) -> None:
        deadline = time.monotonic() + 180
        while True:
            result = self.controller.reconcile()
            if result.converged:
                return
            if time.monotonic() > deadline:
                failed = [f"{o.action.ref}: {o.error}" for o in result.failed]
                pytest.fail(f"not converged: {result.not_ready}; failed {failed}")
            time.sleep(min(result.requeue_after_s, 1.0))

    def volume_path(self, name: str) -> str:
        pool = self.conn.storagePoolLookupByName(self.pool_name)
        pool.refresh(0)
        return pool.storageVolLookupByName(name).path()


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
  runStrategy: Halted
  boot: {{kernel: {guest.kernel}, initrd: {guest.initrd}, cmdline: "{guest.cmdline}"}}
  disks:
    - {{name: root, volume: {vm}-root}}
  nics: []
"""


@pytest.fixture
def fleet(system_libvirt: str, tiny_guest: GuestImage, tmp_path: Path) -> Iterator[TemplateFleet]:
    conn = libvirt.open(system_libvirt)
    made = LibvirtObjects(conn, f"corral-t-tpl-{uuid.uuid4().hex[:4]}")
    host, vm, pool_name = made.name("host"), made.domain(made.name("src")), made.name("pool")
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
            yield TemplateFleet(manifests, store, controller, agents, conn, made, vm, pool_name)
    finally:
        agents.close()
        store.close()
        made.cleanup()
        conn.close()


def test_template_from_a_stopped_vm_and_a_vm_from_it_boots(
    fleet: TemplateFleet, tmp_path: Path
) -> None:
    fleet.converge()
    assert fleet.conn.lookupByName(fleet.vm).state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
    image = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "16M"], check=True)
    subprocess.run(["qemu-io", "-c", "write -P 0xcd 0 1M", str(image)], check=True,
                   capture_output=True)  # fmt: skip
    upload(resolve(fleet.store, fleet.agents, f"{fleet.pool_name}/{fleet.vm}-root", None), image)

    tpl = fleet.made.name("tpl")
    documents = create_from_vm(fleet.store, fleet.agents, tpl, fleet.vm)
    assert [(d["kind"], d["metadata"]["name"]) for d in documents] == [
        ("Volume", f"{tpl}-root"),
        ("Template", tpl),
    ]
    assert documents[0]["spec"] == {"pool": fleet.pool_name, "size": "16Mi", "format": "qcow2"}
    spec = documents[1]["spec"]
    assert spec["disks"] == [{"name": "root", "volume": f"{tpl}-root"}]
    assert (spec["cpus"], spec["memory"]) == (1, "96Mi")
    assert "placement" not in spec and "runStrategy" not in spec
    base = resolve(fleet.store, fleet.agents, f"{fleet.pool_name}/{tpl}-root", None)
    download(base, tmp_path / "base.img", "raw")
    assert (tmp_path / "base.img").read_bytes()[:MIB] == PATTERN

    clone_vm = fleet.made.domain(fleet.made.name("from-tpl"))
    with (fleet.dir / "template.yaml").open("w") as handle:
        YAML().dump_all(documents, handle)
    (fleet.dir / "vm.yaml").write_text(
        f"apiVersion: corral.dev/v1alpha1\nkind: VirtualMachine\n"
        f"metadata: {{name: {clone_vm}}}\nspec: {{template: {tpl}}}\n"
    )
    fleet.converge()
    wait_heartbeats(clone_vm, 2)
    clone = fleet.volume_path(f"{clone_vm}-root")
    chain = json.loads(
        subprocess.run(
            ["qemu-img", "info", "-U", "--backing-chain", "--output=json", clone],
            capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    assert [i["filename"] for i in chain] == [clone, fleet.volume_path(f"{tpl}-root")]
    status = fleet.store.get("VirtualMachine", clone_vm).obj.status
    assert status.template is not None and status.template.name == tpl

    with pytest.raises(TemplateCommandError, match=f"{clone_vm} is running on .*; stop it first"):
        create_from_vm(fleet.store, fleet.agents, "other", clone_vm)
    with pytest.raises(TemplateCommandError, match=f"Template/{tpl} already exists"):
        create_from_vm(fleet.store, fleet.agents, tpl, fleet.vm)
    with pytest.raises(TemplateCommandError, match="VirtualMachine/nope not found"):
        create_from_vm(fleet.store, fleet.agents, "other", "nope")
