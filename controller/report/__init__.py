"""History reports: gather a window of the warehouse, plot it, render HTML or PDF."""

from controller.report.data import ReportData, gather, parse_since
from controller.report.render import render_html, render_pdf

__all__ = ["ReportData", "gather", "parse_since", "render_html", "render_pdf"]
