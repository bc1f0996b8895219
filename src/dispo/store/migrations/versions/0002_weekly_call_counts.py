"""weekly call counts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_counts_weekly",
        sa.Column("org_id", sa.String(length=24), nullable=False),
        sa.Column("week", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("agent_id", sa.String(length=24), nullable=False),
        sa.Column("campaign_id", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("disconnection_reason", sa.String(length=24), nullable=False),
        sa.Column("duration_bucket", sa.String(length=8), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "org_id",
            "week",
            "agent_id",
            "campaign_id",
            "status",
            "type",
            "disconnection_reason",
            "duration_bucket",
            name=op.f("pk_call_counts_weekly"),
        ),
        sqlite_with_rowid=False,
    )
    # Existing databases: derive the weekly counts from the daily ones.
    dims = "org_id, agent_id, campaign_id, status, type, disconnection_reason, duration_bucket"
    op.execute(
        f"INSERT INTO call_counts_weekly (week, {dims}, calls) "
        f"SELECT day / 7, {dims}, SUM(calls) FROM call_counts GROUP BY day / 7, {dims}"
    )


def downgrade() -> None:
    op.drop_table("call_counts_weekly")
