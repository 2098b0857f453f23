"""What every source yields: a snapshot of validated objects (or errors) at a revision."""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.manifests import LoadResult


class SourceError(Exception):
    """A source could not be read at all (repository unreachable, path missing)."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


@dataclass(frozen=True)
class Snapshot:
    """The manifests of a source at one revision, loaded and validated.

    `revision` identifies the content: a commit SHA for git, a content hash for a
    directory. `detail` describes it for people (author, commit message, time).
    A snapshot with errors is never applied: the last good revision stays.
    """

    source: str
    revision: str
    result: LoadResult
    detail: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.result.errors
