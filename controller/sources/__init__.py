"""Sources of desired state: each yields snapshots of manifests with a revision."""

from controller.sources.base import Snapshot, SourceError
from controller.sources.directory import DirectorySource
from controller.sources.git import GitSource

__all__ = ["DirectorySource", "GitSource", "Snapshot", "SourceError"]
