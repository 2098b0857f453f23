"""Sources: a directory's revision follows its manifests' content; a git source follows its
branch head inside its sub-path, and every failure to read becomes a SourceError."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import git
import pytest

from controller.sources import DirectorySource, GitSource, SourceError

AUTHOR = git.Actor("Ada Ops", "ada@example.org")


def vm_manifest(name: str, memory: str = "96Mi") -> str:
    return f"""\
apiVersion: corral.dev/v1alpha1
kind: VirtualMachine
metadata:
  name: {name}
spec:
  cpus: 1
  memory: {memory}
"""


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    path = tmp_path / "fleet"
    path.mkdir()
    (path / "web.yaml").write_text(vm_manifest("web-1"))
    (path / "db.yaml").write_text(vm_manifest("db-1"))
    return path


# --- directory ----------------------------------------------------------------------------


def edit_content(path: Path) -> None:
    (path / "web.yaml").write_text(vm_manifest("web-1", "128Mi"))


def add_file(path: Path) -> None:
    (path / "sub").mkdir()
    (path / "sub" / "cache.yml").write_text(vm_manifest("cache-1"))


def rename_file(path: Path) -> None:
    (path / "db.yaml").rename(path / "database.yaml")


def delete_file(path: Path) -> None:
    (path / "db.yaml").unlink()


def touch_only(path: Path) -> None:
    os.utime(path / "web.yaml", (1, 1))


def rewrite_same(path: Path) -> None:
    (path / "web.yaml").write_text(vm_manifest("web-1"))


def other_file(path: Path) -> None:
    (path / "README.md").write_text("notes")


@pytest.mark.parametrize(
    ("change", "moves"),
    [
        pytest.param(edit_content, True, id="edit"),
        pytest.param(add_file, True, id="add-in-subdir"),
        pytest.param(rename_file, True, id="rename"),
        pytest.param(delete_file, True, id="delete"),
        pytest.param(touch_only, False, id="touch"),
        pytest.param(rewrite_same, False, id="same-bytes"),
        pytest.param(other_file, False, id="not-a-manifest"),
    ],
)
def test_directory_revision_follows_content(fleet_dir: Path, change, moves: bool):
    source = DirectorySource(fleet_dir)
    before = source.revision()
    assert source.revision() == before
    change(fleet_dir)
    assert (source.revision() != before) is moves


def test_directory_snapshot(fleet_dir: Path):
    snapshot = DirectorySource(fleet_dir, name="fleet").snapshot()
    assert snapshot.ok
    assert snapshot.source == "fleet"
    assert snapshot.revision.startswith("sha256:") and len(snapshot.revision) == 7 + 16
    assert sorted(o.resource.metadata.name for o in snapshot.result.objects) == ["db-1", "web-1"]


def test_directory_snapshot_with_errors_is_not_ok(fleet_dir: Path):
    (fleet_dir / "web.yaml").write_text(vm_manifest("web-1", "lots"))
    snapshot = DirectorySource(fleet_dir).snapshot()
    assert not snapshot.ok
    [error] = snapshot.result.errors
    assert str(error).startswith("web.yaml:7:11: ")


def test_directory_missing_is_a_source_error(tmp_path: Path):
    with pytest.raises(SourceError, match="is not a directory") as caught:
        DirectorySource(tmp_path / "gone", name="dir:gone").snapshot()
    assert caught.value.source == "dir:gone"


def test_directory_watch_wakes_on_a_save(fleet_dir: Path):
    source = DirectorySource(fleet_dir)
    stop = threading.Event()
    woke = threading.Event()

    def watch() -> None:
        for _ in source.watch(stop):
            woke.set()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not woke.is_set() and time.monotonic() < deadline:
            # Saved until the watcher (started asynchronously) has seen one.
            edit_content(fleet_dir)
            woke.wait(0.5)
        assert woke.is_set(), "no wake-up within 10 s of saving a manifest"
    finally:
        stop.set()
        thread.join(timeout=5)


# --- git ----------------------------------------------------------------------------------


class Remote:
    """A repository playing the remote: fleet manifests under `fleet/`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.repo = git.Repo.init(path, initial_branch="main")
        (path / "fleet").mkdir()

    def commit(self, message: str, files: dict[str, str]) -> str:
        for name, text in files.items():
            file = self.path / name
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(text)
            self.repo.index.add([name])
        return self.repo.index.commit(message, author=AUTHOR, committer=AUTHOR).hexsha


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    remote = Remote(tmp_path / "remote")
    remote.commit("web", {"fleet/web.yaml": vm_manifest("web-1")})
    return remote


def names(snapshot) -> list[str]:
    return sorted(o.resource.metadata.name for o in snapshot.result.objects)


def test_git_follows_the_branch_head(remote: Remote, tmp_path: Path):
    source = GitSource(str(remote.path), tmp_path / "cache", branch="main", path="fleet")
    first = source.snapshot()
    assert first.revision == remote.repo.head.commit.hexsha
    assert names(first) == ["web-1"]
    assert first.detail["author"] == "Ada Ops <ada@example.org>"
    assert first.detail["message"] == "web"

    remote.repo.git.checkout("-b", "feature")
    remote.commit("feature only", {"fleet/feat.yaml": vm_manifest("feat-1")})
    remote.repo.git.checkout("main")
    assert source.snapshot().revision == first.revision, "other branches are not applied"

    second = remote.commit("db", {"fleet/db.yaml": vm_manifest("db-1")})
    snapshot = source.snapshot()
    assert (snapshot.revision, names(snapshot)) == (second, ["db-1", "web-1"])


def test_git_follows_a_rewritten_history(remote: Remote, tmp_path: Path):
    source = GitSource(str(remote.path), tmp_path / "cache", path="fleet")
    source.snapshot()
    remote.commit("db", {"fleet/db.yaml": vm_manifest("db-1")})
    source.snapshot()
    remote.repo.git.reset("--hard", "HEAD~1")
    amended = remote.commit("cache instead", {"fleet/cache.yaml": vm_manifest("cache-1")})
    snapshot = source.snapshot()
    assert (snapshot.revision, names(snapshot)) == (amended, ["cache-1", "web-1"])


def test_git_ignores_edits_in_its_own_checkout(remote: Remote, tmp_path: Path):
    source = GitSource(str(remote.path), tmp_path / "cache", path="fleet")
    source.snapshot()
    (source.workdir / "fleet" / "web.yaml").write_text(vm_manifest("web-1", "64Gi"))
    (source.workdir / "fleet" / "stray.yaml").write_text(vm_manifest("stray-1"))
    snapshot = source.snapshot()
    assert names(snapshot) == ["web-1"]
    [web] = [o.resource for o in snapshot.result.objects]
    assert web.spec.memory == 96 * 2**20


def test_git_only_reads_the_sub_path(remote: Remote, tmp_path: Path):
    remote.commit("elsewhere", {"other/db.yaml": vm_manifest("db-1")})
    snapshot = GitSource(str(remote.path), tmp_path / "cache", path="fleet").snapshot()
    assert names(snapshot) == ["web-1"]


def test_git_errors_name_the_file_in_the_repository(remote: Remote, tmp_path: Path):
    remote.commit("broken", {"fleet/web.yaml": vm_manifest("web-1", "12 GB")})
    snapshot = GitSource(str(remote.path), tmp_path / "cache", path="fleet").snapshot()
    assert not snapshot.ok
    [error] = snapshot.result.errors
    assert str(error).startswith("fleet/web.yaml:7:11: ")


@pytest.mark.parametrize(
    ("subpath", "message"),
    [
        pytest.param("../", "leaves the repository", id="dotdot"),
        pytest.param("fleet/../../x", "leaves the repository", id="nested-dotdot"),
        pytest.param("/etc", "leaves the repository", id="absolute"),
        pytest.param("escape", "leaves the repository", id="symlink-out"),
        pytest.param("missing", "is not a directory", id="missing"),
    ],
)
def test_git_sub_path_must_stay_inside(remote: Remote, tmp_path: Path, subpath, message):
    (remote.path / "escape").symlink_to(tmp_path)
    remote.repo.index.add(["escape"])
    remote.repo.index.commit("a link out", author=AUTHOR, committer=AUTHOR)
    source = GitSource(str(remote.path), tmp_path / "cache", path=subpath, name="git:fleet")
    with pytest.raises(SourceError, match=message) as caught:
        source.snapshot()
    assert caught.value.source == "git:fleet"


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("{tmp}/no-such-repo", id="missing-path"),
        pytest.param("{tmp}/not-a-repo", id="not-a-repo"),
        pytest.param("http://127.0.0.1:9/fleet.git", id="refused"),
    ],
)
def test_git_unreachable_is_a_source_error(tmp_path: Path, url: str):
    (tmp_path / "not-a-repo").mkdir()
    source = GitSource(url.format(tmp=tmp_path), tmp_path / "cache", name="git:x")
    with pytest.raises(SourceError, match="git clone failed") as caught:
        source.snapshot()
    assert caught.value.source == "git:x"


def test_git_missing_branch_is_a_source_error(remote: Remote, tmp_path: Path):
    with pytest.raises(SourceError, match="git clone failed"):
        GitSource(str(remote.path), tmp_path / "cache", branch="release").snapshot()


def test_git_remote_gone_after_clone_is_a_source_error(remote: Remote, tmp_path: Path):
    source = GitSource(str(remote.path), tmp_path / "cache", path="fleet")
    source.snapshot()
    (remote.path / ".git").rename(remote.path / "moved.git")
    with pytest.raises(SourceError, match="git fetch failed"):
        source.snapshot()


def test_git_revision_is_the_remote_head_without_fetching(remote: Remote, tmp_path: Path):
    source = GitSource(str(remote.path), tmp_path / "cache", path="fleet")
    assert source.revision() == remote.repo.head.commit.hexsha
    assert not source.workdir.exists()
    newer = remote.commit("db", {"fleet/db.yaml": vm_manifest("db-1")})
    assert source.revision() == newer


@pytest.mark.parametrize(
    ("url", "branch", "message"),
    [
        pytest.param("{remote}", "release", "branch 'release' does not exist", id="no-branch"),
        pytest.param("{tmp}/missing", "main", "git ls-remote failed", id="no-repo"),
    ],
)
def test_git_revision_errors(remote: Remote, tmp_path: Path, url, branch, message):
    url = url.format(remote=remote.path, tmp=tmp_path)
    source = GitSource(url, tmp_path / "cache", branch=branch, name="git:x")
    with pytest.raises(SourceError, match=message):
        source.revision()
