"""Several processes building the tiny guest into one cache at once get the same, whole files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from controller.lab.guest import GuestImage

pytestmark = pytest.mark.libvirtd

BUILD = (
    "import json, sys; from controller.lab.guest import ensure_tiny_guest; "
    "image = ensure_tiny_guest(__import__('pathlib').Path(sys.argv[1])); "
    "print(json.dumps([str(image.kernel), str(image.initrd)]))"
)


def test_concurrent_builders_agree(tiny_guest: GuestImage, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    # Seed the kernel (the only part that needs the network); the initrd is built here.
    shutil.copytree(tiny_guest.kernel.parent, cache / tiny_guest.kernel.parent.name)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BUILD, str(cache)],
            cwd=Path(__file__).resolve().parents[2],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = {tuple(json.loads(proc.communicate(timeout=120)[0])) for proc in procs}
    assert all(proc.returncode == 0 for proc in procs)
    [(kernel, initrd)] = results
    assert Path(initrd).read_bytes() == tiny_guest.initrd.read_bytes()
    assert Path(initrd).name == tiny_guest.initrd.name
    assert (cache / "initrd.img").resolve() == Path(initrd)
    assert (cache / "vmlinuz").resolve() == Path(kernel)
    assert sorted(p.name for p in cache.iterdir() if p.name.startswith(".")) == [".lock"]
