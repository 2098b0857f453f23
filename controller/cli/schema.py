"""`corral schema`: write the JSON Schema and the Kubernetes CRDs generated from the models."""

from __future__ import annotations

from pathlib import Path

import typer

from schemas.export import write_crds, write_json_schemas


def schema(
    json_schema: Path | None = typer.Option(
        None, "--json-schema", help="Write one JSON Schema per kind into this directory."
    ),
    crds: Path | None = typer.Option(
        None, "--crds", help="Write one CustomResourceDefinition per kind into this directory."
    ),
) -> None:
    """Write JSON Schemas and/or CRDs for every kind; files already up to date are kept."""
    if json_schema is None and crds is None:
        typer.echo("error: give --json-schema DIR, --crds DIR or both", err=True)
        raise typer.Exit(2)
    written: list[Path] = []
    try:
        if json_schema is not None:
            written += write_json_schemas(json_schema)
        if crds is not None:
            written += write_crds(crds)
    except OSError as exc:
        typer.echo(f"error: cannot write {exc.filename}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    for path in written:
        typer.echo(str(path))


def register(app: typer.Typer) -> None:
    app.command("schema")(schema)
