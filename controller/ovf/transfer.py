"""Disk images between the controller's machine and a host's agent: export and import.

Export downloads a volume through its host's agent and writes it as a self-contained
qcow2 or raw image (`qemu-img convert` flattens a thin clone's backing chain, which must
be readable here). Import converts an image to qcow2, creates the volume on the host and
uploads the image into it. `on_bytes` reports progress (bytes moved so far).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from agentapi import VolumeSpec
from controller.agents import AgentClient

CHUNK_BYTES = 1024 * 1024
Progress = Callable[[int], None]


class ImageError(RuntimeError):
    """qemu-img could not read or write an image; the message has its words."""


def qemu_img(*args: str) -> str:
    """Run qemu-img and return its output; ImageError with its message on failure."""
    proc = subprocess.run(["qemu-img", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageError(f"qemu-img {args[0]}: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def image_info(path: Path) -> dict:
    """Return `qemu-img info` of an image as a dict (virtual-size, format, ...)."""
    return json.loads(qemu_img("info", "--output=json", str(path)))


def download_image(
    client: AgentClient, pool: str, volume: str, dest: Path, fmt: str, on_bytes: Progress
) -> None:
    """Write the volume as a standalone `fmt` image at `dest` (a temp file meanwhile)."""
    raw = dest.with_name(f".{dest.name}.download")
    done = 0
    try:
        with raw.open("wb") as out:
            for chunk in client.download_volume(pool, volume):
                out.write(chunk)
                done += len(chunk)
                on_bytes(done)
        qemu_img("convert", "-O", fmt, str(raw), str(dest))
    finally:
        raw.unlink(missing_ok=True)


def _chunks(path: Path, on_bytes: Progress) -> Iterator[bytes]:
    done = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            done += len(chunk)
            on_bytes(done)
            yield chunk


def upload_image(
    client: AgentClient, pool: str, volume: str, source: Path, capacity: int, on_bytes: Progress
) -> None:
    """Create qcow2 volume `volume` in `pool` and fill it with `source` converted to qcow2."""
    staged = source.with_name(f".{source.name}.qcow2")
    try:
        qemu_img("convert", "-O", "qcow2", str(source), str(staged))
        virtual = int(image_info(staged)["virtual-size"])
        client.ensure_volume(pool, VolumeSpec(name=volume, capacity_bytes=max(capacity, virtual)))
        client.upload_volume(pool, volume, _chunks(staged, on_bytes))
    finally:
        staged.unlink(missing_ok=True)
