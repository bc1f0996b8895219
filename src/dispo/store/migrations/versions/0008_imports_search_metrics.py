"""imported calls (external_id), extracted metric values (call_metrics), transcript search

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# SQLite: an FTS5 table holding a copy of each message (snippets need the text), its rowid the
# message's key (call_pk * 2**20 + seq, so a delete finds it), kept in step by triggers.
_SQLITE_FTS = (
    "CREATE VIRTUAL TABLE transcript_fts USING fts5(content, call_pk UNINDEXED, "
    "tokenize = 'unicode61 remove_diacritics 0')",
    "CREATE TRIGGER transcript_fts_insert AFTER INSERT ON transcript_messages BEGIN "
    "INSERT INTO transcript_fts(rowid, content, call_pk) "
    "VALUES (new.call_pk * 1048576 + new.seq, new.content, new.call_pk); END",
    "CREATE TRIGGER transcript_fts_delete AFTER DELETE ON transcript_messages BEGIN "
    "DELETE FROM transcript_fts WHERE rowid = old.call_pk * 1048576 + old.seq; END",
    "CREATE TRIGGER transcript_fts_update AFTER UPDATE OF content ON transcript_messages BEGIN "
    "UPDATE transcript_fts SET content = new.content WHERE rowid = old.call_pk * 1048576 + old.seq; END",
    "INSERT INTO transcript_fts(rowid, content, call_pk) "
    "SELECT call_pk * 1048576 + seq, content, call_pk FROM transcript_messages",
)
_POSTGRES_FTS = (
    "CREATE INDEX ix_transcript_messages_fts ON transcript_messages USING gin (to_tsvector('simple', content))",
)


def upgrade() -> None:
    op.add_column("calls", sa.Column("external_id", sa.String(200), nullable=True))
    op.create_index("uq_calls_org_external", "calls", ["org_id", "external_id"], unique=True)
    op.create_table(
        "call_metrics",
        sa.Column("call_pk", _PK, nullable=False),
        sa.Column("identifier", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(24), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("value_text", sa.String(200), nullable=True),
        sa.Column("value_num", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_pk"], ["calls.pk"], name="fk_call_metrics_call_pk_calls", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("call_pk", "identifier", name="pk_call_metrics"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_call_metrics_text", "call_metrics", ["org_id", "identifier", "value_text"])
    op.create_index("ix_call_metrics_num", "call_metrics", ["org_id", "identifier", "value_num"])
    bind = op.get_bind()
    _backfill_metrics(bind)
    for statement in _SQLITE_FTS if bind.dialect.name == "sqlite" else _POSTGRES_FTS:
        op.execute(statement)


def _backfill_metrics(bind: Any) -> None:
    """Each call's newest analytics result, as call_metrics rows (the store's own conversion)."""
    from dispo.store.metric_values import metric_rows  # the same conversion the worker uses

    rows = bind.execute(
        sa.text(
            "SELECT r.call_pk, c.org_id, r.disposition_metrics FROM analytics_results r "
            "JOIN calls c ON c.pk = r.call_pk ORDER BY r.call_pk, r.created_at, r.id"
        )
    ).all()
    newest: dict[int, tuple[str, Any]] = {}
    for call_pk, org_id, metrics in rows:
        newest[call_pk] = (org_id, json.loads(metrics) if isinstance(metrics, str) else metrics)
    values = [row for pk, (org, metrics) in newest.items() for row in metric_rows(pk, org, metrics)]
    if values:
        bind.execute(
            sa.text(
                "INSERT INTO call_metrics (call_pk, identifier, org_id, type, value_text, value_num) "
                "VALUES (:call_pk, :identifier, :org_id, :type, :value_text, :value_num)"
            ),
            values,
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in ("transcript_fts_insert", "transcript_fts_delete", "transcript_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS transcript_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_transcript_messages_fts")
    op.drop_index("ix_call_metrics_num", table_name="call_metrics")
    op.drop_index("ix_call_metrics_text", table_name="call_metrics")
    op.drop_table("call_metrics")
    op.drop_index("uq_calls_org_external", table_name="calls")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("external_id")
