"""The schema, declared once for SQLite and PostgreSQL. Alembic migrations must match it (tested).

Conventions:
- Public ids are strings (24-hex object ids, ``CALL-…`` call ids); calls also carry an integer
  ``pk`` so that indexes and the transcript table stay compact.
- Instants are integer epoch milliseconds (UTC): compact, index-friendly, and identical on both
  databases. The API renders them as ISO 8601.
- Every tenant-owned row has ``org_id``; every index that serves a list starts with it.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# Named constraints keep Alembic autogenerate and both databases in agreement.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ObjectId = String(24)
# Columns searched by prefix compare bytewise on both databases: PostgreSQL's locale collations
# ignore '+' and '-' at the first level, which would break prefix ranges.
SearchKey = String(40).with_variant(String(40, collation="C"), "postgresql")
Ms = BigInteger

organizations = Table(
    "organizations",
    metadata,
    Column("id", ObjectId, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", Ms, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", ObjectId, primary_key=True),
    Column("org_id", ObjectId, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    # The first characters of the key, shown by `dispo keys list` so a person can tell keys apart.
    Column("prefix", String(16), nullable=False),
    # SHA-256 of the whole key. Keys are 256 random bits, so a fast hash is safe; a slow one would
    # cost every request.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", Ms, nullable=False),
    Column("last_used_at", Ms),
    Column("revoked_at", Ms),
    Index("ix_api_keys_org", "org_id"),
)

agents = Table(
    "agents",
    metadata,
    Column("id", ObjectId, primary_key=True),
    Column("org_id", ObjectId, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("global_prompt", Text),
    Column("first_message", Text),
    Column("language", String(16), nullable=False, default="en"),
    Column("slm_model", String(64), nullable=False, default="electron"),
    Column("background_sound", String(32), nullable=False, default=""),
    Column("global_knowledge_base_id", String(64)),
    Column("telephony_product_id", ObjectId),
    Column("default_variables", JSON),
    # Everything else the Atoms agent body may carry (synthesizer, language switching, …), kept
    # verbatim so that a client reads back what it wrote.
    Column("extra", JSON),
    Column("archived_at", Ms),
    Column("created_at", Ms, nullable=False),
    Column("updated_at", Ms, nullable=False),
    Index("ix_agents_org_created", "org_id", "created_at"),
)

analytics_configs = Table(
    "analytics_configs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("org_id", ObjectId, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("agent_id", ObjectId, ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("summary_prompt", Text),
    Column("disposition_metrics", JSON, nullable=False),
    Column("created_at", Ms, nullable=False),
    UniqueConstraint("agent_id", "version", name="uq_analytics_configs_agent_version"),
)

phone_numbers = Table(
    "phone_numbers",
    metadata,
    Column("id", ObjectId, primary_key=True),
    Column("org_id", ObjectId, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("phone_number", String(20), nullable=False),
    Column("country_code", String(4)),
    Column("provider", String(32), nullable=False, default="test"),
    Column("agent_id", ObjectId, ForeignKey("agents.id", ondelete="SET NULL")),
    Column("is_active", Boolean, nullable=False, default=True),
    Column("created_at", Ms, nullable=False),
    Column("updated_at", Ms, nullable=False),
    UniqueConstraint("org_id", "phone_number", name="uq_phone_numbers_org_number"),
)

audiences = Table(
    "audiences",
    metadata,
    Column("id", ObjectId, primary_key=True),
    Column("org_id", ObjectId, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("phone_number_column_name", String(64), nullable=False, default="phoneNumber"),
    Column("created_at", Ms, nullable=False),
    Column("updated_at", Ms, nullable=False),
    # DELETE /audience removes the members and sets this: finished campaigns keep pointing at the row.
    Column("deleted_at", Ms),
    Index("ix_audiences_org_created", "org_id", "created_at"),
)

audience_members = Table(
    "audience_members",
    metadata,
    Column("id", ObjectId, primary_key=True),
    Column("audience_id", ObjectId, ForeignKey("audiences.id", ondelete="CASCADE"), nullable=False),
    Column("phone_number", String(20), nullable=False),
    Column("data", JSON, nullable=False),
    Column("created_at", Ms, nullable=False),
    UniqueConstraint("audience_id", "phone_number", name="uq_audience_members_audience_number"),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", ObjectId, primary_key=True),
    Column("org_id", ObjectId, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("agent_id", ObjectId, ForeignKey("agents.id"), nullable=False),
    Column("audience_id", ObjectId, ForeignKey("audiences.id"), nullable=False),
    Column("phone_number_ids", JSON, nullable=False),
    Column("status", String(16), nullable=False, default="draft"),
    Column("max_retries", Integer, nullable=False, default=3),
    Column("retry_delay", Integer, nullable=False, default=15),
    Column("scheduled_at", Ms),
    Column("started_at", Ms),
    Column("completed_at", Ms),
    Column("created_at", Ms, nullable=False),
    Column("updated_at", Ms, nullable=False),
    Index("ix_campaigns_org_created", "org_id", "created_at"),
)

# A campaign's history (created, started, paused, resumed, stopped, completed, deleted), oldest first.
campaign_events = Table(
    "campaign_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign_id", ObjectId, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(16), nullable=False),
    Column("created_at", Ms, nullable=False),
    Index("ix_campaign_events_campaign", "campaign_id", "id"),
)

# One row per (campaign, audience member): the dialer's work list and the campaign's per-member
# progress. A row is claimed by setting status "dialing" and lease_until in one UPDATE, so two
# dialers (or one restarted) never call the same member twice; an expired lease is a crashed
# attempt and is reconciled against the calls table before anyone dials again.
campaign_members = Table(
    "campaign_members",
    metadata,
    Column("campaign_id", ObjectId, ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    Column("member_id", ObjectId, primary_key=True),
    Column("phone_number", String(20), nullable=False),
    # queued → dialing → completed | no_answer | busy | failed | cancelled; retried rows go back to queued.
    Column("status", String(16), nullable=False, default="queued"),
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("next_attempt_at", Ms, nullable=False, default=0, server_default="0"),
    Column("lease_until", Ms),
    Column("last_call_id", SearchKey),
    Column("last_outcome", String(24)),
    Column("updated_at", Ms, nullable=False),
    Index("ix_campaign_members_due", "campaign_id", "status", "next_attempt_at"),
)

calls = Table(
    "calls",
    metadata,
    Column("pk", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("id", ObjectId, nullable=False, unique=True),
    Column("call_id", SearchKey, nullable=False, unique=True),
    Column("org_id", ObjectId, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("agent_id", ObjectId),
    Column("campaign_id", ObjectId),
    Column("type", String(24), nullable=False),
    Column("status", String(16), nullable=False),
    Column("disconnection_reason", String(24)),
    Column("call_failure_reason", Text),
    Column("from_number", SearchKey),
    Column("to_number", SearchKey),
    Column("duration", Float, nullable=False, default=0),
    Column("call_cost", Float, nullable=False, default=0),
    Column("recording_url", Text),
    Column("recording_dual_url", Text),
    Column("retry_count", Integer, nullable=False, default=0),
    Column("variables", JSON),
    Column("avg_transcriber_latency", Float),
    Column("avg_agent_latency", Float),
    Column("avg_synthesizer_latency", Float),
    # Mean of the measured stage latencies, 0 when none was measured (a call nobody answered).
    # Kept NOT NULL so that sortBy=avgLatency walks an index and orders alike on both databases.
    Column("avg_latency", Float, nullable=False, default=0),
    # Post-call analytics lifecycle (see dispo.analytics.jobs): pending → running → completed|failed.
    # Setting "pending" in the same transaction that ends the call is the durable record of the job;
    # the queue only carries it, and the sweeper re-enqueues what a crashed worker dropped.
    Column("analytics_status", String(16)),
    Column("analytics_config_id", Integer),
    Column("analytics_queued_at", Ms),
    Column("analytics_started_at", Ms),
    Column("analytics_finished_at", Ms),
    Column("analytics_attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("analytics_error", Text),
    Column("started_at", Ms),
    Column("ended_at", Ms),
    Column("created_at", Ms, nullable=False),
    Column("updated_at", Ms, nullable=False),
    # The id another voice stack gave an imported call (POST /conversation/import): unique per
    # organization, so importing the same call twice stores it once. NULL for Dispo's own calls.
    Column("external_id", String(200)),
    # Default listing: newest first. Every filter index ends with (created_at, pk) so the planner
    # can walk it in order and stop after one page.
    Index("ix_calls_org_created", "org_id", "created_at", "pk"),
    Index("ix_calls_org_updated", "org_id", "updated_at", "pk"),
    Index("ix_calls_org_agent_created", "org_id", "agent_id", "created_at", "pk"),
    Index("ix_calls_org_campaign_created", "org_id", "campaign_id", "created_at", "pk"),
    Index("ix_calls_org_status_created", "org_id", "status", "created_at", "pk"),
    Index("ix_calls_org_type_created", "org_id", "type", "created_at", "pk"),
    Index("ix_calls_org_reason_created", "org_id", "disconnection_reason", "created_at", "pk"),
    Index("ix_calls_org_duration", "org_id", "duration", "pk"),
    Index("ix_calls_org_latency", "org_id", "avg_latency", "pk"),
    # search= matches a prefix of either number; the call id has its own unique index.
    Index("ix_calls_org_from", "org_id", "from_number"),
    Index("ix_calls_org_to", "org_id", "to_number"),
    # The analytics sweeper's scan: calls pending or running, oldest first.
    Index("ix_calls_analytics_status", "analytics_status", "analytics_queued_at"),
    Index("uq_calls_org_external", "org_id", "external_id", unique=True),
)

transcript_messages = Table(
    "transcript_messages",
    metadata,
    Column(
        "call_pk",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("calls.pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("timestamp", Ms),
    # The agent's LLM time for this turn, in milliseconds (agent turns the model generated only).
    Column("latency_ms", Float),
    # Voice calls: the STT's time on this caller turn, the TTS's time to first audio of this agent
    # turn, and the agent turn's voice-to-voice time (caller stopped speaking → agent's first audio).
    Column("stt_ms", Float),
    Column("tts_ms", Float),
    Column("v2v_ms", Float),
    # Clustered by (call_pk, seq): one call's transcript sits together on disk.
    sqlite_with_rowid=False,
)

analytics_results = Table(
    "analytics_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "call_pk",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("calls.pk", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("config_id", Integer, ForeignKey("analytics_configs.id", ondelete="SET NULL")),
    Column("config_version", Integer),
    Column("summary", Text),
    Column("disposition_metrics", JSON, nullable=False),
    Column("model", String(200)),
    # Wall time of the whole analysis and the part spent inside the model, in milliseconds.
    Column("duration_ms", Float),
    Column("model_ms", Float),
    Column("created_at", Ms, nullable=False),
    Index("ix_analytics_results_call", "call_pk", "created_at"),
)

# The values the newest analysis of each call extracted, one row per metric, so that the call log
# filters and aggregates by them through indexes (``metric.budget=gte:5000``, GET
# /analytics/metrics). Replaced whenever an analysis completes (store/metric_values.py).
# value_text: every non-null value as text (ENUM/STRING as given, INTEGER as digits, BOOLEAN
# "true"/"false", DATETIME as stored); value_num: INTEGER, BOOLEAN 1/0, DATETIME epoch ms.
# A row with both NULL: the analysis ran and found no value.
call_metrics = Table(
    "call_metrics",
    metadata,
    Column(
        "call_pk",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("calls.pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("identifier", String(64), primary_key=True),
    Column("org_id", ObjectId, nullable=False),
    Column("type", String(16), nullable=False),
    Column("value_text", String(200)),
    Column("value_num", Float),
    Index("ix_call_metrics_text", "org_id", "identifier", "value_text"),
    Index("ix_call_metrics_num", "org_id", "identifier", "value_num"),
    sqlite_with_rowid=False,
)

# Transcript search (``search=`` on GET /conversation) is served by objects tables.py cannot
# declare; migration 0008 creates them and ``store.migrate.schema_diff`` leaves them out:
# SQLite: an FTS5 table ``transcript_fts`` (rowid = call_pk * 2**20 + seq) kept in step with
# transcript_messages by triggers; PostgreSQL: a GIN index on to_tsvector('simple', content).
SEARCH_OBJECTS = frozenset(
    {
        "transcript_fts",
        "transcript_fts_data",
        "transcript_fts_idx",
        "transcript_fts_content",
        "transcript_fts_docsize",
        "transcript_fts_config",
        "ix_transcript_messages_fts",
    }
)

# Per-day (call_counts) and per-week (call_counts_weekly) counts of calls by every dimension the
# list filters use. Totals for filtered lists are
# sums over this table instead of counts over millions of call rows; see store/calls.py.
call_counts = Table(
    "call_counts",
    metadata,
    Column("org_id", ObjectId, primary_key=True),
    Column("day", Integer, primary_key=True, autoincrement=False),  # days since 1970-01-01 UTC
    Column("agent_id", ObjectId, primary_key=True),  # "" for none: primary-key columns can't be NULL
    Column("campaign_id", ObjectId, primary_key=True),
    Column("status", String(16), primary_key=True),
    Column("type", String(24), primary_key=True),
    Column("disconnection_reason", String(24), primary_key=True),
    Column("duration_bucket", String(8), primary_key=True),
    Column("calls", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# The same counts per week (days since 1970-01-01 // 7): a 90-day total sums 13 weeks of cells
# instead of 90 days of them. Kept in step with call_counts by every write (store/calls.py).
call_counts_weekly = Table(
    "call_counts_weekly",
    metadata,
    Column("org_id", ObjectId, primary_key=True),
    Column("week", Integer, primary_key=True, autoincrement=False),
    Column("agent_id", ObjectId, primary_key=True),
    Column("campaign_id", ObjectId, primary_key=True),
    Column("status", String(16), primary_key=True),
    Column("type", String(24), primary_key=True),
    Column("disconnection_reason", String(24), primary_key=True),
    Column("duration_bucket", String(8), primary_key=True),
    Column("calls", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# Webhooks (``/webhook``): an endpoint, its signing secret (and the previous one during a rotation's
# grace period) and the (agent, event type) pairs it subscribes to.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", ObjectId, primary_key=True),
    Column("org_id", ObjectId, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("endpoint", String(2048), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("secret", String(80), nullable=False),
    Column("previous_secret", String(80)),
    Column("previous_secret_until", Ms),
    Column("created_at", Ms, nullable=False),
    Column("updated_at", Ms, nullable=False),
    Index("ix_webhooks_org_created", "org_id", "created_at"),
)

webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("webhook_id", ObjectId, ForeignKey("webhooks.id", ondelete="CASCADE"), primary_key=True),
    Column("agent_id", ObjectId, primary_key=True),
    Column("event_type", String(32), primary_key=True),
    # What an event looks up, in the transaction that causes it: the webhooks of (agent, type).
    Index("ix_webhook_subscriptions_agent_event", "agent_id", "event_type"),
)

# The outbox: one row per (event, webhook), written in the transaction of the change that causes
# the event (a call's end, its analytics' completion, ...), so no event is lost to a crash. A row
# goes pending → queued → running → delivered | pending (a retry, due at next_attempt_at) | dead.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("pk", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("id", ObjectId, nullable=False, unique=True),  # also the payload's idempotency key
    Column("webhook_id", ObjectId, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", ObjectId, nullable=False),  # shared by the deliveries of one event
    Column("event_type", String(32), nullable=False),
    Column("call_pk", BigInteger().with_variant(Integer, "sqlite")),
    Column("campaign_id", ObjectId),
    Column("occurred_at", Ms, nullable=False),
    Column("payload", JSON),  # frozen at the first attempt: every retry and replay sends the same body
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("next_attempt_at", Ms, nullable=False),
    Column("claimed_at", Ms),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("delivered_at", Ms),
    Column("created_at", Ms, nullable=False),
    Column("updated_at", Ms, nullable=False),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_webhook", "webhook_id", "created_at"),
)

# Every attempt at a delivery: what the endpoint answered (or why nothing came back), and how fast.
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "delivery_pk",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("webhook_deliveries.pk", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("attempt", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),  # delivered | failed
    Column("status_code", Integer),
    Column("latency_ms", Float),
    Column("response_excerpt", Text),
    Column("error", Text),
    Column("created_at", Ms, nullable=False),
    Index("ix_webhook_attempts_delivery", "delivery_pk", "attempt"),
)
