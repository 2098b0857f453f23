"""History tables (the data warehouse) beside the store's own, each named history_*.

History registers them on the store's metadata itself (the store never imports history):
importing any module of controller.history imports this one. Revision 0002 of the store's
migrations creates them, and the store's schema test imports this module to check them.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Table

from controller.store.tables import metadata
from controller.store.types import UTCDateTime

samples = Table(
    "history_samples",
    metadata,
    Column("subject", String(8), primary_key=True),
    Column("name", String(253), primary_key=True),
    Column("at", UTCDateTime(), primary_key=True),
    Column("host", String(253)),
    Column("running", Integer, nullable=False),
    Column("cpu_pct", Float),
    Column("memory_pct", Float),
    Column("memory_mib", Float),
    Column("io_bps", Float),
    Column("net_bps", Float),
    Column("config_version", Integer),
    Index(None, "at"),
)
"""Raw samples of a host or a VM (`subject` "host"/"vm"), kept for the retention period."""

rollups = Table(
    "history_rollups",
    metadata,
    Column("period", String(8), primary_key=True),
    Column("subject", String(8), primary_key=True),
    Column("name", String(253), primary_key=True),
    Column("start", UTCDateTime(), primary_key=True),
    Column("samples", Integer, nullable=False),
    Column("running", Integer, nullable=False),
    Column("cpu_avg", Float),
    Column("cpu_max", Float),
    Column("memory_avg", Float),
    Column("memory_max", Float),
    Column("io_avg", Float),
    Column("io_max", Float),
    Column("net_avg", Float),
    Column("net_max", Float),
    Column("ha_restarts", Integer, nullable=False),
    Column("migrations", Integer, nullable=False),
    Column("failures", Integer, nullable=False),
)
"""Hourly ("hour") and daily ("day") aggregates per host or VM; recomputing one replaces it."""
