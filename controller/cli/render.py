"""Tables and plan rendering for the terminal (rich)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from rich.console import Group
from rich.table import Table
from rich.text import Text

from controller.cli.common import console
from controller.conditions import summarize
from controller.plan import Plan
from controller.plan.admission import fleet_admission
from controller.store import Store, StoredObject

READY_STYLE = {"True": "green", "False": "red", "Unknown": "yellow"}


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """Return a kubectl-style age: 45s, 12m, 3h, 2d."""
    if moment is None:
        return "-"
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def phase_and_host(stored: StoredObject) -> tuple[str, str]:
    """Return the object's phase and host from its status, "-" when it has none."""
    status = stored.obj.status
    phase = getattr(status, "phase", None) if status is not None else None
    host = getattr(status, "host", None) if status is not None else None
    return (phase.value if hasattr(phase, "value") else str(phase or "-")), str(host or "-")


def objects_table(items: list[StoredObject], wide: bool = False) -> Table:
    """Return a `corral get` table: KIND/NAME, READY, PHASE, HOST, AGE, MESSAGE."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("NAME", "READY", "PHASE", "HOST", "AGE", "MESSAGE"):
        table.add_column(column, overflow="fold" if column == "MESSAGE" else "ellipsis")
    if wide:
        table.add_column("IPS")
        table.add_column("REVISION")
    for stored in items:
        ready, reason, message = summarize(stored.obj.status)
        phase, host = phase_and_host(stored)
        row = [
            f"{stored.kind}/{stored.name}",
            Text(ready, style=READY_STYLE.get(ready, "")),
            phase,
            host,
            age(stored.created_at),
            f"{reason}: {message}" if reason else message,
        ]
        if wide:
            ips = getattr(stored.obj.status, "ips", None) or []
            row += [",".join(ips) or "-", (stored.revision or "-")[:12]]
        table.add_row(*row)
    return table


def status_table(store: Store) -> Table:
    """Return the fleet at a glance: every object with its Ready condition."""
    items = store.list().items
    return objects_table(items)


def render_plan(plan: Plan, output: str = "text") -> None:
    """Print a plan: each action with its reason and diff; or JSON with -o json."""
    if output == "json":
        console.print_json(
            json.dumps(
                {
                    "revision": plan.revision,
                    "actions": [
                        {
                            "type": a.type.value,
                            "target": a.ref,
                            "host": a.host,
                            "reason": a.reason,
                            "message": a.message,
                            "wave": a.wave,
                            "disruptive": a.disruptive,
                            "diff": list(a.diff),
                        }
                        for a in plan.actions
                    ],
                    "verdicts": {
                        f"{k[0]}/{k[1]}": {
                            "ready": v.ready,
                            "stalled": v.stalled,
                            "reason": v.reason,
                            "message": v.message,
                        }
                        for k, v in sorted(plan.verdicts.items())
                    },
                    "haAdmission": plan_admission(plan),
                }
            )
        )
        return
    if plan.empty:
        console.print("[green]No changes.[/] The fleet matches the manifests.")
    for action in plan.actions:
        mark = "[red]![/]" if action.disruptive else "[cyan]~[/]"
        console.print(
            f"{mark} [bold]{action.type.value}[/] {action.ref}"
            f"{f' on {action.host}' if action.host else ''}  [dim]({action.reason})[/]"
        )
        console.print(f"    {action.message}")
        for op in action.diff[:20]:
            value = json.dumps(op.get("value")) if "value" in op else ""
            console.print(f"    [yellow]{op['op']:>7}[/] {op['path']} {value}"[:200])
        if len(action.diff) > 20:
            console.print(f"    ... {len(action.diff) - 20} more changes")
    stalled = [v for v in plan.verdicts.values() if v.stalled]
    if stalled:
        console.print(
            Group(
                *[
                    Text(f"Stalled {v.key[0]}/{v.key[1]}: {v.reason}: {v.message}", style="red")
                    for v in stalled
                ]
            )
        )
    console.print(
        f"\nPlan: {len(plan.actions)} actions"
        f" ({sum(a.disruptive for a in plan.actions)} disruptive), "
        f"{len(stalled)} stalled."
    )
    line = plan_admission(plan)
    if line is not None:
        console.print(Text(line), soft_wrap=True)


def plan_admission(plan: Plan) -> str | None:
    """Return the "HA admission: ..." line of the placements the plan leaves (None: no host
    is up)."""
    verdict = fleet_admission(
        (key[1], v.fields.get("ha_admission"))
        for key, v in plan.verdicts.items()
        if key[0] == "Host"
    )
    return verdict.line if verdict is not None else None
