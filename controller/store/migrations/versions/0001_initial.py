"""Initial schema: objects, statuses, observed, events, plans, sources, change log.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from controller.store.types import JSONDoc, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "objects",
        sa.Column("id", AutoId, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("source", sa.String(253), nullable=False),
        sa.Column("revision", sa.String(253), nullable=True),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("resource_version", sa.BigInteger(), nullable=False),
        sa.Column("manifest_hash", sa.String(64), nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("protected", sa.Boolean(), nullable=False),
        sa.Column("manifest", JSONDoc, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_objects"),
        sa.UniqueConstraint("kind", "name", name="uq_objects_kind_name"),
    )
    op.create_index("ix_objects_source", "objects", ["source"])
    op.create_table(
        "statuses",
        sa.Column("object_id", AutoId, nullable=False),
        sa.Column("status", JSONDoc, nullable=False),
        sa.Column("status_hash", sa.String(64), nullable=False),
        sa.Column("resource_version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["objects.id"],
            name="fk_statuses_object_id_objects",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("object_id", name="pk_statuses"),
    )
    op.create_table(
        "observed",
        sa.Column("host", sa.String(253), nullable=False),
        sa.Column("state", JSONDoc, nullable=True),
        sa.Column("state_hash", sa.String(64), nullable=True),
        sa.Column("reachable", sa.Boolean(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("lease_sent_at", UTCDateTime(), nullable=True),
        sa.Column("lease_acked_at", UTCDateTime(), nullable=True),
        sa.Column("lease_ttl_s", sa.Integer(), nullable=True),
        sa.Column("lease_epoch", sa.BigInteger(), nullable=False),
        sa.Column("power_fenced_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("host", name="pk_observed"),
    )
    op.create_table(
        "events",
        sa.Column("id", AutoId, nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(128), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("object_kind", sa.String(64), nullable=False),
        sa.Column("object_name", sa.String(253), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("component", sa.String(128), nullable=False),
        sa.Column("identity", sa.String(253), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index(
        "ix_events_object_kind_object_name_reason",
        "events",
        ["object_kind", "object_name", "reason"],
    )
    op.create_index("ix_events_last_seen", "events", ["last_seen"])
    op.create_table(
        "plans",
        sa.Column("id", AutoId, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("source", sa.String(253), nullable=True),
        sa.Column("revision", sa.String(253), nullable=True),
        sa.Column("actions", JSONDoc, nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_plans"),
    )
    op.create_index("ix_plans_created_at", "plans", ["created_at"])
    op.create_table(
        "plan_outcomes",
        sa.Column("plan_id", AutoId, nullable=False),
        sa.Column("action_index", sa.Integer(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name="fk_plan_outcomes_plan_id_plans", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("plan_id", "action_index", name="pk_plan_outcomes"),
    )
    op.create_table(
        "sources",
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("settings", JSONDoc, nullable=False),
        sa.Column("last_applied_revision", sa.String(253), nullable=True),
        sa.Column("last_attempted_revision", sa.String(253), nullable=True),
        sa.Column("status", JSONDoc, nullable=True),
        sa.Column("status_hash", sa.String(64), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_sources"),
    )
    op.create_table(
        "changes",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("topic", sa.String(16), nullable=False),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("resource_version", sa.BigInteger(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_changes"),
    )
    counters = op.create_table(
        "counters",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_counters"),
    )
    op.bulk_insert(counters, [{"name": "changes", "value": 0}])


def downgrade() -> None:
    for table in (
        "counters",
        "changes",
        "sources",
        "plan_outcomes",
        "plans",
        "events",
        "observed",
        "statuses",
        "objects",
    ):
        op.drop_table(table)
