"""`corral host drain NAME` / `corral host undrain NAME`: maintenance on or off from the CLI.

Draining sets the Host's `spec.maintenance` in the store; the running controller then
live-migrates its VMs off within the disruption budget and reports phase Maintenance.

Who owns the Host decides how. A Host created through the API or the CLI (source `api:*`)
is changed in place. A Host from git, a directory or Kubernetes has its manifest as the
source of truth: the command refuses and says to change the manifest, unless the operator
passes `--take-over`, a documented override: the Host is taken over for the CLI (source
`api:cli`, the original source kept in the `corral.dev/taken-from` annotation), so the
source's later revisions no longer change it. `undrain` of a taken-over Host hands it back
to its source, whose next revision is the truth again.
"""

from __future__ import annotations

from typing import Annotated

import typer

from controller.cli.common import DbOption, StateDirOption, console, err_console, open_store_or_exit
from controller.store import Conflict, NotFound, Store, StoredObject
from schemas.host import Host

API_PREFIX = "api:"
CLI_SOURCE = "api:cli"
TAKEN_FROM_ANNOTATION = "corral.dev/taken-from"
"""Where a Host taken over from its source came from (the REST API uses the same key)."""

MAINTENANCE_REQUESTED = "MaintenanceRequested"
"""An operator put the host in maintenance from the CLI."""
MAINTENANCE_ENDED = "MaintenanceEnded"
"""An operator took the host out of maintenance from the CLI."""

host_app = typer.Typer(help="Host operations: maintenance on and off.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Host name")]


class HostOwnedBySource(Exception):
    """The Host belongs to a git, directory or Kubernetes source; its manifest decides."""

    def __init__(self, name: str, source: str) -> None:
        super().__init__(
            f"Host/{name} is owned by {source}: its manifest is the source of truth. Set "
            f"spec.maintenance there (and commit), or pass --take-over to override it from the "
            f"CLI (the source then stops changing this Host until `corral host undrain {name}`)"
        )
        self.host = name
        self.source = source


def set_maintenance(store: Store, name: str, on: bool, take_over: bool = False) -> StoredObject:
    """Returns the stored Host after setting its spec.maintenance to `on`.

    Raises NotFound, HostOwnedBySource (a source-owned Host without `take_over`), or Conflict
    (another writer changed it meanwhile: retry). Turning maintenance off hands a Host that
    was taken over back to its source.
    """
    current = store.get("Host", name)
    host = current.obj
    assert isinstance(host, Host)
    annotations = dict(host.metadata.annotations)
    source = current.source
    if not source.startswith(API_PREFIX):
        if not take_over:
            raise HostOwnedBySource(name, source)
        annotations[TAKEN_FROM_ANNOTATION] = source
        source = CLI_SOURCE
    elif not on and TAKEN_FROM_ANNOTATION in annotations:
        source = annotations.pop(TAKEN_FROM_ANNOTATION)
    changed = host.model_copy(
        update={
            "metadata": host.metadata.model_copy(update={"annotations": annotations}),
            "spec": host.spec.model_copy(update={"maintenance": on}),
        }
    )
    stored = store.put(
        changed,
        source,
        expected_version=current.resource_version,
        take_ownership=source != current.source,
    )
    store.record_event(
        "Host",
        name,
        "Normal",
        MAINTENANCE_REQUESTED if on else MAINTENANCE_ENDED,
        f"Maintenance {'requested' if on else 'ended'} from the CLI"
        + (f" (taken over from {current.source})" if source == CLI_SOURCE and take_over else "")
        + (f" (handed back to {source})" if source != current.source and not on else ""),
        component="cli",
    )
    return stored


def _run(name: str, on: bool, take_over: bool, db: str | None, state_dir) -> None:
    store = open_store_or_exit(db, state_dir)
    try:
        try:
            stored = set_maintenance(store, name, on, take_over)
        except NotFound:
            err_console.print(f"[red]error:[/] Host/{name} not found")
            raise typer.Exit(1) from None
        except HostOwnedBySource as exc:
            err_console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
        except Conflict as exc:
            err_console.print(f"[red]error:[/] Host/{name} changed meanwhile, try again: {exc}")
            raise typer.Exit(1) from None
    finally:
        store.close()
    if on:
        console.print(
            f"Host/{name}: maintenance on (owner {stored.source}); the controller live-migrates "
            f"its VMs off, then reports phase Maintenance (corral get host {name})"
        )
    else:
        console.print(
            f"Host/{name}: maintenance off (owner {stored.source}); it takes VMs again and "
            "the balancer may move VMs back"
        )


@host_app.command("drain")
def drain(
    name: NameArg,
    take_over: Annotated[
        bool,
        typer.Option("--take-over", help="Override a git/directory-owned Host from the CLI"),
    ] = False,
    db: DbOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Put a host in maintenance: its VMs move off live, no new VM is placed there."""
    _run(name, True, take_over, db, state_dir)


@host_app.command("undrain")
def undrain(
    name: NameArg,
    take_over: Annotated[
        bool,
        typer.Option("--take-over", help="Override a git/directory-owned Host from the CLI"),
    ] = False,
    db: DbOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """End a host's maintenance (a taken-over Host goes back to its source)."""
    _run(name, False, take_over, db, state_dir)


def register(app: typer.Typer) -> None:
    """Adds the `host` command group to the corral app."""
    app.add_typer(host_app, name="host")
