"""The store's tables (sqlmodel). The alembic revisions in migrations/ create exactly these,
and the tables packages above the store put on `metadata` themselves (history_*, revision
0002): the store never imports those packages.

Objects are soft-deleted: a deleted object keeps its row as a tombstone (`deleted_at`
set) until the loop has removed its traces from the hosts and calls `purge`; its
status goes with the row. Every write that a watcher may care about also appends to
`changes` in the same transaction, numbered from the single `counters` row so that
change numbers become visible in commit order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from controller.store.types import JSONDoc, UTCDateTime

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

AutoId = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit surrogate key; INTEGER on SQLite so that it aliases the rowid and autoincrements."""


class StoreTable(SQLModel):
    """Base of the store's tables: their own metadata, apart from any other SQLModel tables."""

    metadata = MetaData(naming_convention=NAMING)


def _ts(nullable: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable))


class ObjectRow(StoreTable, table=True):
    """One desired object: its manifest, owning source and versions."""

    __tablename__ = "objects"
    __table_args__ = (
        UniqueConstraint("kind", "name"),
        Index(None, "source"),
    )

    id: int | None = Field(default=None, sa_column=Column(AutoId, primary_key=True))
    kind: str = Field(sa_column=Column(String(64), nullable=False))
    name: str = Field(sa_column=Column(String(253), nullable=False))
    source: str = Field(sa_column=Column(String(253), nullable=False))
    revision: str | None = Field(default=None, sa_column=Column(String(253)))
    generation: int = Field(sa_column=Column(BigInteger, nullable=False))
    resource_version: int = Field(sa_column=Column(BigInteger, nullable=False))
    manifest_hash: str = Field(sa_column=Column(String(64), nullable=False))
    spec_hash: str = Field(sa_column=Column(String(64), nullable=False))
    protected: bool = Field(sa_column=Column(Boolean, nullable=False))
    manifest: dict[str, Any] = Field(sa_column=Column(JSONDoc, nullable=False))
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    deleted_at: datetime | None = _ts(nullable=True)


class StatusRow(StoreTable, table=True):
    """The status of one object, versioned apart from its spec."""

    __tablename__ = "statuses"

    object_id: int = Field(
        sa_column=Column(AutoId, ForeignKey("objects.id", ondelete="CASCADE"), primary_key=True)
    )
    status: dict[str, Any] = Field(sa_column=Column(JSONDoc, nullable=False))
    status_hash: str = Field(sa_column=Column(String(64), nullable=False))
    resource_version: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at: datetime = _ts()


class ObservedRow(StoreTable, table=True):
    """What the controller last saw of one host's agent, and when a power fence confirmed it off."""

    __tablename__ = "observed"

    host: str = Field(sa_column=Column(String(253), primary_key=True))
    state: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONDoc))
    state_hash: str | None = Field(default=None, sa_column=Column(String(64)))
    reachable: bool = Field(sa_column=Column(Boolean, nullable=False))
    last_seen: datetime | None = _ts(nullable=True)
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    power_fenced_at: datetime | None = _ts(nullable=True)
    updated_at: datetime = _ts()


class EventRow(StoreTable, table=True):
    """A Kubernetes-like event; repeats within the dedupe window bump `count`."""

    __tablename__ = "events"
    __table_args__ = (
        Index(None, "object_kind", "object_name", "reason"),
        Index(None, "last_seen"),
    )

    id: int | None = Field(default=None, sa_column=Column(AutoId, primary_key=True))
    type: str = Field(sa_column=Column(String(16), nullable=False))
    reason: str = Field(sa_column=Column(String(128), nullable=False))
    message: str = Field(sa_column=Column(Text, nullable=False))
    object_kind: str = Field(sa_column=Column(String(64), nullable=False))
    object_name: str = Field(sa_column=Column(String(253), nullable=False))
    count: int = Field(sa_column=Column(Integer, nullable=False))
    first_seen: datetime = _ts()
    last_seen: datetime = _ts()
    component: str = Field(sa_column=Column(String(128), nullable=False))
    identity: str | None = Field(default=None, sa_column=Column(String(253)))


class PlanRow(StoreTable, table=True):
    """One computed plan: its actions as JSON and where it came from."""

    __tablename__ = "plans"
    __table_args__ = (Index(None, "created_at"),)

    id: int | None = Field(default=None, sa_column=Column(AutoId, primary_key=True))
    created_at: datetime = _ts()
    finished_at: datetime | None = _ts(nullable=True)
    source: str | None = Field(default=None, sa_column=Column(String(253)))
    revision: str | None = Field(default=None, sa_column=Column(String(253)))
    actions: list[dict[str, Any]] = Field(sa_column=Column(JSONDoc, nullable=False))
    summary: str = Field(sa_column=Column(Text, nullable=False))


class PlanOutcomeRow(StoreTable, table=True):
    """The outcome of one action of a plan; recording it again replaces it."""

    __tablename__ = "plan_outcomes"

    plan_id: int = Field(
        sa_column=Column(AutoId, ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True)
    )
    action_index: int = Field(sa_column=Column(Integer, primary_key=True))
    ok: bool = Field(sa_column=Column(Boolean, nullable=False))
    error: str | None = Field(default=None, sa_column=Column(Text))
    at: datetime = _ts()


class SourceRow(StoreTable, table=True):
    """A configured source of manifests (git repository or directory) and its progress."""

    __tablename__ = "sources"

    name: str = Field(sa_column=Column(String(253), primary_key=True))
    type: str = Field(sa_column=Column(String(16), nullable=False))
    settings: dict[str, Any] = Field(sa_column=Column(JSONDoc, nullable=False))
    last_applied_revision: str | None = Field(default=None, sa_column=Column(String(253)))
    last_attempted_revision: str | None = Field(default=None, sa_column=Column(String(253)))
    status: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONDoc))
    status_hash: str | None = Field(default=None, sa_column=Column(String(64)))
    updated_at: datetime = _ts()


class ChangeRow(StoreTable, table=True):
    """One entry of the change log: what changed, numbered in commit order."""

    __tablename__ = "changes"

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    topic: str = Field(sa_column=Column(String(16), nullable=False))
    op: str = Field(sa_column=Column(String(16), nullable=False))
    kind: str = Field(sa_column=Column(String(64), nullable=False))
    name: str = Field(sa_column=Column(String(253), nullable=False))
    resource_version: int | None = Field(default=None, sa_column=Column(BigInteger))
    at: datetime = _ts()


class CounterRow(StoreTable, table=True):
    """Named counters; the row "changes" numbers the change log."""

    __tablename__ = "counters"

    name: str = Field(sa_column=Column(String(64), primary_key=True))
    value: int = Field(sa_column=Column(BigInteger, nullable=False))


metadata = StoreTable.metadata
objects = ObjectRow.__table__
statuses = StatusRow.__table__
observed = ObservedRow.__table__
events = EventRow.__table__
plans = PlanRow.__table__
plan_outcomes = PlanOutcomeRow.__table__
sources = SourceRow.__table__
changes = ChangeRow.__table__
counters = CounterRow.__table__
