"""The tiny guest's initramfs: deterministic, readable by the real cpio tool, complete."""

from __future__ import annotations

import gzip
import subprocess

import pytest

from controller.lab import cpio
from controller.lab.guest import (
    INIT_SCRIPT,
    GuestBuildError,
    build_initrd,
    download_kernel,
    initrd_name,
    newest_kernel_package,
)
from tests.helpers.services import require_program

FAKE_BUSYBOX = b"\x7fELF not really busybox" * 10
FAKE_MODULES = {"evdev.ko": b"evdev module", "button.ko": b"button module"}


def test_initrd_is_byte_identical_for_equal_inputs() -> None:
    assert build_initrd(FAKE_BUSYBOX, FAKE_MODULES) == build_initrd(FAKE_BUSYBOX, FAKE_MODULES)
    name = initrd_name(FAKE_BUSYBOX, FAKE_MODULES)
    assert name == initrd_name(FAKE_BUSYBOX, dict(reversed(FAKE_MODULES.items())))
    assert name != initrd_name(FAKE_BUSYBOX, FAKE_MODULES, INIT_SCRIPT + "\n")
    assert name != initrd_name(FAKE_BUSYBOX, {**FAKE_MODULES, "evdev.ko": b"other"})


def test_cpio_tool_lists_the_initramfs_members() -> None:
    require_program("libvirt", "cpio")
    raw = gzip.decompress(build_initrd(FAKE_BUSYBOX, FAKE_MODULES))
    listing = subprocess.run(
        ["cpio", "-itv", "--quiet"], input=raw, capture_output=True, check=True
    ).stdout.decode()
    names = [
        line.split()[-1] if "->" not in line else line.split()[-3] for line in listing.splitlines()
    ]
    assert names == [
        "bin", "dev", "etc", "etc/acpi", "etc/acpi/PWRF", "lib", "lib/modules", "proc", "root",
        "sbin", "sys", "tmp", "usr", "usr/bin", "var", "var/log",
        "dev/console", "bin/busybox", "bin/sh", "lib/modules/button.ko", "lib/modules/evdev.ko",
        "etc/acpi/PWRF/00000080", "init",
    ]  # fmt: skip
    modes = {line.split()[-1]: line.split()[0] for line in listing.splitlines()}
    assert modes["init"] == modes["etc/acpi/PWRF/00000080"] == "-rwxr-xr-x"
    assert modes["dev/console"].startswith("c")


def test_cpio_tool_extracts_file_contents(tmp_path) -> None:
    require_program("libvirt", "cpio")
    raw = cpio.build_newc([cpio.directory("d"), cpio.file("d/f", b"odd-length\n")])
    subprocess.run(["cpio", "-id", "--quiet"], input=raw, cwd=tmp_path, check=True)
    assert (tmp_path / "d" / "f").read_bytes() == b"odd-length\n"


def test_init_script_prints_guest_up_then_heartbeats_and_keeps_a_shell() -> None:
    lines = INIT_SCRIPT.splitlines()
    assert lines[0] == "#!/bin/busybox sh"
    assert lines.index("acpid -l /dev/null") < lines.index("echo GUEST-UP")
    assert lines.index("echo GUEST-UP") < lines.index('        echo "HB $n $up"')
    assert "    setsid cttyhack sh" in lines


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        pytest.param([], None, id="none"),
        pytest.param(
            [
                "linux-image-6.1.0-9-cloud-amd64-unsigned",
                "linux-image-6.1.0-10-cloud-amd64-unsigned",
                "linux-image-6.1.0-12-amd64-unsigned",
                "linux-image-6.1.0-11-cloud-amd64-dbg",
            ],
            "linux-image-6.1.0-10-cloud-amd64-unsigned",
            id="numeric-not-lexical",
        ),
    ],
)
def test_newest_kernel_package(names: list[str], expected: str | None) -> None:
    assert newest_kernel_package(names) == expected


def test_a_failed_download_says_what_apt_said(tmp_path) -> None:
    require_program("tools", "apt-get")
    with pytest.raises(GuestBuildError, match=r"apt-get download .*-999-.* failed: E: "):
        download_kernel("linux-image-6.1.0-999-cloud-amd64-unsigned", tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing half-downloaded left behind


def test_a_package_that_is_no_cloud_kernel_is_refused(tmp_path) -> None:
    with pytest.raises(GuestBuildError, match=r"is not a linux-image-6\.1\.0-"):
        download_kernel("linux-image-amd64", tmp_path)
