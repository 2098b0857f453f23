"""The manifest-source options of `corral up`, `apply` and `plan`, declared once.

A command takes `source: SourceOptions` as its first parameter and is decorated with
`with_source_options`: typer then sees PATH, --git, --branch, --path, --prune, --db,
--state-dir, --certs and the --etcd-* options in its place, and the command receives them gathered.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from arbiter import EtcdSettings
from controller.cli.common import DbOption, StateDirOption, make_source
from controller.cli.etcdopts import (
    EtcdCaOpt,
    EtcdCertOpt,
    EtcdEndpointsOpt,
    EtcdKeyOpt,
    etcd_settings_or_exit,
)
from controller.cli.signature import declare_options, keyword
from controller.loop import SourceSetting

PathArg = Annotated[Path | None, typer.Argument(help="Directory of manifests (watched)")]
GitOpt = Annotated[str | None, typer.Option("--git", help="Git repository URL or path")]
BranchOpt = Annotated[str, typer.Option("--branch", help="Git branch")]
SubpathOpt = Annotated[str, typer.Option("--path", help="Sub-directory of the repository")]
PruneOpt = Annotated[
    bool, typer.Option("--prune/--no-prune", help="Delete objects removed from the source")
]
CertsOpt = Annotated[
    Path | None, typer.Option("--certs", help="Controller client certs (corral certs controller)")
]


SOURCE_PARAMETERS = (
    keyword("path", PathArg, None),
    keyword("git", GitOpt, None),
    keyword("branch", BranchOpt, "main"),
    keyword("subpath", SubpathOpt, "."),
    keyword("prune", PruneOpt, False),
    keyword("db", DbOption, None),
    keyword("state_dir", StateDirOption, None),
    keyword("certs", CertsOpt, None),
    keyword("etcd_endpoints", EtcdEndpointsOpt, None),
    keyword("etcd_ca", EtcdCaOpt, None),
    keyword("etcd_cert", EtcdCertOpt, None),
    keyword("etcd_key", EtcdKeyOpt, None),
)


@dataclass(frozen=True)
class SourceOptions:
    """Where the manifests come from, which store holds the fleet, and the client certs."""

    path: Path | None
    git: str | None
    branch: str
    subpath: str
    prune: bool
    db: str | None
    state_dir: Path | None
    certs: Path | None
    etcd_endpoints: str | None = None
    etcd_ca: Path | None = None
    etcd_cert: Path | None = None
    etcd_key: Path | None = None

    def etcd(self) -> EtcdSettings | None:
        """Return the checked etcd settings, None without endpoints (exit 2 when bad)."""
        return etcd_settings_or_exit(
            self.etcd_endpoints, self.etcd_ca, self.etcd_cert, self.etcd_key
        )

    def setting(self) -> SourceSetting:
        """Return the source setting for PATH or --git (exit 2 unless exactly one is given)."""
        return make_source(
            self.path, self.git, self.branch, self.subpath, self.prune, self.state_dir
        )


def with_source_options(*, prune: bool = True) -> Callable[[Callable[..., Any]], Any]:
    """Return a decorator that declares the source options in place of `source`.

    Without `prune` the command has no --prune/--no-prune and never prunes.
    """
    shared = [p for p in SOURCE_PARAMETERS if prune or p.name != "prune"]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def run(**kwargs: Any) -> Any:
            values = {p.name: kwargs.pop(p.name) for p in shared}
            values.setdefault("prune", False)
            return command(SourceOptions(**values), **kwargs)

        return declare_options(command, run, ["source"], before=shared)

    return decorate
