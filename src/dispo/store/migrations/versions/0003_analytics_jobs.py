"""post-call analytics jobs: status timestamps on calls, config version and timings on results

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _call_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("analytics_config_id", sa.Integer(), nullable=True),
        sa.Column("analytics_queued_at", sa.BigInteger(), nullable=True),
        sa.Column("analytics_started_at", sa.BigInteger(), nullable=True),
        sa.Column("analytics_finished_at", sa.BigInteger(), nullable=True),
        sa.Column("analytics_attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("analytics_error", sa.Text(), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        for column in _call_columns():
            batch.add_column(column)
        batch.create_index("ix_calls_analytics_status", ["analytics_status", "analytics_queued_at"])
    with op.batch_alter_table("analytics_results") as batch:
        batch.add_column(sa.Column("config_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("duration_ms", sa.Float(), nullable=True))
        batch.add_column(sa.Column("model_ms", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("analytics_results") as batch:
        batch.drop_column("model_ms")
        batch.drop_column("duration_ms")
        batch.drop_column("config_version")
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_analytics_status")
        for column in reversed(_call_columns()):
            batch.drop_column(column.name)
