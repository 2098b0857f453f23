"""`corral validate PATH...`: check manifests, print every error, exit 1 on any."""

from __future__ import annotations

import json
from collections import Counter
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from controller.manifests import LoadResult, ManifestError, load_paths
from schemas.kinds import KINDS


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def summarize(result: LoadResult) -> str:
    """Return the one-line summary: "12 objects in 5 files are valid: 3 Host, 2 Network"."""
    files = len(dict.fromkeys(result.files))
    if result.errors:
        bad_files = len(dict.fromkeys(e.file for e in result.errors))
        return (
            f"{_plural(len(result.errors), 'error')} in {_plural(bad_files, 'file')} "
            f"({_plural(len(result.objects), 'valid object')} in {_plural(files, 'file')} read)"
        )
    counts = Counter(o.resource.kind for o in result.objects)
    kinds = ", ".join(f"{counts[kind]} {kind}" for kind in KINDS if counts[kind])
    verb = "is" if len(result.objects) == 1 else "are"
    summary = f"{_plural(len(result.objects), 'object')} in {_plural(files, 'file')} {verb} valid"
    return f"{summary}: {kinds}" if kinds else summary


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def render_error(error: ManifestError) -> Text:
    """Return an error as one styled line; its plain text is exactly `str(error)`."""
    text = Text()
    where = error.file if error.line is None else f"{error.file}:{error.line}:{error.column}"
    text.append(where, style="bold")
    if error.ref:
        text.append(": ")
        text.append(error.ref, style="cyan")
    if error.loc:
        text.append(": ")
        text.append(error.field, style="yellow")
    text.append(": ")
    text.append(error.message, style="red")
    return text


def to_json(result: LoadResult) -> str:
    """Return the machine-readable report: {"valid", "summary", "objects", "errors"}."""
    return json.dumps(
        {
            "valid": result.ok,
            "summary": summarize(result),
            "objects": [o.to_dict() for o in result.objects],
            "errors": [e.to_dict() for e in result.errors],
        },
        indent=2,
    )


def validate(
    paths: list[Path] = typer.Argument(..., help="Manifest files or directories."),
    output: OutputFormat = typer.Option(OutputFormat.TEXT, "--output", "-o", help="text|json"),
) -> None:
    """Check manifests: print every error with file:line:column; exit 1 if there is any."""
    result = load_paths(paths)
    if output is OutputFormat.JSON:
        typer.echo(to_json(result))
    else:
        out = Console(highlight=False, soft_wrap=True)
        err = Console(stderr=True, highlight=False, soft_wrap=True)
        for error in result.errors:
            out.print(render_error(error))
        (err if result.errors else out).print(summarize(result))
    if result.errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
