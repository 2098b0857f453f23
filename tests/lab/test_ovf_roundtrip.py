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
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.cli.ovf import OvfCommandError, choose_target, export_vm, import_ovf
from controller.lab.guest import GuestImage
from controller.ovf.transfer import image_info
from tests.e2e.e2ekit import wait_heartbeats
from tests.helpers.lab_fleet import LabFleet, lab_fleet, tiny_vm_fleet_yaml
from tests.helpers.ovfcheck import check_package

pytestmark = pytest.mark.libvirtd


@pytest.fixture
def fleet(system_libvirt: str, tiny_guest: GuestImage, tmp_path: Path) -> Iterator[LabFleet]:
    with lab_fleet(system_libvirt, tmp_path, "ovf") as fleet:
        fleet.write(
            "fleet.yaml", tiny_vm_fleet_yaml(fleet, tiny_guest, "description: exported by corral")
        )
        yield fleet


def test_export_import_and_the_copy_boots(fleet: LabFleet, tmp_path: Path) -> None:
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
    assert f"{copy}-root" in fleet.volumes()
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
    before = fleet.volumes()
    with pytest.raises(OvfCommandError, match="does not match its SHA256 sum"):
        import_ovf(fleet.store, fleet.agents, package, pool_name, host, elsewhere, "third")
    assert fleet.volumes() == before
    with contextlib.suppress(FileNotFoundError):
        assert not list(elsewhere.iterdir())
