"""Options and helpers shared by the controller's commands: state dir, store, sources."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from controller.loop import SourceSetting
from controller.sources import DirectorySource, GitSource
from controller.sources.git import redact_url
from controller.store import Store, StoreError, default_state_dir, open_store

console = Console()
err_console = Console(stderr=True)

StateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="Where the SQLite store and caches live "
        "[default: $CORRAL_STATE_DIR or ~/.local/state/corral]",
    ),
]
DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (postgresql://...); default: SQLite in the state dir"),
]


def _never(_error: StoreError) -> bool:
    return False


def open_store_or_exit(
    db: str | None, state_dir: Path | None, *, passes: Callable[[StoreError], bool] = _never
) -> Store:
    """Return the store, or print the reason (naming the URL) and exit 2; an error for
    which `passes(error)` is true (it may go away) is raised to the caller instead."""
    directory = state_dir or default_state_dir()
    try:
        if not db:
            directory.mkdir(parents=True, exist_ok=True)
        return open_store(db, state_dir=directory)
    except StoreError as exc:
        if passes(exc):
            raise
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    except OSError as exc:
        err_console.print(f"[red]error:[/] --state-dir {directory}: {exc.strerror or exc}")
        raise typer.Exit(2) from exc


def make_source(
    path: Path | None,
    git: str | None,
    branch: str,
    subpath: str,
    prune: bool,
    state_dir: Path | None,
) -> SourceSetting:
    """Return the source setting for a directory PATH or a --git URL."""
    if (path is None) == (git is None):
        err_console.print("[red]error:[/] give a manifest directory or --git URL (one of them)")
        raise typer.Exit(2)
    if git is not None:
        cache = (state_dir or default_state_dir()) / "sources"
        shown = redact_url(git)
        source = GitSource(git, cache, branch=branch, path=subpath, name=f"git:{shown}")
        return SourceSetting(
            source, "git", "origin", prune, {"url": shown, "branch": branch, "path": subpath}
        )
    assert path is not None
    if not path.is_dir():
        err_console.print(f"[red]error:[/] {path} is not a directory")
        raise typer.Exit(2)
    resolved = path.resolve()
    return SourceSetting(
        DirectorySource(resolved), "dir", resolved.name or "root", prune, {"path": str(resolved)}
    )
