"""A git repository of manifests as a source (gitpython): a URL or path, a branch, a sub-path."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import git

from controller.manifests import load_paths
from controller.sources.base import Snapshot, SourceError


class GitSource:
    """Clones once into `cache_dir`, then fetches; each snapshot is the branch's head commit.

    The checkout is Corral's own clone, so it is reset hard to the fetched commit:
    local edits there are never applied. The sub-path must stay inside the repository.
    """

    def __init__(
        self,
        url: str,
        cache_dir: Path | str,
        *,
        branch: str = "main",
        path: str = ".",
        name: str | None = None,
    ) -> None:
        self.url = url
        self.branch = branch
        self.subpath = path
        self.name = name or f"git:{redact_url(url)}#{branch}:{path}"
        key = hashlib.sha256(f"{url}\0{branch}".encode()).hexdigest()[:12]
        self.workdir = Path(cache_dir) / f"git-{key}"
        self._lock = threading.Lock()

    def fetch(self) -> git.Repo:
        """Clone or fetch, then check out the branch head; raise SourceError on any failure."""
        try:
            if (self.workdir / ".git").is_dir():
                repo = git.Repo(self.workdir)
                repo.remotes.origin.fetch(self.branch, prune=True)
            else:
                self.workdir.parent.mkdir(parents=True, exist_ok=True)
                repo = git.Repo.clone_from(
                    self.url, self.workdir, branch=self.branch, single_branch=True
                )
            commit = repo.commit(f"origin/{self.branch}")
            repo.git.checkout("--force", "--detach", commit.hexsha)
            repo.git.clean("-ffdx")
            return repo
        except (
            git.GitCommandError,
            git.NoSuchPathError,
            git.InvalidGitRepositoryError,
            ValueError,
        ) as exc:
            raise SourceError(self.name, self._scrub(_git_message(exc))) from exc

    def _scrub(self, message: str) -> str:
        """Return `message` with the URL's password (if any) replaced by ***."""
        secret = urlsplit(self.url).password if "://" in self.url else None
        return message.replace(secret, "***") if secret else message

    def revision(self) -> str:
        """Return the commit SHA the branch points at in the repository (`git ls-remote`:
        nothing is fetched); raise SourceError when the repository or branch is unreachable.
        """
        try:
            found = git.cmd.Git().ls_remote(self.url, f"refs/heads/{self.branch}")
        except git.GitCommandError as exc:
            raise SourceError(self.name, self._scrub(_git_message(exc))) from exc
        if not found:
            raise SourceError(self.name, f"branch {self.branch!r} does not exist")
        return found.split()[0]

    def snapshot(self) -> Snapshot:
        """Return the manifests at the branch head, loaded and validated."""
        with self._lock:
            repo = self.fetch()
            commit = repo.head.commit
            root = self.workdir.resolve()
            target = (root / self.subpath).resolve()
            if target != root and root not in target.parents:
                raise SourceError(self.name, f"path {self.subpath!r} leaves the repository")
            if not target.is_dir():
                raise SourceError(
                    self.name, f"path {self.subpath!r} is not a directory at {commit.hexsha[:12]}"
                )
            result = load_paths([target], root=root)
            detail = {
                "commit": commit.hexsha,
                "author": f"{commit.author.name} <{commit.author.email}>",
                "message": commit.message.strip().splitlines()[0] if commit.message else "",
                "time": commit.committed_datetime.isoformat(),
            }
            return Snapshot(self.name, commit.hexsha, result, detail)


def redact_url(url: str) -> str:
    """Return `url` with the password of its user info replaced by *** (paths unchanged).

    A repository URL may carry a token (https://user:TOKEN@host/repo.git); the URL is
    shown as the source's name, stored in its settings and logged, the token never.
    """
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _git_message(exc: Exception) -> str:
    if isinstance(exc, git.GitCommandError):
        stderr = (exc.stderr or "").strip().replace("stderr: ", "").strip("'\n ")
        return f"git {exc.command[1] if len(exc.command) > 1 else ''} failed: {stderr}"
    return str(exc)
