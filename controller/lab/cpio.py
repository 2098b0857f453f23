"""A deterministic writer for the cpio "newc" archive format that Linux unpacks as initramfs.

Every entry gets uid/gid 0, mtime 0 and an inode number from its position, so equal inputs give
byte-identical archives (and so an equal cache key for the tiny guest's initrd).
Format: https://www.kernel.org/doc/html/latest/driver-api/early-userspace/buffer-format.html
"""

from __future__ import annotations

import stat
from dataclasses import dataclass

_MAGIC = b"070701"
_TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Entry:
    """One archive member: a directory, regular file, symlink or character device."""

    path: str
    mode: int
    data: bytes = b""
    rdev_major: int = 0
    rdev_minor: int = 0


def directory(path: str) -> Entry:
    """Returns a 0755 directory entry."""
    return Entry(path, stat.S_IFDIR | 0o755)


def file(path: str, data: bytes, perm: int = 0o644) -> Entry:
    """Returns a regular file entry with permission bits `perm`."""
    return Entry(path, stat.S_IFREG | perm, data)


def symlink(path: str, target: str) -> Entry:
    """Returns a symlink entry pointing at `target`."""
    return Entry(path, stat.S_IFLNK | 0o777, target.encode())


def char_device(path: str, major: int, minor: int, perm: int = 0o600) -> Entry:
    """Returns a character device node entry (e.g. /dev/console is 5:1)."""
    return Entry(path, stat.S_IFCHR | perm, b"", major, minor)


def _pad4(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _header(entry: Entry, ino: int) -> bytes:
    name = entry.path.lstrip("/").encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(entry.mode) else 1
    fields = (
        ino,
        entry.mode,
        0,  # uid
        0,  # gid
        nlink,
        0,  # mtime
        len(entry.data),
        0,  # devmajor
        0,  # devminor
        entry.rdev_major,
        entry.rdev_minor,
        len(name),
        0,  # check (unused by newc)
    )
    head = _MAGIC + b"".join(b"%08X" % value for value in fields) + name
    return head + _pad4(len(head))


def build_newc(entries: list[Entry]) -> bytes:
    """Returns the uncompressed newc archive of `entries`, in the given order, with a trailer.

    Parents must come before their children (the kernel does not create missing directories).
    """
    out = bytearray()
    for ino, entry in enumerate([*entries, Entry(_TRAILER, 0)], start=1):
        out += _header(entry, 0 if entry.path == _TRAILER else ino)
        out += entry.data + _pad4(len(entry.data))
    return bytes(out)
