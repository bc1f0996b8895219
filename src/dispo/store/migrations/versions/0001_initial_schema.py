"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_counts",
        sa.Column("org_id", sa.String(length=24), nullable=False),
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("agent_id", sa.String(length=24), nullable=False),
        sa.Column("campaign_id", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("disconnection_reason", sa.String(length=24), nullable=False),
        sa.Column("duration_bucket", sa.String(length=8), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "org_id",
            "day",
            "agent_id",
            "campaign_id",
            "status",
            "type",
            "disconnection_reason",
            "duration_bucket",
            name=op.f("pk_call_counts"),
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "organizations",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
    )
    op.create_table(
        "agents",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("org_id", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("global_prompt", sa.Text(), nullable=True),
        sa.Column("first_message", sa.Text(), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("slm_model", sa.String(length=64), nullable=False),
        sa.Column("background_sound", sa.String(length=32), nullable=False),
        sa.Column("global_knowledge_base_id", sa.String(length=64), nullable=True),
        sa.Column("telephony_product_id", sa.String(length=24), nullable=True),
        sa.Column("default_variables", sa.JSON(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.Column("archived_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_agents_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
    )
    op.create_index("ix_agents_org_created", "agents", ["org_id", "created_at"], unique=False)

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("org_id", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_used_at", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_api_keys_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index("ix_api_keys_org", "api_keys", ["org_id"], unique=False)

    op.create_table(
        "audiences",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("org_id", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("phone_number_column_name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_audiences_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audiences")),
    )
    op.create_index("ix_audiences_org_created", "audiences", ["org_id", "created_at"], unique=False)

    op.create_table(
        "calls",
        sa.Column(
            "pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column(
            "call_id",
            sa.String(length=40).with_variant(sa.String(length=40, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("org_id", sa.String(length=24), nullable=False),
        sa.Column("agent_id", sa.String(length=24), nullable=True),
        sa.Column("campaign_id", sa.String(length=24), nullable=True),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("disconnection_reason", sa.String(length=24), nullable=True),
        sa.Column("call_failure_reason", sa.Text(), nullable=True),
        sa.Column(
            "from_number",
            sa.String(length=40).with_variant(sa.String(length=40, collation="C"), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "to_number",
            sa.String(length=40).with_variant(sa.String(length=40, collation="C"), "postgresql"),
            nullable=True,
        ),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("call_cost", sa.Float(), nullable=False),
        sa.Column("recording_url", sa.Text(), nullable=True),
        sa.Column("recording_dual_url", sa.Text(), nullable=True),
        sa.Column("retry_count", sa.Integer(), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=True),
        sa.Column("avg_transcriber_latency", sa.Float(), nullable=True),
        sa.Column("avg_agent_latency", sa.Float(), nullable=True),
        sa.Column("avg_synthesizer_latency", sa.Float(), nullable=True),
        sa.Column("avg_latency", sa.Float(), nullable=False),
        sa.Column("analytics_status", sa.String(length=16), nullable=True),
        sa.Column("started_at", sa.BigInteger(), nullable=True),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_calls_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_calls")),
        sa.UniqueConstraint("call_id", name=op.f("uq_calls_call_id")),
        sa.UniqueConstraint("id", name=op.f("uq_calls_id")),
    )
    op.create_index(
        "ix_calls_org_agent_created", "calls", ["org_id", "agent_id", "created_at", "pk"], unique=False
    )
    op.create_index(
        "ix_calls_org_campaign_created", "calls", ["org_id", "campaign_id", "created_at", "pk"], unique=False
    )
    op.create_index("ix_calls_org_created", "calls", ["org_id", "created_at", "pk"], unique=False)
    op.create_index("ix_calls_org_duration", "calls", ["org_id", "duration", "pk"], unique=False)
    op.create_index("ix_calls_org_from", "calls", ["org_id", "from_number"], unique=False)
    op.create_index("ix_calls_org_latency", "calls", ["org_id", "avg_latency", "pk"], unique=False)
    op.create_index(
        "ix_calls_org_reason_created",
        "calls",
        ["org_id", "disconnection_reason", "created_at", "pk"],
        unique=False,
    )
    op.create_index(
        "ix_calls_org_status_created", "calls", ["org_id", "status", "created_at", "pk"], unique=False
    )
    op.create_index("ix_calls_org_to", "calls", ["org_id", "to_number"], unique=False)
    op.create_index(
        "ix_calls_org_type_created", "calls", ["org_id", "type", "created_at", "pk"], unique=False
    )
    op.create_index("ix_calls_org_updated", "calls", ["org_id", "updated_at", "pk"], unique=False)

    op.create_table(
        "analytics_configs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("org_id", sa.String(length=24), nullable=False),
        sa.Column("agent_id", sa.String(length=24), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("summary_prompt", sa.Text(), nullable=True),
        sa.Column("disposition_metrics", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_analytics_configs_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_analytics_configs_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_configs")),
        sa.UniqueConstraint("agent_id", "version", name="uq_analytics_configs_agent_version"),
    )
    op.create_table(
        "audience_members",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("audience_id", sa.String(length=24), nullable=False),
        sa.Column("phone_number", sa.String(length=20), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["audience_id"],
            ["audiences.id"],
            name=op.f("fk_audience_members_audience_id_audiences"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audience_members")),
        sa.UniqueConstraint("audience_id", "phone_number", name="uq_audience_members_audience_number"),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("org_id", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("agent_id", sa.String(length=24), nullable=False),
        sa.Column("audience_id", sa.String(length=24), nullable=False),
        sa.Column("phone_number_ids", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("max_retries", sa.Integer(), nullable=False),
        sa.Column("retry_delay", sa.Integer(), nullable=False),
        sa.Column("scheduled_at", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.BigInteger(), nullable=True),
        sa.Column("completed_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_campaigns_agent_id_agents")),
        sa.ForeignKeyConstraint(
            ["audience_id"], ["audiences.id"], name=op.f("fk_campaigns_audience_id_audiences")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_campaigns_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_index("ix_campaigns_org_created", "campaigns", ["org_id", "created_at"], unique=False)

    op.create_table(
        "phone_numbers",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("org_id", sa.String(length=24), nullable=False),
        sa.Column("phone_number", sa.String(length=20), nullable=False),
        sa.Column("country_code", sa.String(length=4), nullable=True),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("agent_id", sa.String(length=24), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_phone_numbers_agent_id_agents"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_phone_numbers_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phone_numbers")),
        sa.UniqueConstraint("org_id", "phone_number", name="uq_phone_numbers_org_number"),
    )
    op.create_table(
        "transcript_messages",
        sa.Column("call_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_pk"], ["calls.pk"], name=op.f("fk_transcript_messages_call_pk_calls"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("call_pk", "seq", name=op.f("pk_transcript_messages")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "analytics_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("config_id", sa.Integer(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("disposition_metrics", sa.JSON(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_pk"], ["calls.pk"], name=op.f("fk_analytics_results_call_pk_calls"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["config_id"],
            ["analytics_configs.id"],
            name=op.f("fk_analytics_results_config_id_analytics_configs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_results")),
    )
    op.create_index("ix_analytics_results_call", "analytics_results", ["call_pk", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_analytics_results_call", table_name="analytics_results")

    op.drop_table("analytics_results")
    op.drop_table("transcript_messages")
    op.drop_table("phone_numbers")
    op.drop_index("ix_campaigns_org_created", table_name="campaigns")

    op.drop_table("campaigns")
    op.drop_table("audience_members")
    op.drop_table("analytics_configs")
    op.drop_index("ix_calls_org_updated", table_name="calls")
    op.drop_index("ix_calls_org_type_created", table_name="calls")
    op.drop_index("ix_calls_org_to", table_name="calls")
    op.drop_index("ix_calls_org_status_created", table_name="calls")
    op.drop_index("ix_calls_org_reason_created", table_name="calls")
    op.drop_index("ix_calls_org_latency", table_name="calls")
    op.drop_index("ix_calls_org_from", table_name="calls")
    op.drop_index("ix_calls_org_duration", table_name="calls")
    op.drop_index("ix_calls_org_created", table_name="calls")
    op.drop_index("ix_calls_org_campaign_created", table_name="calls")
    op.drop_index("ix_calls_org_agent_created", table_name="calls")

    op.drop_table("calls")
    op.drop_index("ix_audiences_org_created", table_name="audiences")

    op.drop_table("audiences")
    op.drop_index("ix_api_keys_org", table_name="api_keys")

    op.drop_table("api_keys")
    op.drop_index("ix_agents_org_created", table_name="agents")

    op.drop_table("agents")
    op.drop_table("organizations")
    op.drop_table("call_counts")
