"""`corral certs`: the fleet CA and the agent/controller certificates for mutual TLS."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

certs_app = typer.Typer(help="Create the fleet CA and host/controller certificates.")

DirOption = Annotated[Path, typer.Option("--dir", help="certificates directory")]


def register(app: typer.Typer) -> None:
    """Add the `certs` command group to `app`."""
    app.add_typer(certs_app, name="certs")


@certs_app.command("init")
def certs_init(directory: DirOption) -> None:
    """Create the fleet CA (kept if it exists)."""
    from nodeagent.tls import make_ca

    typer.echo(make_ca(directory))


@certs_app.command("host")
def certs_host(
    name: Annotated[str, typer.Argument(help="host name (certificate CN and DNS SAN)")],
    directory: DirOption,
    ip: Annotated[list[str] | None, typer.Option("--ip", help="IP SAN, repeatable")] = None,
    dns: Annotated[list[str] | None, typer.Option("--dns", help="extra DNS SAN")] = None,
) -> None:
    """Issue a host's agent certificate into DIR/hosts/NAME/."""
    from nodeagent.tls import make_host_cert

    try:
        typer.echo(make_host_cert(directory, name, ips=ip or [], dns=dns or []))
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"corral certs host: {exc}", err=True)
        raise typer.Exit(2) from exc


@certs_app.command("controller")
def certs_controller(directory: DirOption) -> None:
    """Issue the controller's client certificate into DIR/controller/."""
    from nodeagent.tls import make_controller_cert

    try:
        typer.echo(make_controller_cert(directory))
    except FileNotFoundError as exc:
        typer.echo(f"corral certs controller: {exc}", err=True)
        raise typer.Exit(2) from exc
