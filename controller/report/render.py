"""Render a report as one self-contained HTML file (PNG plots inline) or a PDF."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from controller.report.data import ReportData
from controller.report.plots import PLOTS

TEMPLATES = Path(__file__).parent / "templates"
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96)
    return base64.b64encode(buffer.getvalue()).decode()


def render_html(data: ReportData) -> str:
    """Return the report as HTML with its plots embedded as PNG data URLs."""
    plots = [(pid, title, _png(plot(data))) for pid, title, plot in PLOTS]
    return _env.get_template("report.html").render(data=data, plots=plots)


def render_pdf(data: ReportData, path: Path) -> int:
    """Write the report as a PDF (a title page, then a page per plot); return the page count."""
    with PdfPages(path) as pdf:
        title = Figure(figsize=(9, 5.4))
        title.text(0.05, 0.85, "Corral history report", fontsize=20)
        title.text(0.05, 0.75, f"{data.start:%Y-%m-%d %H:%M} to {data.end:%Y-%m-%d %H:%M} UTC")
        lines = [
            f"{len(data.host_series)} hosts, top VM: "
            + (data.top_vms[0].name if data.top_vms else "none")
        ]
        lines += [
            f"{name}: {share:.2%} available, {restarts} HA restarts"
            for name, share, restarts in data.availability[:12]
        ]
        for i, line in enumerate(lines):
            title.text(0.05, 0.65 - i * 0.05, line, fontsize=10)
        pdf.savefig(title)
        for _pid, _title, plot in PLOTS:
            pdf.savefig(plot(data))
        return 1 + len(PLOTS)
