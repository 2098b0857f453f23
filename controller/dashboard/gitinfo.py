"""Commit author and subject of the revisions git sources applied, read from local clones."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import git

from controller.store import SourceRecord


def commits_of(
    sources: Iterable[SourceRecord], revisions: Iterable[str]
) -> dict[str, tuple[str, str]]:
    """Return revision -> (author, subject) for revisions found in a git source's local repository.

    Sources whose URL is not a local repository give nothing: the page then shows the
    revision alone rather than fetching over the network to render a page.
    """
    wanted = {r for r in revisions if r and r != "-"}
    found: dict[str, tuple[str, str]] = {}
    for source in sources:
        if source.type != "git" or not wanted - found.keys():
            continue
        url = str(source.settings.get("url", ""))
        path = Path(url.removeprefix("file://"))
        if not url or not path.exists():
            continue
        try:
            repo = git.Repo(path)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            continue
        with repo:
            for revision in wanted - found.keys():
                try:
                    commit = repo.commit(revision)
                    message = str(commit.message)
                    author = f"{commit.author.name} <{commit.author.email}>"
                except (ValueError, git.BadName, git.GitCommandError):
                    continue
                subject = message.strip().splitlines()[0] if message.strip() else ""
                found[revision] = (author, subject)
    return found
