"""transcript messages: the agent's per-turn LLM latency

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: a batch "move and copy" would rebuild the table without WITHOUT ROWID.
    op.add_column("transcript_messages", sa.Column("latency_ms", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("transcript_messages", "latency_ms")
