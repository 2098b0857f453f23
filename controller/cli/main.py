"""The `corral` command: one typer app; each command group lives in its own module.

A module listed in COMMAND_MODULES exposes `register(app: typer.Typer) -> None`.
Modules are imported lazily at start-up so that a missing optional dependency
(libvirt-python on a controller-only machine) only breaks the commands that need it.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="corral",
    help="GitOps for virtual-machine fleets on libvirt hosts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

COMMAND_MODULES: tuple[str, ...] = (
    "controller.cli.validate",
    "controller.cli.schema",
    "controller.cli.lab",
    "controller.cli.agent",
    "controller.cli.certs",
    "controller.cli.up",
    "controller.cli.inspect",
    "controller.cli.console",
    "controller.cli.api",
    "controller.cli.host",
    "controller.cli.vm",
)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_all()


if __name__ == "__main__":
    app()
