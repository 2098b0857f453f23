"""`corral import vmware PATH` and `corral import xen PATH`: foreign VMs to manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from controller.cli.common import console, err_console
from controller.v2v import V2VError, import_vm

import_app = typer.Typer(
    help="Import VMs from VMware (.vmx + .vmdk, .ova) or Xen (xl/xm config + disk).",
    no_args_is_help=True,
)

OutOpt = Annotated[Path, typer.Option("--out", help="Directory for the manifest (YAML)")]
DiskDirOpt = Annotated[
    Path | None,
    typer.Option("--disk-dir", help="Where converted qcow2 disks go [default: OUT/disks]"),
]
PoolOpt = Annotated[str, typer.Option("--pool", help="StoragePool of the imported volumes")]
NetworkOpt = Annotated[str, typer.Option("--network", help="Network the NICs attach to")]


def _run(kind: str, path: Path, out: Path, disk_dir: Path | None, pool: str, network: str) -> None:
    try:
        report = import_vm(kind, path, out, pool=pool, network=network, disk_dir=disk_dir)
    except V2VError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        err_console.print("nothing was imported", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    console.print(f"imported {report.vm}: {report.manifest}", highlight=False, soft_wrap=True)
    for line in report.conversions:
        console.print(f"  converted {line}", highlight=False, soft_wrap=True)
    for warning in report.warnings:
        err_console.print(f"  [yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)


@import_app.command("vmware")
def import_vmware(
    path: Annotated[Path, typer.Argument(help=".vmx file, directory holding one, or .ova")],
    out: OutOpt = Path("."),
    disk_dir: DiskDirOpt = None,
    pool: PoolOpt = "default",
    network: NetworkOpt = "default",
) -> None:
    """Import a VMware VM: convert its disks to qcow2 and write its manifests."""
    _run("vmware", path, out, disk_dir, pool, network)


@import_app.command("xen")
def import_xen(
    path: Annotated[Path, typer.Argument(help="xl/xm domain configuration file")],
    out: OutOpt = Path("."),
    disk_dir: DiskDirOpt = None,
    pool: PoolOpt = "default",
    network: NetworkOpt = "default",
) -> None:
    """Import a Xen VM: convert its disks to qcow2 and write its manifests."""
    _run("xen", path, out, disk_dir, pool, network)


def register(app: typer.Typer) -> None:
    """Add `corral import` (vmware, xen, ovf) to the CLI."""
    from controller.cli.ovf import import_ovf_command

    import_app.command("ovf")(import_ovf_command)
    app.add_typer(import_app, name="import")
