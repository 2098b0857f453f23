"""A report over a simulated week: plots render, the numbers behind them are exact."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.cli.main import app
from controller.history.model import Period, Sample, Subject
from controller.history.rollup import period_start
from controller.history.sampler import Sampler
from controller.history.warehouse import Warehouse
from controller.report import gather, parse_since, render_html, render_pdf
from controller.report.data import ReportInputError
from controller.store import Store, open_store
from schemas.vm import VirtualMachine

STEP = timedelta(minutes=30)
HOSTS = ("h1", "h2")
VMS = {"web": ("h1", 20.0, True), "db": ("h2", 60.0, True), "batch": ("h1", 90.0, False)}
"""name -> (host, CPU %, HA)"""


def vm(name: str, ha: bool) -> VirtualMachine:
    return VirtualMachine.model_validate(
        {
            "metadata": {"name": name},
            "spec": {"cpus": 1, "memory": "1Gi", "ha": {"enabled": ha}},
        }
    )


def simulated_week(end: datetime) -> list[Sample]:
    """Return a week of samples every 30 minutes; db is down for the first 12 samples."""
    samples = []
    start = end - timedelta(days=7)
    at, i = start, 0
    while at < end:
        for n, host in enumerate(HOSTS):
            cpu = 30.0 + 10 * n + (at.hour % 6)
            samples.append(Sample(Subject.HOST, host, at, True, host, cpu_pct=cpu, memory_pct=50.0))
        for name, (host, cpu, _ha) in VMS.items():
            running = not (name == "db" and i < 12)
            samples.append(
                Sample(
                    Subject.VM,
                    name,
                    at,
                    running,
                    host,
                    cpu_pct=cpu if running else None,
                    memory_mib=512,
                )
            )
        at += STEP
        i += 1
    return samples


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, datetime]]:
    """Yield a store holding a simulated week up to today's midnight, rolled up."""
    end = period_start(datetime.now(UTC), Period.DAY)
    store = open_store(
        f"sqlite:///{tmp_path_factory.getbasetemp() / 'week.db'}",
        clock=lambda: end - timedelta(days=3),
    )
    for name, (_host, _cpu, ha) in VMS.items():
        store.put(vm(name, ha), "api")
    store.record_event("VirtualMachine", "db", "Normal", "HARestart", "restarted on h2")
    store.record_event("Host", "h1", "Warning", "AgentUnreachable", "h1 did not answer")
    warehouse = Warehouse(store)
    warehouse.add_samples(simulated_week(end))
    done = Sampler(store, pool=None, retention=timedelta(days=30)).maintain(end)  # type: ignore[arg-type]
    assert done == {"hour": 7 * 24, "day": 7, "pruned": 0}
    yield store, end
    store.close()


def test_the_week_adds_up(week: tuple[Store, datetime]) -> None:
    store, end = week
    data = gather(store, Warehouse(store), end - timedelta(days=7), end)
    assert sorted(data.host_series) == ["h1", "h2"]
    assert [len(s) for s in data.host_series.values()] == [168, 168]
    assert [(r.name, r.cpu_avg, r.cpu_max) for r in data.top_vms] == [
        ("batch", 90.0, 90.0),
        ("db", 60.0, 60.0),
        ("web", 20.0, 20.0),
    ]
    assert data.availability == [("db", (336 - 12) / 336, 1), ("web", 1.0, 0)]
    per_day = {d: (n, w) for d, n, w in data.events_per_day}
    assert len(per_day) == 7
    assert per_day[(end - timedelta(days=3)).date()] == (1, 1)


def test_html_and_pdf_render_with_plots(week: tuple[Store, datetime], tmp_path: Path) -> None:
    store, end = week
    data = gather(store, Warehouse(store), end - timedelta(days=7), end)
    html = render_html(data)
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 4
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "<td>db</td><td>96.43%</td><td>1</td>" in html
    pdf = tmp_path / "week.pdf"
    assert render_pdf(data, pdf) == 5
    assert pdf.read_bytes().startswith(b"%PDF")


def test_cli_writes_the_report(week: tuple[Store, datetime], tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    store, _end = week
    db = store.url
    result = CliRunner().invoke(app, ["report", "--since", "7d", "--html", str(out), "--db", db])
    assert result.exit_code == 0, result.output
    assert out.read_text().count("data:image/png;base64,") == 4
    assert "<td>db</td><td>96.43%</td><td>1</td>" in out.read_text()
    bad = CliRunner().invoke(app, ["report", "--since", "a week", "--db", db])
    assert bad.exit_code == 2
    assert "--since" in bad.output


@pytest.mark.parametrize(
    ("text", "window"),
    [("7d", timedelta(days=7)), ("12h", timedelta(hours=12)), ("2w", timedelta(weeks=2))],
)
def test_parse_since(text: str, window: timedelta) -> None:
    assert parse_since(text) == window


@pytest.mark.parametrize("text", ["", "0d", "7 days", "-1d"])
def test_parse_since_refuses(text: str) -> None:
    with pytest.raises(ReportInputError, match="--since"):
        parse_since(text)
