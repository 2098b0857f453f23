"""`corral get`, `corral describe`, `corral events`, `corral status`: read the store."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text
from ruamel.yaml import YAML

from controller.cli.common import DbOption, StateDirOption, console, err_console, open_store_or_exit
from controller.cli.render import READY_STYLE, age, objects_table, phase_and_host
from controller.conditions import summarize
from controller.plan.admission import fleet_admission
from controller.store import NotFound
from schemas.kinds import KINDS, resolve_kind

OutputOpt = Annotated[str, typer.Option("-o", "--output", help="table, wide, yaml or json")]


def _kind(word: str) -> str:
    kind = resolve_kind(word)
    if kind is None:
        err_console.print(f"[red]error:[/] unknown kind {word!r}; one of: {', '.join(KINDS)}")
        raise typer.Exit(2)
    return kind


def _dump(obj, output: str) -> None:
    data = obj.model_dump(mode="json", by_alias=True, exclude_none=True)
    if output == "json":
        console.print_json(json.dumps(data))
    else:
        yaml = YAML()
        yaml.default_flow_style = False
        import io

        buffer = io.StringIO()
        yaml.dump(data, buffer)
        console.print(buffer.getvalue(), end="", markup=False, highlight=False)


def get(
    kind: Annotated[str, typer.Argument(help="vm, host, network, pool, volume, ...")],
    name: Annotated[str | None, typer.Argument()] = None,
    output: OutputOpt = "table",
    selector: Annotated[str | None, typer.Option("-l", "--selector", help="app=web")] = None,
    db: DbOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """List objects of a kind (or show one) with their Ready condition."""
    kind = _kind(kind)
    store = open_store_or_exit(db, state_dir)
    try:
        if name:
            try:
                items = [store.get(kind, name)]
            except NotFound:
                err_console.print(f"[red]error:[/] {kind}/{name} not found")
                raise typer.Exit(1) from None
        else:
            items = store.list(kind=kind, label_selector=selector).items
        if output in ("yaml", "json"):
            for item in items:
                _dump(item.obj, output)
                if output == "yaml" and len(items) > 1:
                    console.print("---")
        else:
            console.print(objects_table(items, wide=output == "wide"))
    finally:
        store.close()


def describe(
    kind: Annotated[str, typer.Argument()],
    name: Annotated[str, typer.Argument()],
    db: DbOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Show an object's spec, status, conditions, scheduler reasons and recent events."""
    kind = _kind(kind)
    store = open_store_or_exit(db, state_dir)
    try:
        try:
            stored = store.get(kind, name)
        except NotFound:
            err_console.print(f"[red]error:[/] {kind}/{name} not found")
            raise typer.Exit(1) from None
        obj = stored.obj
        phase, host = phase_and_host(stored)
        console.print(
            f"[bold]{kind}/{name}[/]   source {stored.source} @ "
            f"{(stored.revision or '-')[:12]}   generation {stored.generation}"
        )
        console.print(f"Phase: {phase}   Host: {host}")
        console.print("\n[bold]Spec[/]")
        _dump(obj.spec, "yaml")
        status = obj.status
        if status is not None:
            table = Table(
                "TYPE",
                "STATUS",
                "REASON",
                "SINCE",
                "MESSAGE",
                box=None,
                header_style="bold",
                title="Conditions",
                title_justify="left",
            )
            for c in status.conditions:
                table.add_row(
                    c.type,
                    f"[{READY_STYLE.get(c.status.value, '')}]{c.status.value}[/]",
                    c.reason,
                    age(c.last_transition_time),
                    c.message,
                )
            console.print(table)
            verdicts = getattr(status, "scheduling", None) or []
            if verdicts:
                sched = Table(
                    "HOST",
                    "FITS",
                    "SCORE",
                    "REASON",
                    box=None,
                    header_style="bold",
                    title="Scheduling",
                    title_justify="left",
                )
                for v in verdicts:
                    sched.add_row(
                        v.host,
                        "yes" if v.fits else "no",
                        "-" if v.score is None else f"{v.score:.2f}",
                        v.reason,
                    )
                console.print(sched)
            extra = status.model_dump(
                mode="json", by_alias=True, exclude_none=True, exclude={"conditions", "scheduling"}
            )
            if extra:
                console.print("\n[bold]Status[/]")
                _dump_dict(extra)
        _events_table(store.list_events(kind=kind, name=name, limit=15))
    finally:
        store.close()


def _dump_dict(data: dict) -> None:
    import io

    yaml = YAML()
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    console.print(buffer.getvalue(), end="", markup=False, highlight=False)


def _events_table(events) -> None:
    table = Table(
        "LAST",
        "TYPE",
        "REASON",
        "OBJECT",
        "COUNT",
        "MESSAGE",
        box=None,
        header_style="bold",
        title="Events",
        title_justify="left",
    )
    for e in events:
        style = "yellow" if e.type == "Warning" else ""
        table.add_row(
            age(e.last_seen),
            f"[{style}]{e.type}[/]" if style else e.type,
            e.reason,
            f"{e.kind}/{e.name}",
            str(e.count),
            e.message,
        )
    console.print(table)


def events(
    obj: Annotated[str | None, typer.Option("--for", help="KIND/NAME")] = None,
    warnings: Annotated[bool, typer.Option("--warnings", help="Only warnings")] = False,
    limit: Annotated[int, typer.Option(help="How many, newest first")] = 50,
    db: DbOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """List events newest first."""
    kind = name = None
    if obj:
        word, _, name = obj.partition("/")
        kind = resolve_kind(word) or word
    store = open_store_or_exit(db, state_dir)
    try:
        _events_table(
            store.list_events(
                kind=kind, name=name or None, type_="Warning" if warnings else None, limit=limit
            )
        )
    finally:
        store.close()


def status(db: DbOption = None, state_dir: StateDirOption = None) -> None:
    """Fleet summary: sources, hosts, HA admission (N+1), VMs by phase, what is not Ready."""
    store = open_store_or_exit(db, state_dir)
    try:
        sources = Table(
            "SOURCE",
            "APPLIED",
            "READY",
            "MESSAGE",
            box=None,
            header_style="bold",
            title="Sources",
            title_justify="left",
        )
        for src in store.list_sources():
            conds = (src.status or {}).get("conditions", [])
            ready = next((c for c in conds if c["type"] == "Ready"), None)
            sources.add_row(
                src.key,
                (src.last_applied_revision or "-")[:19],
                ready["status"] if ready else "-",
                ready["message"] if ready else "",
            )
        console.print(sources)
        items = store.list().items
        hosts = [s for s in items if s.kind == "Host"]
        observed = {o.host: o for o in store.list_observed()}
        table = Table(
            "HOST",
            "PHASE",
            "READY",
            "CPUS",
            "MEMORY",
            "VMS",
            "LAST SEEN",
            box=None,
            header_style="bold",
            title="Hosts",
            title_justify="left",
        )
        for h in hosts:
            phase, _ = phase_and_host(h)
            ready, _, _ = summarize(h.obj.status)
            obs = observed.get(h.name)
            state = (obs.state or {}) if obs else {}
            mem = state.get("memory_mib")
            free = state.get("free_memory_mib")
            table.add_row(
                h.name,
                phase,
                ready,
                str(state.get("cpus", "-")),
                f"{free}/{mem} MiB free" if mem else "-",
                str(sum(1 for d in state.get("domains", []) if d["state"] == "running")),
                age(obs.last_seen) if obs else "never",
            )
        console.print(table)
        verdict = fleet_admission(
            (h.name, h.obj.status.ha_admission if h.obj.status else None) for h in hosts
        )
        if verdict is not None:
            console.print(
                Text(verdict.line, style="green" if verdict.tolerated else "yellow"),
                soft_wrap=True,
            )
        vms = [s for s in items if s.kind == "VirtualMachine"]
        phases: dict[str, int] = {}
        for vm in vms:
            phases[phase_and_host(vm)[0]] = phases.get(phase_and_host(vm)[0], 0) + 1
        console.print(
            "VMs: " + (", ".join(f"{n} {p}" for p, n in sorted(phases.items())) or "none")
        )
        bad = [s for s in items if summarize(s.obj.status)[0] != "True"]
        if bad:
            console.print(f"\n[bold]Not ready ({len(bad)}):[/]")
            for s in bad:
                _, reason, message = summarize(s.obj.status)
                console.print(f"  {s.kind}/{s.name}: [red]{reason or 'Pending'}[/] {message}")
        else:
            console.print("[green]Everything is Ready.[/]")
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    app.command("get")(get)
    app.command("describe")(describe)
    app.command("events")(events)
    app.command("status")(status)
