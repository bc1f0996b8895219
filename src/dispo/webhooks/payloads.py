"""What a webhook delivery sends: the event envelope, and the data of each event type.

Every payload is ``{eventId, eventType, idempotencyKey, webhookId, timestamp, data}``:

- ``idempotencyKey`` is the delivery's id: the same on every retry and replay of this event to
  this webhook, so a receiver can drop repeats (at-least-once delivery means there can be some).
- ``eventId`` is shared by the deliveries of one event to several webhooks.
- ``timestamp`` is when the event happened (ISO 8601), not when this attempt was made.
- ``data``: for ``pre-conversation`` and ``post-conversation`` the call log entry as
  ``GET /conversation/{id}`` renders it; for ``analytics-completed`` the call's ``summary`` and
  ``dispositionMetrics`` plus the whole ``call``; for ``campaign-completed`` the campaign and its
  metrics as ``GET /campaign/{id}`` renders them.

The payload is built at the first attempt and stored with the delivery, so retries and replays
send the same body.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from dispo.api import calllog
from dispo.store import campaigns as campaign_store
from dispo.store import webhooks as store
from dispo.timeutil import ms_to_iso
from dispo.types import Row

__all__ = ["build"]


def _call_data(conn: Connection, call_pk: int | None) -> dict[str, Any] | None:
    ref = store.call_ref(conn, call_pk) if call_pk is not None else None
    return None if ref is None else calllog.get_call(conn, *ref)


def _data(conn: Connection, delivery: Row) -> dict[str, Any] | None:
    kind = delivery["event_type"]
    if kind in ("pre-conversation", "post-conversation"):
        return _call_data(conn, delivery["call_pk"])
    if kind == "analytics-completed":
        call = _call_data(conn, delivery["call_pk"])
        if call is None:
            return None
        analytics = call.get("postCallAnalytics") or {}
        return {
            "callId": call.get("callId"),
            "summary": analytics.get("summary"),
            "dispositionMetrics": analytics.get("dispositionMetrics", []),
            "call": call,
        }
    if kind == "campaign-completed":
        from dispo.api.routes.campaigns import render_campaign  # the API's own rendering

        row = campaign_store.get_campaign(conn, delivery["org_id"], delivery["campaign_id"] or "")
        if row is None:
            return None
        return {"campaign": render_campaign(row), "metrics": campaign_store.metrics(conn, row)}
    return None


def build(conn: Connection, delivery: Row) -> dict[str, Any] | None:
    """The payload of ``delivery`` (a row of ``delivery_for_attempt``), or None when what the
    event is about no longer exists (the call or campaign was deleted)."""
    data = _data(conn, delivery)
    if data is None:
        return None
    return {
        "eventId": delivery["event_id"],
        "eventType": delivery["event_type"],
        "idempotencyKey": delivery["id"],
        "webhookId": delivery["webhook_id"],
        "timestamp": ms_to_iso(delivery["occurred_at"]),
        "data": data,
    }
