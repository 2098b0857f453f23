"""`corral plan --what-if host-2=down[,host-3=down]`: the option's parsing and its report."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import NoReturn

import typer
from rich.text import Text

from controller.cli.common import console, err_console
from controller.scheduler.admission import HostLossOutcome
from controller.scheduler.text import plural

OPTION = "--what-if"
STATES = ("down",)
"""The host states a what-if may assume (a host coming back is not simulated)."""


def _fail(value: str, why: str) -> NoReturn:
    err_console.print(
        Text.assemble(("error:", "red"), f" {OPTION} {value!r}: {why}"), soft_wrap=True
    )
    raise typer.Exit(2)


def parse_what_if(text: str) -> list[str]:
    """Return the hosts "host-2=down,host-3=down" names, in order and once each.

    Exits 2 with a message naming the option and the item when an item is not
    HOST=down.
    """
    hosts: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        name, sep, state = item.partition("=")
        name, state = name.strip(), state.strip()
        if not sep or not name:
            _fail(item, "expected HOST=down, e.g. host-2=down")
        if state not in STATES:
            _fail(item, f"a host can only be assumed down (HOST=down), got {state!r}")
        if name not in hosts:
            hosts.append(name)
    return hosts


def check_hosts_down(down: Collection[str], known: Collection[str]) -> None:
    """Exit 2 naming the option and the first host in `down` that is not a desired Host."""
    for name in down:
        if name not in known:
            shown = ", ".join(sorted(known)[:10]) or "none"
            _fail(f"{name}=down", f"no Host named {name} (hosts: {shown})")


def render_what_if(outcome: HostLossOutcome, output: str = "text") -> None:
    """Print the restarts losing the hosts would make (VM -> target) and those it could
    not (with the scheduler's reason); JSON with output "json"."""
    if output == "json":
        console.print_json(
            json.dumps(
                {
                    "hostsDown": list(outcome.hosts_down),
                    "tolerated": outcome.tolerated,
                    "restarts": [
                        {"vm": d.vm, "from": d.host, "to": d.target, "message": d.message}
                        for d in outcome.restarts
                    ],
                    "stranded": [
                        {"vm": d.vm, "from": d.host, "reason": d.reason, "message": d.message}
                        for d in outcome.stranded
                    ],
                    "lost": list(outcome.lost),
                    "message": outcome.message,
                }
            )
        )
        return
    console.print(Text(f"What if {', '.join(outcome.hosts_down)} went down:", style="bold"))
    if outcome.restarts:
        console.print(f"HA restarts ({len(outcome.restarts)}):")
        for d in outcome.restarts:
            console.print(Text(f"  {d.vm} -> {d.target}  (from {d.host})"), soft_wrap=True)
    if outcome.stranded:
        console.print(Text(f"Could not restart ({len(outcome.stranded)}):", style="red"))
        for d in outcome.stranded:
            why = d.placement.message if d.placement is not None else d.message
            console.print(Text(f"  {d.vm} (from {d.host}): {d.reason}: {why}"), soft_wrap=True)
    if outcome.lost:
        console.print(Text(f"Lost with their host, HA off ({len(outcome.lost)}):"))
        console.print(Text("  " + ", ".join(outcome.lost)), soft_wrap=True)
    summary = f"{plural(len(outcome.restarts), 'HA VM')} would restart"
    if outcome.stranded:
        summary += f", {len(outcome.stranded)} would find no host"
    style = "green" if outcome.tolerated else "yellow"
    console.print(Text(summary + ".", style=style))
