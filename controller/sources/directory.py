"""A directory of manifests as a source, watched with watchfiles."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

from controller.manifests import MANIFEST_SUFFIXES, load_paths
from controller.manifests.files import iter_manifest_files
from controller.sources.base import Snapshot, SourceError


class DirectorySource:
    """Manifests under one directory; the revision is a hash of every file's path and bytes."""

    def __init__(self, path: Path | str, *, name: str | None = None) -> None:
        self.path = Path(path).resolve()
        self.name = name or f"dir:{self.path}"

    def revision(self) -> str:
        """Return the content hash of the manifests now on disk ("sha256:" + 16 hex digits)."""
        digest = hashlib.sha256()
        for file in sorted(self._files()):
            digest.update(str(file.relative_to(self.path)).encode())
            digest.update(b"\0")
            digest.update(file.read_bytes())
            digest.update(b"\0")
        return "sha256:" + digest.hexdigest()[:16]

    def snapshot(self) -> Snapshot:
        """Return the manifests now on disk, loaded and validated; raise SourceError if gone."""
        if not self.path.is_dir():
            raise SourceError(self.name, f"{self.path} is not a directory")
        revision = self.revision()
        result = load_paths([self.path], root=self.path)
        return Snapshot(self.name, revision, result, {"path": str(self.path)})

    def watch(self, stop: threading.Event, debounce_ms: int = 150) -> Iterator[None]:
        """Yield once per batch of changes to manifest files, until `stop` is set."""
        from watchfiles import watch

        for changes in watch(
            self.path,
            stop_event=stop,
            debounce=debounce_ms,
            step=50,
            rust_timeout=500,
            yield_on_timeout=False,
        ):
            if any(Path(path).suffix in MANIFEST_SUFFIXES for _, path in changes):
                yield None

    def _files(self) -> Iterator[Path]:
        """Yield the files the loader reads (never a symlink out of the directory)."""
        for item in iter_manifest_files([self.path], root=self.path):
            if isinstance(item, Path):
                yield item
