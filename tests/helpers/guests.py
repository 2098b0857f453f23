"""Tiny guests defined straight on a libvirt connection, always removed afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import libvirt

from controller.lab.domain import build_tiny_domain
from controller.lab.guest import GuestImage

SERIAL_DIR = "/var/log/libvirt/qemu"

# libvirt prints every error to stderr besides raising it; the exception is what tests use.
libvirt.registerErrorHandler(lambda _ctx, _error: None, None)


def serial_path(name: str) -> str:
    """Returns the serial log path of guest `name`, as libvirtd's host sees it."""
    return f"{SERIAL_DIR}/{name}.serial"


def remove_domain(conn: libvirt.virConnect, name: str) -> None:
    """Destroys and undefines `name` on `conn` if it exists there (no error if not)."""
    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError:
        return
    with suppress(libvirt.libvirtError):
        dom.destroy()
    with suppress(libvirt.libvirtError):
        dom.undefine()


@contextmanager
def running_tiny_guest(
    conn: libvirt.virConnect, name: str, image: GuestImage, serial_outside: Path
) -> Iterator[libvirt.virDomain]:
    """Yields the started persistent domain `name`; on exit (also on failure) destroys and
    undefines it wherever `conn` still has it, and deletes its serial log.

    `serial_outside` is the serial log as this process sees it (differs inside a lab host).
    """
    remove_domain(conn, name)
    serial_outside.unlink(missing_ok=True)
    dom = conn.defineXML(build_tiny_domain(name, image, serial_path(name)))
    try:
        dom.create()
        yield dom
    finally:
        remove_domain(conn, name)
        serial_outside.unlink(missing_ok=True)
