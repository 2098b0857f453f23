"""Options declared once and shared by several typer commands.

Typer reads a command's options from its signature. A decorator that gathers shared
options swaps the command's leading parameters (what it receives) for the options
(what typer shows), with `declare_options`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any


def keyword(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    """Return a keyword-only parameter `name` (a typer Annotated type) with its default."""
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def declare_options(
    command: Callable[..., Any],
    run: Callable[..., Any],
    leading: Sequence[str],
    *,
    before: Sequence[inspect.Parameter] = (),
    after: Sequence[inspect.Parameter] = (),
) -> Callable[..., Any]:
    """Return `run` showing typer `command`'s parameters without its `leading` ones,
    with `before` ahead of them and `after` behind.

    Raises TypeError when `command` does not start with the `leading` parameters.
    """
    own = list(inspect.signature(command, eval_str=True).parameters.values())
    if [p.name for p in own[: len(leading)]] != list(leading):
        raise TypeError(f"{command.__name__} must take {', '.join(leading)} first")
    rest = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own[len(leading) :]]
    parameters = [*before, *rest, *after]
    run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in parameters}
    return run
