"""History (data warehouse): raw samples and hourly/daily roll-ups, tables history_*.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from controller.store.types import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "history_samples",
        sa.Column("subject", sa.String(8), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("host", sa.String(253), nullable=True),
        sa.Column("running", sa.Integer(), nullable=False),
        sa.Column("cpu_pct", sa.Float(), nullable=True),
        sa.Column("memory_pct", sa.Float(), nullable=True),
        sa.Column("memory_mib", sa.Float(), nullable=True),
        sa.Column("io_bps", sa.Float(), nullable=True),
        sa.Column("net_bps", sa.Float(), nullable=True),
        sa.Column("config_version", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("subject", "name", "at", name="pk_history_samples"),
    )
    op.create_index("ix_history_samples_at", "history_samples", ["at"])
    op.create_table(
        "history_rollups",
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("subject", sa.String(8), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("start", UTCDateTime(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("running", sa.Integer(), nullable=False),
        sa.Column("cpu_avg", sa.Float(), nullable=True),
        sa.Column("cpu_max", sa.Float(), nullable=True),
        sa.Column("memory_avg", sa.Float(), nullable=True),
        sa.Column("memory_max", sa.Float(), nullable=True),
        sa.Column("io_avg", sa.Float(), nullable=True),
        sa.Column("io_max", sa.Float(), nullable=True),
        sa.Column("net_avg", sa.Float(), nullable=True),
        sa.Column("net_max", sa.Float(), nullable=True),
        sa.Column("ha_restarts", sa.Integer(), nullable=False),
        sa.Column("migrations", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("period", "subject", "name", "start", name="pk_history_rollups"),
    )


def downgrade() -> None:
    op.drop_table("history_rollups")
    op.drop_index("ix_history_samples_at", table_name="history_samples")
    op.drop_table("history_samples")
