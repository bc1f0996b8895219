"""Webhooks and the events they subscribe to: the endpoints' rows, and :func:`emit`, which writes
an event's deliveries into the outbox (``webhook_deliveries``) in the caller's transaction.

Code that changes state calls :func:`emit` (or :func:`emit_for_call`) inside the transaction of
the change: the end of a call (:func:`dispo.store.calls.end_call`), the completion of its analytics
(:func:`dispo.store.analytics_jobs.complete`), the start of a call, the completion of a campaign.
The delivery rows commit with the change or not at all, so a crash can never lose an event nor
send one for a change that was rolled back. Delivering them is :mod:`dispo.webhooks`' business.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select

from dispo.ids import new_object_id
from dispo.store.tables import calls, campaigns, webhook_deliveries, webhook_subscriptions, webhooks
from dispo.timeutil import now_ms
from dispo.types import Row

__all__ = [
    "EVENT_TYPES",
    "call_ref",
    "create_webhook",
    "delete_webhook",
    "emit",
    "emit_for_call",
    "emit_for_campaign",
    "get_webhook",
    "has_subscribers",
    "list_webhooks",
    "rotate_secret",
    "update_webhook",
]

EVENT_TYPES = ("pre-conversation", "post-conversation", "analytics-completed", "campaign-completed")

Event = tuple[str, str]  # (agent id, event type)
w, s = webhooks.c, webhook_subscriptions.c


def _subscribe(conn: Connection, webhook_id: str, events: Sequence[Event]) -> None:
    pairs = list(dict.fromkeys(events))
    if pairs:
        conn.execute(
            webhook_subscriptions.insert(),
            [{"webhook_id": webhook_id, "agent_id": a, "event_type": t} for a, t in pairs],
        )


def create_webhook(
    conn: Connection, org_id: str, *, endpoint: str, description: str, events: Sequence[Event], secret: str
) -> str:
    webhook_id = new_object_id()
    now = now_ms()
    conn.execute(
        webhooks.insert().values(
            id=webhook_id,
            org_id=org_id,
            endpoint=endpoint,
            description=description,
            secret=secret,
            created_at=now,
            updated_at=now,
        )
    )
    _subscribe(conn, webhook_id, events)
    return webhook_id


def _with_events(conn: Connection, rows: Sequence[Row]) -> list[Row]:
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    events: dict[str, list[Event]] = {i: [] for i in ids}
    stmt = select(s.webhook_id, s.agent_id, s.event_type).where(s.webhook_id.in_(ids))
    for webhook_id, agent_id, event_type in conn.execute(stmt.order_by(s.agent_id, s.event_type)):
        events[webhook_id].append((agent_id, event_type))
    return [{**r, "events": events[r["id"]]} for r in rows]


def get_webhook(conn: Connection, org_id: str, webhook_id: str) -> Row | None:
    """The organization's webhook with its ``events`` (``[(agent id, event type)]``), or None."""
    row = conn.execute(select(webhooks).where(w.id == webhook_id, w.org_id == org_id)).mappings().first()
    return None if row is None else _with_events(conn, [row])[0]


def list_webhooks(conn: Connection, org_id: str) -> list[Row]:
    """The organization's webhooks, newest first, with their events."""
    stmt = select(webhooks).where(w.org_id == org_id).order_by(w.created_at.desc(), w.id.desc())
    return _with_events(conn, list(conn.execute(stmt).mappings()))


def update_webhook(
    conn: Connection, webhook_id: str, values: Row, events: Sequence[Event] | None = None
) -> None:
    """Change ``endpoint``/``description`` (``values``) and, when given, replace the events."""
    conn.execute(webhooks.update().where(w.id == webhook_id).values(updated_at=now_ms(), **values))
    if events is not None:
        conn.execute(webhook_subscriptions.delete().where(s.webhook_id == webhook_id))
        _subscribe(conn, webhook_id, events)


def delete_webhook(conn: Connection, org_id: str, webhook_id: str) -> bool:
    """Delete the webhook, its subscriptions and its deliveries (cascade); False if none."""
    return bool(conn.execute(webhooks.delete().where(w.id == webhook_id, w.org_id == org_id)).rowcount == 1)


def rotate_secret(conn: Connection, webhook_id: str, secret: str, previous_until: int) -> None:
    """Make ``secret`` the signing secret; the old one also signs until ``previous_until`` (ms)."""
    old = conn.execute(select(w.secret).where(w.id == webhook_id)).scalar_one()
    now = now_ms()
    conn.execute(
        webhooks.update()
        .where(w.id == webhook_id)
        .values(secret=secret, previous_secret=old, previous_secret_until=previous_until, updated_at=now)
    )


# ---------------------------------------------------------------------------------------------
# Events: the outbox rows, in the transaction of the change


def emit(
    conn: Connection,
    org_id: str,
    agent_id: str | None,
    event_type: str,
    *,
    call_pk: int | None = None,
    campaign_id: str | None = None,
    now: int | None = None,
) -> int:
    """Write a delivery of the event to each of the organization's webhooks subscribed to
    (``agent_id``, ``event_type``); returns how many. Call it in the transaction of the change."""
    if not agent_id:
        return 0
    stmt = (
        select(s.webhook_id)
        .join(webhooks, w.id == s.webhook_id)
        .where(s.agent_id == agent_id, s.event_type == event_type, w.org_id == org_id)
    )
    targets = [str(r) for r in conn.execute(stmt).scalars()]
    if not targets:
        return 0
    at = now_ms() if now is None else now
    event_id = new_object_id(at)
    conn.execute(
        webhook_deliveries.insert(),
        [
            {
                "id": new_object_id(at),
                "webhook_id": webhook_id,
                "event_id": event_id,
                "event_type": event_type,
                "call_pk": call_pk,
                "campaign_id": campaign_id,
                "occurred_at": at,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": at,
                "created_at": at,
                "updated_at": at,
            }
            for webhook_id in targets
        ],
    )
    return len(targets)


def has_subscribers(conn: Connection, agent_id: str | None, event_type: str) -> bool:
    """Whether any webhook subscribes to (``agent_id``, ``event_type``): lets a caller skip a write."""
    if not agent_id:
        return False
    stmt = select(s.webhook_id).where(s.agent_id == agent_id, s.event_type == event_type).limit(1)
    return conn.execute(stmt).first() is not None


def emit_for_call(conn: Connection, call_pk: int, event_type: str) -> int:
    """:func:`emit` an event about a call (its organization and agent read from its row)."""
    row = conn.execute(select(calls.c.org_id, calls.c.agent_id).where(calls.c.pk == call_pk)).first()
    if row is None:
        return 0
    return emit(conn, row.org_id, row.agent_id, event_type, call_pk=call_pk)


def emit_for_campaign(conn: Connection, campaign_id: str, event_type: str) -> int:
    """:func:`emit` an event about a campaign (to the webhooks of the campaign's agent)."""
    c = campaigns.c
    row = conn.execute(select(c.org_id, c.agent_id).where(c.id == campaign_id)).first()
    if row is None:
        return 0
    return emit(conn, row.org_id, row.agent_id, event_type, campaign_id=campaign_id)


def call_ref(conn: Connection, call_pk: int) -> tuple[str, str] | None:
    """``(org id, call id)`` of a call, or None when it is gone."""
    row = conn.execute(select(calls.c.org_id, calls.c.call_id).where(calls.c.pk == call_pk)).first()
    return None if row is None else (str(row.org_id), str(row.call_id))
