"""`corral volume` on the real libvirtd: upload, download, resize (grow only) and copy
between pools through the agent's content endpoints; bad input refused by name."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest
from typer.testing import CliRunner

from controller.agentpool import AgentPool
from controller.cli.main import app
from controller.cli.volume import VolumeCommandError, copy, download, resize, resolve, upload
from controller.loop import Controller, SourceSetting
from controller.ovf.transfer import image_info
from controller.sources import DirectorySource
from controller.store import Store, open_store
from tests.e2e.e2ekit import LibvirtObjects
from tests.helpers.agent_server import serving_agent

pytestmark = pytest.mark.libvirtd

MIB = 2**20
PATTERN = b"\xab" * MIB


@dataclass
class VolumeFleet:
    store: Store
    agents: AgentPool
    conn: libvirt.virConnect
    state_dir: Path
    host: str
    first: str
    second: str

    def capacity(self, pool: str, volume: str) -> int:
        found = self.conn.storagePoolLookupByName(pool)
        found.refresh(0)
        return found.storageVolLookupByName(volume).info()[1]


def fleet_yaml(host: str, address: str, pools: dict[str, Path]) -> str:
    docs = [
        f"""\
apiVersion: corral.dev/v1alpha1
kind: Host
metadata: {{name: {host}}}
spec: {{address: "{address}", virtualization: qemu}}
"""
    ]
    for name, path in pools.items():
        docs.append(
            f"""\
apiVersion: corral.dev/v1alpha1
kind: StoragePool
metadata: {{name: {name}}}
spec: {{type: dir, path: {path}}}
"""
        )
    return "---\n".join(docs)


@pytest.fixture
def fleet(system_libvirt: str, tmp_path: Path) -> Iterator[VolumeFleet]:
    conn = libvirt.open(system_libvirt)
    made = LibvirtObjects(conn, f"corral-t-vol-{uuid.uuid4().hex[:4]}")
    host, first, second = made.name("host"), made.name("one"), made.name("two")
    pools = {first: tmp_path / "one", second: tmp_path / "two"}
    for name, path in pools.items():
        made.pool(name, path)
    manifests = tmp_path / "fleet"
    manifests.mkdir()
    state_dir = tmp_path / "state"
    store = open_store(None, state_dir=state_dir)
    agents = AgentPool(timeout_s=300.0)
    try:
        with serving_agent(system_libvirt) as agent:
            (manifests / "fleet.yaml").write_text(fleet_yaml(host, agent.base_url, pools))
            source = SourceSetting(DirectorySource(manifests), "dir", "fleet", prune=True)
            controller = Controller(store, [source], agents, resync_s=30.0)
            deadline = time.monotonic() + 120
            while not controller.reconcile().converged:
                assert time.monotonic() < deadline, "the pools did not converge"
                time.sleep(0.5)
            yield VolumeFleet(store, agents, conn, state_dir, host, first, second)
    finally:
        agents.close()
        store.close()
        made.cleanup()
        conn.close()


def patterned_image(path: Path) -> Path:
    """Write a 16Mi qcow2 image whose first MiB is 0xab (qemu-io)."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "16M"], check=True)
    subprocess.run(["qemu-io", "-c", "write -P 0xab 0 1M", str(path)], check=True,
                   capture_output=True)  # fmt: skip
    return path


def first_mib(fleet: VolumeFleet, volume: str, dest: Path) -> bytes:
    download(resolve(fleet.store, fleet.agents, volume, None), dest, "raw")
    with dest.open("rb") as handle:
        return handle.read(MIB)


def test_upload_download_resize_and_copy(fleet: VolumeFleet, tmp_path: Path) -> None:
    image = patterned_image(tmp_path / "disk.qcow2")
    ref = resolve(fleet.store, fleet.agents, f"{fleet.first}/data", None)
    assert ref.host == fleet.host
    upload(ref, image)
    assert fleet.capacity(fleet.first, "data") == 16 * MIB
    assert first_mib(fleet, f"{fleet.first}/data", tmp_path / "back.img") == PATTERN
    assert (tmp_path / "back.img").stat().st_size == 16 * MIB

    assert resize(ref, 32 * MIB) is True
    assert fleet.capacity(fleet.first, "data") == 32 * MIB
    assert resize(ref, 32 * MIB) is False
    with pytest.raises(VolumeCommandError, match="is below its capacity 32Mi; volumes only grow"):
        resize(ref, 16 * MIB)
    assert fleet.capacity(fleet.first, "data") == 32 * MIB

    target = resolve(fleet.store, fleet.agents, f"{fleet.second}/data-copy", None)
    copy(ref, target)
    assert fleet.capacity(fleet.second, "data-copy") == 32 * MIB
    assert first_mib(fleet, f"{fleet.second}/data-copy", tmp_path / "copy.img") == PATTERN
    with pytest.raises(VolumeCommandError, match="already exists; copy only makes new volumes"):
        copy(ref, target)

    downloaded = tmp_path / "flat.qcow2"
    download(target, downloaded, "qcow2")
    assert image_info(downloaded)["format"] == "qcow2"


def test_the_cli_reports_bad_input_by_name(fleet: VolumeFleet, tmp_path: Path) -> None:
    runner = CliRunner()
    state = ["--state-dir", str(fleet.state_dir)]
    image = patterned_image(tmp_path / "disk.qcow2")

    done = runner.invoke(app, ["volume", "upload", f"{fleet.first}/cli", str(image), *state])
    assert done.exit_code == 0, done.output
    assert f"uploaded {image} to {fleet.first}/cli on {fleet.host}" in done.output

    cases = [
        (["resize", f"{fleet.first}/cli", "8Mi"], "size 8Mi is below its capacity 16Mi"),
        (["resize", f"{fleet.first}/cli", "lots"], "size:"),
        (["resize", "no-slash", "8Mi"], "expected POOL/VOLUME, got 'no-slash'"),
        (["download", "nopool/x", str(tmp_path / "x")], "StoragePool/nopool not found"),
        (["upload", f"{fleet.first}/y", str(tmp_path / "missing.img")], "missing.img: no such"),
        (["download", f"{fleet.first}/cli", str(tmp_path / "z"), "--format", "vmdk"], "--format"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["volume", *args, *state])
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output, (args, result.output)
    assert fleet.capacity(fleet.first, "cli") == 16 * MIB
    grown = runner.invoke(app, ["volume", "resize", f"{fleet.first}/cli", "20Mi", *state])
    assert grown.exit_code == 0 and "grown to 20Mi" in grown.output, grown.output
