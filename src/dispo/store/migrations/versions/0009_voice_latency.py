"""transcript messages: per-turn speech latencies of voice calls (STT, TTS, voice-to-voice)

Revision ID: 0009
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = ("stt_ms", "tts_ms", "v2v_ms")


def upgrade() -> None:
    # Plain ADD COLUMNs: a batch "move and copy" would rebuild the table without WITHOUT ROWID.
    for name in COLUMNS:
        op.add_column("transcript_messages", sa.Column(name, sa.Float(), nullable=True))


def downgrade() -> None:
    for name in reversed(COLUMNS):
        op.drop_column("transcript_messages", name)
