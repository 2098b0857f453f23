"""The report's plots: each returns a matplotlib Figure (no pyplot, no display needed)."""

from __future__ import annotations

from matplotlib.figure import Figure

from controller.report.data import ReportData

SIZE = (9, 3.6)


def utilisation(data: ReportData) -> Figure:
    """Return hourly average CPU and memory use per host over the window."""
    fig = Figure(figsize=(9, 5.4))
    cpu, mem = fig.subplots(2, 1, sharex=True)
    for host, series in data.host_series.items():
        times = [r.start for r in series]
        cpu.plot(
            times,
            [r.cpu_avg if r.cpu_avg is not None else float("nan") for r in series],
            label=host,
        )
        mem.plot(
            times,
            [r.memory_avg if r.memory_avg is not None else float("nan") for r in series],
            label=host,
        )
    cpu.set_ylabel("CPU %")
    mem.set_ylabel("memory used %")
    cpu.set_title("Host utilisation (hourly averages)")
    for ax in (cpu, mem):
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    if data.host_series:
        cpu.legend(loc="upper left", fontsize="small", ncol=4)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def top_vms(data: ReportData) -> Figure:
    """Return a bar chart of the busiest VMs (average and maximum CPU over the window)."""
    fig = Figure(figsize=SIZE)
    ax = fig.subplots()
    names = [r.name for r in data.top_vms]
    ax.barh(names, [r.cpu_max or 0.0 for r in data.top_vms], color="#9ecae1", label="max")
    ax.barh(names, [r.cpu_avg or 0.0 for r in data.top_vms], color="#08519c", label="average")
    ax.invert_yaxis()
    ax.set_xlabel("CPU % of the VM's vCPUs")
    ax.set_title(f"Top {len(names)} VMs by CPU")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig


def events(data: ReportData) -> Figure:
    """Return stacked bars of Normal and Warning events per day."""
    fig = Figure(figsize=SIZE)
    ax = fig.subplots()
    days = [d.isoformat() for d, _, _ in data.events_per_day]
    normal = [n for _, n, _ in data.events_per_day]
    warning = [w for _, _, w in data.events_per_day]
    ax.bar(days, normal, color="#3182bd", label="Normal")
    ax.bar(days, warning, bottom=normal, color="#de2d26", label="Warning")
    ax.set_ylabel("events")
    ax.set_title("Events per day")
    ax.legend(fontsize="small")
    ax.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    return fig


def availability(data: ReportData) -> Figure:
    """Return each HA VM's availability (share of samples running) over the window."""
    fig = Figure(figsize=SIZE)
    ax = fig.subplots()
    names = [name for name, _, _ in data.availability]
    ax.barh(names, [share * 100 for _, share, _ in data.availability], color="#31a354")
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_xlabel("% of samples running")
    ax.set_title("Availability of HA VMs")
    fig.tight_layout()
    return fig


PLOTS = (
    ("utilisation", "Utilisation per host", utilisation),
    ("top-vms", "Top VMs", top_vms),
    ("events", "Events per day", events),
    ("availability", "Availability per HA VM", availability),
)
"""(id, title, plot function) in the order the report shows them."""
