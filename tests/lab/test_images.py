"""Images and memory on the real libvirtd, driven by manifests through the controller loop.

One tiny guest made from a Template, with a manifest hook, then in phases:
1. it boots from a thin qcow2 clone of the template's base volume (qemu-img backing
   chain), and the hook the manifest names rewrote its running definition;
2. a Snapshot manifest makes a snapshot with memory; `corral vm revert` takes the guest
   back to it (its heartbeat count goes back); removing the manifest deletes it (prune);
3. a SchedulingPolicy with memoryBalloon and a low mark above the host's free memory
   (simulated pressure) shrinks the guest's balloon to its guaranteed memory: the
   domain's memory stats show it, and each adjustment is an event.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tarfile
import tempfile
import textwrap
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest

from controller.agentpool import AgentPool
from controller.cli.vm import revert_vm
from controller.lab.guest import BUSYBOX_PATH, GUEST_MODULES, GuestImage, build_initrd
from controller.lab.heartbeat import parse_heartbeats
from controller.loop import Controller, PassResult, SourceSetting
from controller.sources import DirectorySource
from controller.store import Store, open_store
from tests.e2e.e2ekit import LibvirtObjects, serial_log, wait_heartbeats
from tests.helpers.agent_server import serving_agent

pytestmark = pytest.mark.libvirtd

CONVERGE_TIMEOUT_S = 180.0
HOOK_TEXT = "rewritten by a hook the manifest asked for"
BALLOON_MODULE = "kernel/drivers/virtio/virtio_balloon.ko"

ADD_DESCRIPTION = textwrap.dedent(
    f"""\
    #!/usr/bin/env python3
    import sys
    import xml.etree.ElementTree as ET

    root = ET.fromstring(sys.stdin.read())
    desc = root.find("description")
    if desc is None:
        desc = ET.Element("description")
        root.insert(1, desc)
    desc.text = "{HOOK_TEXT}"
    sys.stdout.write(ET.tostring(root, encoding="unicode"))
    """
)


def balloon_initrd(image: GuestImage) -> Path:
    """Return the tiny guest's initrd with virtio_balloon loaded too (built once, cached).

    The module comes from the same kernel package (apt-get download, cached beside it).
    """
    kernel_dir = image.kernel.parent
    module = kernel_dir / "virtio_balloon.ko"
    abi = kernel_dir.name.removeprefix("kernel-")
    if not module.exists():
        with tempfile.TemporaryDirectory() as tmp:
            os.chmod(tmp, 0o777)
            subprocess.run(
                ["apt-get", "download", "-qq", f"linux-image-{abi}-unsigned"], cwd=tmp, check=True
            )
            [deb] = Path(tmp).glob("*.deb")
            wanted = f"./lib/modules/{abi}/{BALLOON_MODULE}"
            proc = subprocess.Popen(
                ["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE
            )
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                for member in tar:
                    if member.name == wanted:
                        data = tar.extractfile(member).read()  # type: ignore[union-attr]
                        module.with_suffix(".tmp").write_bytes(data)
                        os.replace(module.with_suffix(".tmp"), module)
            proc.wait()
    modules = {
        f"{i:02d}-{Path(m).name}": (kernel_dir / Path(m).name).read_bytes()
        for i, m in enumerate((*GUEST_MODULES, BALLOON_MODULE))
    }
    target = kernel_dir.parent / "initrd-balloon.img"
    data = build_initrd(BUSYBOX_PATH.read_bytes(), modules)
    if not target.exists() or target.read_bytes() != data:
        target.write_bytes(data)
    return target


@dataclass
class ImageFleet:
    """The manifests directory, the controller over it, and what it made on libvirt."""

    dir: Path
    store: Store
    controller: Controller
    pool: AgentPool
    conn: libvirt.virConnect
    made: LibvirtObjects
    host: str
    vm: str
    pool_name: str

    def write(self, name: str, text: str) -> None:
        (self.dir / name).write_text(text)

    def remove(self, name: str) -> None:
        (self.dir / name).unlink()

    def converge(self, timeout_s: float = CONVERGE_TIMEOUT_S) -> list[PassResult]:
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


@pytest.fixture
def fleet(system_libvirt: str, tiny_guest: GuestImage, tmp_path: Path) -> Iterator[ImageFleet]:
    hooks = tmp_path / "hooks" / "before_vm_start" / "10_add-description.py"
    hooks.parent.mkdir(parents=True)
    hooks.write_text(ADD_DESCRIPTION)
    hooks.chmod(0o755)
    initrd = balloon_initrd(tiny_guest)
    conn = libvirt.open(system_libvirt)
    made = LibvirtObjects(conn, f"corral-t-img-{uuid.uuid4().hex[:4]}")
    host, vm, pool_name = made.name("host"), made.domain(made.name("vm")), made.name("pool")
    made.pool(pool_name, tmp_path / "pool")
    manifests = tmp_path / "fleet"
    manifests.mkdir()
    store = open_store(None, state_dir=tmp_path / "state")
    agents = AgentPool(timeout_s=300.0)
    try:
        with serving_agent(system_libvirt, hooks_dir=tmp_path / "hooks") as agent:
            source = SourceSetting(DirectorySource(manifests), "dir", "fleet", prune=True)
            controller = Controller(store, [source], agents, resync_s=30.0)
            out = ImageFleet(manifests, store, controller, agents, conn, made, host, vm, pool_name)
            out.write("base.yaml", base_yaml(host, agent.base_url, pool_name, tmp_path / "pool"))
            out.write("template.yaml", template_yaml(tiny_guest, initrd, pool_name))
            out.write("vm.yaml", vm_yaml(vm))
            yield out
    finally:
        agents.close()
        store.close()
        with contextlib.suppress(libvirt.libvirtError):
            dom = conn.lookupByName(vm)
            dom.destroy()
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
        made.cleanup()
        conn.close()


def base_yaml(host: str, address: str, pool: str, path: Path) -> str:
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
metadata: {{name: {pool}-base}}
spec: {{pool: {pool}, size: 16Mi, format: qcow2}}
"""


def template_yaml(image: GuestImage, initrd: Path, pool: str) -> str:
    return f"""\
apiVersion: corral.dev/v1alpha1
kind: Template
metadata: {{name: tiny}}
spec:
  cpus: 1
  memory: 128Mi
  maxMemory: 128Mi
  guaranteedMemory: 96Mi
  boot: {{kernel: {image.kernel}, initrd: {initrd}, cmdline: "{image.cmdline}"}}
  disks:
    - {{name: root, volume: {pool}-base}}
"""


def vm_yaml(vm: str) -> str:
    return f"""\
apiVersion: corral.dev/v1alpha1
kind: VirtualMachine
metadata: {{name: {vm}}}
spec: {{template: tiny, hooks: [add-description]}}
"""


def heartbeats_since(path: Path, offset: int) -> list[tuple[int, float]]:
    """Return the heartbeats written after byte `offset` (all, if the file was truncated)."""
    data = path.read_bytes()
    return parse_heartbeats(data[offset:] if len(data) >= offset else data)


def test_template_clone_hook_snapshot_revert_and_balloon(fleet: ImageFleet) -> None:
    conn, vm, store = fleet.conn, fleet.vm, fleet.store

    # 1. From the template: a thin clone of the base volume, and the manifest's hook.
    fleet.converge()
    wait_heartbeats(vm, 2)
    clone = conn.storagePoolLookupByName(fleet.pool_name).storageVolLookupByName(f"{vm}-root")
    base = conn.storagePoolLookupByName(fleet.pool_name).storageVolLookupByName(
        f"{fleet.pool_name}-base"
    )
    chain = json.loads(
        subprocess.run(
            ["qemu-img", "info", "-U", "--backing-chain", "--output=json", clone.path()],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert [image["filename"] for image in chain] == [clone.path(), base.path()]
    assert chain[0]["format"] == "qcow2"
    live = ET.fromstring(conn.lookupByName(vm).XMLDesc(0))
    assert live.findtext("description") == HOOK_TEXT
    host_status = store.get("Host", fleet.host).obj.status
    assert host_status.hooks == {"before_vm_start": ["add-description"]}

    # 2. A declared snapshot with memory; a revert on request; pruned with its manifest.
    fleet.write(
        "snapshot.yaml",
        f"""\
apiVersion: corral.dev/v1alpha1
kind: Snapshot
metadata: {{name: {vm}-snap}}
spec: {{vm: {vm}, description: first, memory: true}}
""",
    )
    fleet.converge()
    taken_at_beat = wait_heartbeats(vm, 2)[-1][0]
    status = store.get("Snapshot", f"{vm}-snap").obj.status
    assert status.host == fleet.host and status.created is not None
    assert status.size is not None and status.size > 0  # the saved memory state
    assert status.condition("Ready").status.value == "True"
    later = wait_heartbeats(vm, taken_at_beat + 4)[-1][0]
    offset = serial_log(vm).stat().st_size
    result = revert_vm(store, fleet.pool, vm, f"{vm}-snap")
    assert result.changed is True
    deadline = time.monotonic() + 60
    while not (after := heartbeats_since(serial_log(vm), offset)):
        assert time.monotonic() < deadline, "no heartbeat after the revert"
        time.sleep(0.2)
    assert after[0][0] < later, (after, later)  # the guest went back in time
    assert ("Reverted", vm) in {(e.reason, e.name) for e in store.list_events(limit=200)}
    fleet.remove("snapshot.yaml")
    fleet.converge()
    assert conn.lookupByName(vm).snapshotNum(0) == 0

    # 3. Simulated memory pressure: the balloon goes down to the guaranteed memory.
    assert conn.lookupByName(vm).memoryStats()["actual"] == 128 * 1024
    fleet.write(
        "policy.yaml",
        """\
apiVersion: corral.dev/v1alpha1
kind: SchedulingPolicy
metadata: {name: squeeze}
spec:
  memoryBalloon: {enabled: true, lowFreePercent: 99, highFreePercent: 100, stepPercent: 25}
""",
    )
    deadline = time.monotonic() + 60
    while conn.lookupByName(vm).memoryStats()["actual"] > 96 * 1024:
        assert time.monotonic() < deadline, conn.lookupByName(vm).memoryStats()
        result = fleet.controller.reconcile()
        assert not [a for a in result.plan.actions if a.target == ("VirtualMachine", vm)]
        time.sleep(1.0)
    assert conn.lookupByName(vm).memoryStats()["actual"] == 96 * 1024
    shrunk = [e for e in store.list_events(limit=200) if e.reason == "BalloonShrunk"]
    assert shrunk and shrunk[0].name == vm
    assert "-> 96 MiB (guaranteed 96 MiB, memory 128 MiB)" in " ".join(e.message for e in shrunk)
    assert fleet.controller.reconcile().plan.empty  # a ballooned guest is not drift
    wait_heartbeats(vm, 2)
