"""corral report: a history report (HTML or PDF) with plots, from the warehouse."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from controller.cli.common import DbOption, StateDirOption, console, err_console, open_store_or_exit


def report(
    since: Annotated[str, typer.Option("--since", help='The window: "7d", "12h", "2w"')] = "7d",
    html: Annotated[Path | None, typer.Option("--html", help="Write an HTML report here")] = None,
    pdf: Annotated[Path | None, typer.Option("--pdf", help="Write a PDF report here")] = None,
    db: DbOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Render utilisation per host, top VMs, events per day and HA availability."""
    from controller.history.warehouse import Warehouse
    from controller.report import gather, parse_since, render_html, render_pdf
    from controller.report.data import ReportInputError

    try:
        window = parse_since(since)
    except ReportInputError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    if html is None and pdf is None:
        html = Path("corral-report.html")
    store = open_store_or_exit(db, state_dir)
    try:
        end = datetime.now(UTC)
        data = gather(store, Warehouse(store), end - window, end)
        if html is not None:
            html.write_text(render_html(data))
            console.print(f"Wrote {html}")
        if pdf is not None:
            pages = render_pdf(data, pdf)
            console.print(f"Wrote {pdf} ({pages} pages)")
        if not data.host_series and not data.top_vms:
            err_console.print(
                "[yellow]note:[/] no history in that window yet (the sampler runs beside "
                "`corral up --api`)"
            )
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    app.command("report")(report)
