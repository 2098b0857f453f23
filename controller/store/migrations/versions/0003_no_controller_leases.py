"""Hosts' fencing leases live in etcd, kept alive by the agents: the controller's renewal
bookkeeping columns of `observed` go.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from controller.store.types import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("lease_sent_at", "lease_acked_at", "lease_ttl_s", "lease_epoch")


def upgrade() -> None:
    with op.batch_alter_table("observed") as batch:
        for column in COLUMNS:
            batch.drop_column(column)


def downgrade() -> None:
    with op.batch_alter_table("observed") as batch:
        batch.add_column(sa.Column("lease_sent_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("lease_acked_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("lease_ttl_s", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("lease_epoch", sa.BigInteger(), nullable=False, server_default="0")
        )
