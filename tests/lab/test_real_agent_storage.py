"""The node agent manages a dir pool, a thin qcow2 clone and a snapshot on a real libvirtd."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from agentapi import DiskSpec, PoolSpec, SnapshotSpec, VolumeSpec
from controller.lab.guest import GuestImage
from controller.lab.heartbeat import SerialLogReader
from tests.helpers.agent_server import serving_agent
from tests.helpers.specs import tiny_domain_spec

pytestmark = pytest.mark.libvirtd

POOL = "corral-t-pool"
NAME = "corral-t-snap"
MIB = 1024 * 1024


def qemu_img(*args: str) -> str:
    return subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=True).stdout


def test_dir_pool_thin_clone_and_snapshot(
    system_libvirt: str, tiny_guest: GuestImage, tmp_path: Path
) -> None:
    pool_dir = tmp_path / "pool"
    base_spec = VolumeSpec(name="base.qcow2", capacity_bytes=64 * MIB)
    with serving_agent(system_libvirt) as agent:
        try:
            agent.ensure_pool(PoolSpec(name=POOL, type="dir", target_path=str(pool_dir)))
            assert agent.get_pool(POOL).active
            assert pool_dir.is_dir()
            base = agent.ensure_volume(POOL, base_spec).volume
            clone_spec = VolumeSpec(
                name="clone.qcow2",
                capacity_bytes=64 * MIB,
                backing_path=base.path,
                backing_format="qcow2",
            )
            created = agent.ensure_volume(POOL, clone_spec)
            assert (created.created, agent.ensure_volume(POOL, clone_spec).changed) == (True, False)
            clone = created.volume

            chain = json.loads(qemu_img("info", "--backing-chain", "--output=json", clone.path))
            assert [image["filename"] for image in chain] == [clone.path, base.path]
            assert chain[0]["backing-filename"] == base.path
            assert chain[0]["format"] == "qcow2"
            assert chain[0]["actual-size"] < MIB  # thin: only metadata, data stays in base

            disk = DiskSpec(target="vda", pool=POOL, volume="clone.qcow2", format="qcow2")
            spec = tiny_domain_spec(NAME, tiny_guest, disks=[disk])
            serial = Path(spec.serial_log_path or "")
            serial.unlink(missing_ok=True)
            agent.ensure_domain_defined(spec)
            agent.ensure_running(NAME)
            reader = SerialLogReader({"system": serial})
            reader.wait_new(2, timeout_s=90)

            description = "before the upgrade"
            made = agent.ensure_snapshot(
                NAME, "before-upgrade", SnapshotSpec(description=description)
            )
            assert made.changed is True
            assert agent.ensure_snapshot(NAME, "before-upgrade").changed is False
            [snap] = agent.list_snapshots(NAME)
            assert (snap.name, snap.description, snap.domain_state) == (
                "before-upgrade",
                description,
                "running",
            )
            # An internal snapshot lives in the qcow2 file itself (-U: the image is in use).
            assert "before-upgrade" in qemu_img("snapshot", "-U", "-l", clone.path)
            reader.wait_new(1, timeout_s=30)  # the guest runs on after the snapshot

            assert agent.ensure_snapshot_deleted(NAME, "before-upgrade").changed is True
            assert agent.list_snapshots(NAME) == []
            assert "before-upgrade" not in qemu_img("snapshot", "-U", "-l", clone.path)
        finally:
            agent.ensure_undefined(NAME, force=True)
            for volume in ("clone.qcow2", "base.qcow2"):
                agent.ensure_volume_deleted(POOL, volume)
            agent.ensure_pool_undefined(POOL)
            Path(f"/var/log/libvirt/qemu/{NAME}.serial").unlink(missing_ok=True)
