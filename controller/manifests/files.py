"""Which files a load reads, and reading them safely: size-bounded, inside the root, as text."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from controller.manifests.result import Limits, ManifestError

MANIFEST_SUFFIXES = (".yaml", ".yml")


def display_name(path: Path, root: Path | None = None) -> str:
    """Return how messages name a file: relative to `root` if given and inside, else the cwd."""
    for base in (root, Path.cwd()):
        if base is not None:
            with contextlib.suppress(ValueError):
                return str(path.absolute().relative_to(base))
    return str(path)


def file_error(path: Path, root: Path | None, type_: str, message: str) -> ManifestError:
    """Return an error about a whole file (no line or column)."""
    return ManifestError(display_name(path, root), None, None, None, (), type_, message)


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _walk(
    directory: Path, root: Path, shown: Path | None, seen: set[Path]
) -> Iterator[Path | ManifestError]:
    """Yield manifest files under `directory` in sorted order, and an error per bad entry.

    Hidden entries (".git", ".github") are skipped. A symlink is followed only when it
    resolves inside `root`; a directory is visited once, so symlink loops end there.
    """
    real = directory.resolve()
    if real in seen:
        return
    seen.add(real)
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        yield file_error(directory, shown, "unreadable", f"cannot list: {exc.strerror}")
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        if entry.is_symlink():
            target = path.resolve()
            if not _is_within(target, root):
                yield file_error(
                    path,
                    shown,
                    "symlink_escape",
                    f"symlink leads outside {root} (to {target}): not read",
                )
                continue
        if path.is_dir():
            yield from _walk(path, root, shown, seen)
        elif entry.name.endswith(MANIFEST_SUFFIXES):
            yield path


def iter_manifest_files(
    paths: Iterable[str | os.PathLike[str]], root: str | os.PathLike[str] | None = None
) -> Iterator[Path | ManifestError]:
    """Yield every manifest file the paths name (directories walked), or an error per bad path.

    With `root`, relative paths are taken from it, every path must resolve inside it, no
    symlink may lead out of it, and files are named relative to it. Without, each directory
    given is its own root and a file given by name is read as named.
    """
    root_path = Path(root).resolve() if root is not None else None
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if root_path is not None and not path.is_absolute():
            path = root_path / path
        if not path.exists():
            kind = "broken symlink" if path.is_symlink() else "no such file or directory"
            yield file_error(path, root_path, "not_found", kind)
            continue
        if root_path is not None and not _is_within(path.resolve(), root_path):
            yield file_error(
                path, root_path, "symlink_escape", f"resolves outside {root_path}: not read"
            )
            continue
        if path.is_dir():
            yield from _walk(path, root_path or path.resolve(), root_path, seen)
        else:
            yield path


def decode(data: bytes) -> str:
    """Return the text of a manifest file (UTF-8, or UTF-16 with a BOM); raise UnicodeError."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    return data.decode("utf-8-sig")


def read_manifest_file(path: Path, name: str, limits: Limits) -> str | ManifestError:
    """Return a file's text, or an error if it is not a regular file, too large or not text.

    The size is checked with stat before reading and at most the limit is read, so a huge
    file never lands in memory. `name` is how errors name the file. The file is opened
    read-only and never written.
    """

    def error(type_: str, message: str) -> ManifestError:
        return ManifestError(name, None, None, None, (), type_, message)

    try:
        info = path.stat()
    except OSError as exc:
        return error("unreadable", f"cannot read: {exc.strerror}")
    if not stat.S_ISREG(info.st_mode):
        return error("not_a_file", "not a regular file: not read")
    if info.st_size > limits.max_file_bytes:
        return error(
            "too_large",
            f"file is {info.st_size} bytes, over the limit of {limits.max_file_bytes}: "
            "split it into smaller files",
        )
    try:
        with path.open("rb") as handle:
            data = handle.read(limits.max_file_bytes + 1)
    except OSError as exc:
        return error("unreadable", f"cannot read: {exc.strerror}")
    if len(data) > limits.max_file_bytes:
        return error("too_large", f"file grew over the limit of {limits.max_file_bytes} bytes")
    try:
        return decode(data)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return ManifestError(
            name,
            line,
            column,
            None,
            (),
            "encoding",
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be decoded",
        )
