"""`corral serve`, `corral token create|list|revoke`, `corral operator`: the API's doors."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from controller.api.tokens import TokenStore
from controller.cli.common import DbOption, StateDirOption, console, err_console, open_store_or_exit
from controller.store import StoreError, default_state_dir

token_app = typer.Typer(help="Create, list and revoke API bearer tokens.", no_args_is_help=True)

ListenOpt = Annotated[str, typer.Option("--listen", help="HOST:PORT to serve on")]
CertsOpt = Annotated[
    Path | None,
    typer.Option("--certs", help="Server certs dir (corral certs host corral-api): TLS"),
]
InsecureOpt = Annotated[
    bool, typer.Option("--insecure-dev", help="Plain HTTP, loopback only, for development")
]


def _tokens(db: str | None, state_dir: Path | None) -> TokenStore:
    directory = state_dir or default_state_dir()
    if not db:
        directory.mkdir(parents=True, exist_ok=True)
    try:
        return TokenStore.open(db, directory)
    except StoreError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc


def serve(
    listen: ListenOpt = "127.0.0.1:8480",
    certs: CertsOpt = None,
    insecure_dev: InsecureOpt = False,
    db: DbOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Serve the REST API on the store (the reconcile loop runs elsewhere: `corral up`)."""
    from controller.api.app import create_app
    from controller.api.serve import ServeConfigError, build_server

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    store = open_store_or_exit(db, state_dir)
    tokens = _tokens(db, state_dir)
    try:
        server = build_server(create_app(store, tokens), listen, certs, insecure_dev=insecure_dev)
    except ServeConfigError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    scheme = "https" if certs else "http"
    console.print(f"[bold]corral serve[/]: {scheme}://{listen}/api/v1 -> {store.url}")
    try:
        server.run()
    finally:
        tokens.close()
        store.close()


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="Who the token is for (recorded on audit events)")],
    role: Annotated[str, typer.Option("--role", help="viewer, operator or admin")] = "viewer",
    scope: Annotated[
        str | None, typer.Option("--scope", help="Label selector the token is limited to")
    ] = None,
    db: DbOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Create a token and print it (shown this once; only its hash is kept)."""
    from controller.api.tokens import TokenError

    tokens = _tokens(db, state_dir)
    try:
        typer.echo(tokens.create(name, role, scope))
    except TokenError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    finally:
        tokens.close()


@token_app.command("list")
def token_list(db: DbOption = None, state_dir: StateDirOption = None) -> None:
    """List tokens (never their secrets)."""
    tokens = _tokens(db, state_dir)
    try:
        table = Table("NAME", "ID", "ROLE", "SCOPE", "CREATED", "REVOKED")
        for info in tokens.list():
            table.add_row(
                info.name,
                info.id,
                info.role.value,
                info.scope or "",
                info.created_at.strftime("%Y-%m-%d %H:%M"),
                info.revoked_at.strftime("%Y-%m-%d %H:%M") if info.revoked_at else "",
            )
        console.print(table)
    finally:
        tokens.close()


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Argument()], db: DbOption = None, state_dir: StateDirOption = None
) -> None:
    """Revoke a token: refused everywhere within seconds."""
    tokens = _tokens(db, state_dir)
    try:
        if not tokens.revoke(name):
            err_console.print(f"[red]error:[/] no live token named {name!r}")
            raise typer.Exit(1)
        console.print(f"Revoked {name}.")
    finally:
        tokens.close()


def operator(
    namespace: Annotated[
        list[str] | None, typer.Option("--namespace", "-n", help="Watch these namespaces")
    ] = None,
    prune: Annotated[
        bool, typer.Option("--prune/--no-prune", help="Deleting a CR deletes the object")
    ] = True,
    db: DbOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Run the Kubernetes operator: Corral CRs feed the store; their .status is written back."""
    from controller.kube.operator import run_operator

    store = open_store_or_exit(db, state_dir)
    try:
        run_operator(store, namespaces=namespace or [], prune=prune)
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("operator")(operator)
    app.add_typer(token_app, name="token")
