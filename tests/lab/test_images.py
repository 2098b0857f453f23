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
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from controller.cli.vm import revert_vm
from controller.lab.guest import BUSYBOX_PATH, GUEST_MODULES, GuestImage, build_initrd
from controller.lab.heartbeat import parse_heartbeats
from tests.e2e.e2ekit import serial_log, wait_heartbeats
from tests.helpers.hooks import write_description_hook
from tests.helpers.lab_fleet import LabFleet, lab_fleet, storage_yaml

pytestmark = pytest.mark.libvirtd

HOOK_TEXT = "rewritten by a hook the manifest asked for"
BALLOON_MODULE = "kernel/drivers/virtio/virtio_balloon.ko"


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


@pytest.fixture
def fleet(system_libvirt: str, tiny_guest: GuestImage, tmp_path: Path) -> Iterator[LabFleet]:
    write_description_hook(tmp_path / "hooks", "10_add-description.py", HOOK_TEXT)
    initrd = balloon_initrd(tiny_guest)
    with lab_fleet(system_libvirt, tmp_path, "img", hooks_dir=tmp_path / "hooks") as fleet:
        try:
            fleet.write("base.yaml", storage_yaml(fleet, f"{fleet.pool_name}-base"))
            fleet.write("template.yaml", template_yaml(tiny_guest, initrd, fleet.pool_name))
            fleet.write("vm.yaml", vm_yaml(fleet.vm))
            yield fleet
        finally:
            # Snapshots with memory keep the domain from being undefined plainly.
            with contextlib.suppress(libvirt.libvirtError):
                dom = fleet.conn.lookupByName(fleet.vm)
                dom.destroy()
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)


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


def test_template_clone_hook_snapshot_revert_and_balloon(fleet: LabFleet) -> None:
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
    result = revert_vm(store, fleet.agents, vm, f"{vm}-snap")
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
