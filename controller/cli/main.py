"""The `corral` command: one typer app; each command group lives in its own module.

A module named in COMMANDS exposes `register(app: typer.Typer) -> None`. Modules are
imported only when their command runs (or for --help): `corral agent` does not pay for
the API server and the store, a controller-only machine without libvirt-python can
still run every other command, and start-up stays short.
"""

from __future__ import annotations

import importlib

import click
import typer
from typer.core import TyperGroup

COMMANDS: dict[str, str] = {
    "up": "controller.cli.up",
    "plan": "controller.cli.up",
    "apply": "controller.cli.up",
    "reconcile": "controller.cli.up",
    "validate": "controller.cli.validate",
    "schema": "controller.cli.schema",
    "status": "controller.cli.inspect",
    "get": "controller.cli.inspect",
    "describe": "controller.cli.inspect",
    "events": "controller.cli.inspect",
    "host": "controller.cli.host",
    "vm": "controller.cli.vm",
    "console": "controller.cli.console",
    "import": "controller.cli.importer",
    "export": "controller.cli.ovf",
    "volume": "controller.cli.volume",
    "template": "controller.cli.template",
    "serve": "controller.cli.api",
    "operator": "controller.cli.api",
    "token": "controller.cli.api",
    "agent": "controller.cli.agent",
    "certs": "controller.cli.certs",
    "lab": "controller.cli.lab",
    "controller": "controller.cli.controller",
    "report": "controller.cli.report",
}
"""Command name -> the module that registers it, in the order --help lists them."""


class LazyGroup(TyperGroup):
    """A typer group that imports a command's module when the command is looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        holder = typer.Typer()
        importlib.import_module(module).register(holder)
        return typer.main.get_group(holder).get_command(ctx, cmd_name)


app = typer.Typer(
    name="corral",
    cls=LazyGroup,
    help="GitOps for virtual-machine fleets on libvirt hosts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """GitOps for virtual-machine fleets on libvirt hosts."""


if __name__ == "__main__":
    app()
