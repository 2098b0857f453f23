"""Disk conversion: qemu-img for the disks, virt-v2v for guest changes when it is installed.

`qemu-img convert` copies the data into qcow2 but changes nothing inside the guest
(drivers, bootloader, VMware Tools). virt-v2v does those changes; it is used when
present and asked for, and the report says which tool did what.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from controller.v2v.model import V2VError

QEMU_IMG = "qemu-img"
VIRT_V2V = "virt-v2v"


@dataclass(frozen=True)
class ImageInfo:
    """What `qemu-img info` says of an image (bytes)."""

    format: str
    virtual_size: int


def virt_v2v_available() -> bool:
    """Return True if virt-v2v is on PATH."""
    return shutil.which(VIRT_V2V) is not None


def image_info(path: Path) -> ImageInfo:
    """Return the image's format and virtual size; V2VError if qemu-img cannot read it."""
    proc = subprocess.run(
        [QEMU_IMG, "info", "--output=json", str(path)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        detail = (
            proc.stderr.strip().splitlines()[-1]
            if proc.stderr.strip()
            else f"exit {proc.returncode}"
        )
        raise V2VError(str(path), f"not a readable disk image: {detail}")
    info = json.loads(proc.stdout)
    return ImageInfo(format=info["format"], virtual_size=int(info["virtual-size"]))


def convert_disk(source: Path, target: Path) -> ImageInfo:
    """Convert `source` (any format qemu-img reads) into the qcow2 file `target`.

    The source is checked first (a corrupt image fails before anything is written);
    `target` must not exist. Returns the info of the new image.
    """
    before = image_info(source)
    proc = subprocess.run(
        [QEMU_IMG, "convert", "-q", "-f", before.format, "-O", "qcow2", str(source), str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        target.unlink(missing_ok=True)
        raise V2VError(str(source), f"qemu-img convert failed: {proc.stderr.strip()[-300:]}")
    after = image_info(target)
    if after.format != "qcow2" or after.virtual_size != before.virtual_size:
        raise V2VError(
            str(target), f"conversion produced {after}, expected qcow2 of {before.virtual_size}"
        )
    return after


def run_virt_v2v(argv_input: list[str], out_dir: Path) -> None:
    """Run virt-v2v with `-i ...` arguments, writing qcow2 disks to `out_dir` (-o local)."""
    proc = subprocess.run(
        [VIRT_V2V, *argv_input, "-o", "local", "-os", str(out_dir), "-of", "qcow2"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise V2VError(VIRT_V2V, f"failed: {proc.stderr.strip()[-300:]}")
