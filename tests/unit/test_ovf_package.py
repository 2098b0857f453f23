"""OVF packages on disk: a generated envelope with qemu-img images reads back; a corrupt
descriptor, a missing disk file, a wrong SHA256 sum or two descriptors are refused by name."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from controller.cli.ovf import OvfCommandError, read_package
from controller.ovf import OvfDisk, OvfSystem, build_envelope
from tests.helpers.ovfcheck import check_package


def make_package(directory: Path) -> Path:
    """Write a two-disk package (qcow2 and raw images by qemu-img) with its manifest."""
    directory.mkdir()
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(directory / "root.qcow2"),
                    "16M"], check=True)  # fmt: skip
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(directory / "data.img"), "1M"],
                   check=True)  # fmt: skip
    disks = [
        OvfDisk(
            "root", "root.qcow2", "qcow2", 16 * 2**20, (directory / "root.qcow2").stat().st_size
        ),
        OvfDisk("data", "data.img", "raw", 2**20, 2**20),
    ]
    system = OvfSystem(name="web-1", cpus=2, memory_bytes=256 * 2**20, disks=disks,
                       networks=["lan"], kernel="/boot/vmlinuz")  # fmt: skip
    descriptor = directory / "web-1.ovf"
    descriptor.write_text(build_envelope(system))
    sums = [
        f"SHA256({p.name})= {hashlib.sha256(p.read_bytes()).hexdigest()}"
        for p in (descriptor, directory / "root.qcow2", directory / "data.img")
    ]
    (directory / "web-1.mf").write_text("\n".join(sums) + "\n")
    return descriptor


def test_a_generated_package_reads_back_and_passes_the_structural_check(tmp_path: Path) -> None:
    descriptor = make_package(tmp_path / "pkg")
    system, found = read_package(tmp_path / "pkg")
    assert found == descriptor
    assert (system.name, system.cpus, system.memory_bytes) == ("web-1", 2, 256 * 2**20)
    assert [(d.name, d.href, d.format, d.capacity_bytes) for d in system.disks] == [
        ("root", "root.qcow2", "qcow2", 16 * 2**20),
        ("data", "data.img", "raw", 2**20),
    ]
    assert check_package(descriptor) == system


def _corrupt_descriptor(pkg: Path) -> None:
    (pkg / "web-1.ovf").write_text("<ovf:Envelope")
    (pkg / "web-1.mf").unlink()


def _drop_disk(pkg: Path) -> None:
    (pkg / "data.img").unlink()


def _tamper_disk(pkg: Path) -> None:
    with (pkg / "data.img").open("r+b") as image:
        image.write(b"changed")


def _second_descriptor(pkg: Path) -> None:
    (pkg / "other.ovf").write_text((pkg / "web-1.ovf").read_text())


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(_corrupt_descriptor, "web-1.ovf: descriptor: not well-formed XML", id="xml"),
        pytest.param(_drop_disk, "disk data: file data.img is missing", id="missing-disk"),
        pytest.param(_tamper_disk, "web-1.mf: data.img does not match its SHA256 sum", id="sum"),
        pytest.param(_second_descriptor, "expected one .ovf descriptor, found 2", id="two-ovf"),
    ],
)
def test_a_damaged_package_is_refused_by_name(tmp_path: Path, damage, message: str) -> None:
    make_package(tmp_path / "pkg")
    damage(tmp_path / "pkg")
    with pytest.raises(OvfCommandError, match=re.escape(message)):
        read_package(tmp_path / "pkg")


def test_an_empty_directory_is_no_package(tmp_path: Path) -> None:
    with pytest.raises(OvfCommandError, match=r"expected one \.ovf descriptor, found 0"):
        read_package(tmp_path)
