"""Webhooks (``/webhook``): Atoms' endpoints and agent subscriptions, plus what Atoms lacks: a
signing secret per webhook and its rotation, the delivery log, and replays. Delivery itself
happens in the background (:mod:`dispo.webhooks`); see docs/webhooks.md."""

from __future__ import annotations

import math
import secrets
from typing import Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from dispo.api.bodies import JsonBody
from dispo.api.contract import ContractRoute, json_body
from dispo.api.deps import DbDep, OrgDep, SettingsDep
from dispo.api.responses import ok
from dispo.api.schemas import (
    AUTHED,
    WITH_BODY,
    DeliveryPagePublic,
    Envelope,
    ReplayedPublic,
    WebhookCreate,
    WebhookDeletedPublic,
    WebhookPublic,
    WebhookReplay,
    WebhookUpdate,
    _choice_pattern,
    errors,
    parse,
)
from dispo.errors import Conflict, NotFound, ValidationFailed
from dispo.ids import is_object_id
from dispo.store import agents as agent_store
from dispo.store import webhook_deliveries as delivery_store
from dispo.store import webhooks as store
from dispo.timeutil import ms_to_iso, now_ms, parse_instant
from dispo.types import Row

router = APIRouter(tags=["webhooks"], route_class=ContractRoute)

_EXAMPLE = {
    "endpoint": "https://crm.example.com/hooks/dispo",
    "description": "Calls into the CRM",
    "events": [{"agentId": "6b018a82b38fd67804d54c9f", "eventType": "post-conversation"}],
}


def new_secret() -> str:
    """A webhook secret: 32 random bytes, URL-safe (``whsec_…``)."""
    return "whsec_" + secrets.token_urlsafe(32)


def render_webhook(row: Row, *, secret: bool = False) -> dict[str, Any]:
    until = row["previous_secret_until"]
    out: dict[str, Any] = {
        "_id": row["id"],
        "endpoint": row["endpoint"],
        "description": row["description"],
        "organization": row["org_id"],
        "events": [{"agentId": a, "eventType": t} for a, t in row["events"]],
        "previousSecretValidUntil": ms_to_iso(until) if until is not None and until > now_ms() else None,
        "createdAt": ms_to_iso(row["created_at"]),
        "updatedAt": ms_to_iso(row["updated_at"]),
    }
    if secret:
        out["secret"] = row["secret"]
    return out


def _webhook_or_404(conn: Any, org_id: str, webhook_id: str) -> Row:
    row = store.get_webhook(conn, org_id, webhook_id) if is_object_id(webhook_id) else None
    if row is None:
        raise NotFound(f"No webhook {webhook_id} in this organization: list webhooks with GET /webhook.")
    return row


def _check_agents(conn: Any, org_id: str, events: list[Any]) -> list[tuple[str, str]]:
    pairs = [(e.agent_id.strip(), e.event_type) for e in events]
    missing = sorted(
        {a for a, _ in pairs if not is_object_id(a) or agent_store.get_agent(conn, org_id, a) is None}
    )
    if missing:
        raise NotFound(
            f"No agent {', '.join(missing)} in this organization: each event's agentId must be an id "
            "from GET /agent."
        )
    return pairs


@router.post(
    "/webhook",
    status_code=201,
    summary="Create a webhook; the answer holds its signing secret (shown only here and on rotation)",
    response_model=Envelope[WebhookPublic],
    responses=errors(*WITH_BODY, 404),
    openapi_extra=json_body(WebhookCreate, _EXAMPLE),
)
def create_webhook(db: DbDep, org_id: OrgDep, body: JsonBody) -> Response:
    webhook = parse(WebhookCreate, body)
    with db.write() as conn:
        events = _check_agents(conn, org_id, webhook.events)
        webhook_id = store.create_webhook(
            conn,
            org_id,
            endpoint=webhook.endpoint.strip(),
            description=(webhook.description or "").strip(),
            events=events,
            secret=new_secret(),
        )
        row = _webhook_or_404(conn, org_id, webhook_id)
    return ok(render_webhook(row, secret=True), status_code=201)


@router.get(
    "/webhook",
    summary="The organization's webhooks, newest first",
    response_model=Envelope[list[WebhookPublic]],
    responses=errors(*AUTHED),
)
def list_webhooks(db: DbDep, org_id: OrgDep) -> Response:
    with db.read() as conn:
        rows = store.list_webhooks(conn, org_id)
    return ok([render_webhook(r) for r in rows])


@router.get(
    "/webhook/{webhook_id}",
    summary="A webhook and its subscriptions",
    response_model=Envelope[WebhookPublic],
    responses=errors(*AUTHED, 404),
)
def get_webhook(webhook_id: str, db: DbDep, org_id: OrgDep) -> Response:
    with db.read() as conn:
        row = _webhook_or_404(conn, org_id, webhook_id)
    return ok(render_webhook(row))


@router.patch(
    "/webhook/{webhook_id}",
    summary="Change a webhook's endpoint, description or events (events replaces the list)",
    response_model=Envelope[WebhookPublic],
    responses=errors(*WITH_BODY, 404),
    openapi_extra=json_body(WebhookUpdate, {"events": _EXAMPLE["events"]}),
)
def update_webhook(webhook_id: str, db: DbDep, org_id: OrgDep, body: JsonBody) -> Response:
    change = parse(WebhookUpdate, body)
    values: dict[str, Any] = {}
    if change.endpoint is not None:
        values["endpoint"] = change.endpoint.strip()
    if change.description is not None:
        values["description"] = change.description.strip()
    with db.write() as conn:
        _webhook_or_404(conn, org_id, webhook_id)
        events = _check_agents(conn, org_id, change.events) if change.events is not None else None
        store.update_webhook(conn, webhook_id, values, events)
        row = _webhook_or_404(conn, org_id, webhook_id)
    return ok(render_webhook(row))


@router.delete(
    "/webhook/{webhook_id}",
    summary="Delete a webhook, its subscriptions and its delivery log",
    response_model=Envelope[WebhookDeletedPublic],
    responses=errors(*AUTHED, 404),
)
def delete_webhook(webhook_id: str, db: DbDep, org_id: OrgDep) -> Response:
    with db.write() as conn:
        _webhook_or_404(conn, org_id, webhook_id)
        store.delete_webhook(conn, org_id, webhook_id)
    return ok({"_id": webhook_id, "deleted": True})


@router.post(
    "/webhook/{webhook_id}/rotate-secret",
    summary="Replace the signing secret; the old one also signs (X-Signature-Previous) for a grace period",
    response_model=Envelope[WebhookPublic],
    responses=errors(*AUTHED, 404),
)
def rotate_secret(webhook_id: str, db: DbDep, org_id: OrgDep, settings: SettingsDep) -> Response:
    until = now_ms() + int(settings.webhook_secret_grace_seconds * 1000)
    with db.write() as conn:
        _webhook_or_404(conn, org_id, webhook_id)
        store.rotate_secret(conn, webhook_id, new_secret(), until)
        row = _webhook_or_404(conn, org_id, webhook_id)
    return ok(render_webhook(row, secret=True))


# ---------------------------------------------------------------------------------------------
# The delivery log and replays


def render_delivery(row: Row, attempts: list[Row]) -> dict[str, Any]:
    pending = row["status"] == "pending"
    return {
        "_id": row["id"],
        "eventId": row["event_id"],
        "eventType": row["event_type"],
        "idempotencyKey": row["id"],
        "status": row["status"],
        "attempts": row["attempts"],
        "nextAttemptAt": ms_to_iso(row["next_attempt_at"]) if pending else None,
        "lastStatusCode": row["last_status_code"],
        "lastError": row["last_error"],
        "deliveredAt": ms_to_iso(row["delivered_at"]),
        "createdAt": ms_to_iso(row["created_at"]),
        "updatedAt": ms_to_iso(row["updated_at"]),
        "attemptLog": [
            {
                "attempt": a["attempt"],
                "outcome": a["outcome"],
                "statusCode": a["status_code"],
                "latencyMs": a["latency_ms"],
                "responseExcerpt": a["response_excerpt"],
                "error": a["error"],
                "createdAt": ms_to_iso(a["created_at"]),
            }
            for a in attempts
        ],
    }


def _status_filter(status: str | None) -> tuple[str, ...]:
    if not status:
        return ()
    wanted = tuple(dict.fromkeys(s.strip() for s in status.split(",") if s.strip()))
    bad = [s for s in wanted if s not in delivery_store.DELIVERY_STATUSES]
    if bad:
        raise ValidationFailed(
            f"status {', '.join(repr(s) for s in bad)} is not a delivery status: use "
            f"{', '.join(delivery_store.DELIVERY_STATUSES)} (comma-separated)."
        )
    return wanted


@router.get(
    "/webhook/{webhook_id}/deliveries",
    summary="The webhook's deliveries, newest first, each with its attempts",
    response_model=Envelope[DeliveryPagePublic],
    responses=errors(*AUTHED, 404),
)
def list_deliveries(
    webhook_id: str,
    db: DbDep,
    org_id: OrgDep,
    page: int = Query(1, ge=1, le=1_000_000, description="1-based page."),
    limit: int = Query(20, ge=1, le=100, description="Page size."),
    status: str | None = Query(
        None,
        max_length=200,
        description="Comma-separated statuses: pending, queued, running, delivered, dead.",
        json_schema_extra={"pattern": _choice_pattern(delivery_store.DELIVERY_STATUSES)},
    ),
) -> Response:
    statuses = _status_filter(status)
    with db.read() as conn:
        _webhook_or_404(conn, org_id, webhook_id)
        rows = delivery_store.list_deliveries(
            conn, webhook_id, statuses=statuses, limit=limit, offset=(page - 1) * limit
        )
        total = delivery_store.count_deliveries(conn, webhook_id, statuses)
        attempts = delivery_store.attempts_of(conn, [int(r["pk"]) for r in rows])
    return ok(
        {
            "deliveries": [render_delivery(r, attempts[int(r["pk"])]) for r in rows],
            "pagination": {
                "total": total,
                "page": page,
                "limit": limit,
                "hasMore": page < math.ceil(total / limit),
            },
        }
    )


@router.post(
    "/webhook/{webhook_id}/deliveries/{delivery_id}/replay",
    summary="Send a delivered or dead-lettered delivery again (same idempotency key and body)",
    response_model=Envelope[ReplayedPublic],
    responses=errors(*AUTHED, 404, 409),
)
def replay_delivery(webhook_id: str, delivery_id: str, db: DbDep, org_id: OrgDep) -> Response:
    with db.write() as conn:
        _webhook_or_404(conn, org_id, webhook_id)
        row = (
            delivery_store.get_delivery(conn, webhook_id, delivery_id) if is_object_id(delivery_id) else None
        )
        if row is None:
            raise NotFound(
                f"No delivery {delivery_id} for webhook {webhook_id}: list them with "
                f"GET /webhook/{webhook_id}/deliveries."
            )
        if not delivery_store.replay(conn, webhook_id, delivery_id, now_ms()):
            raise Conflict(
                f"Delivery {delivery_id} is {row['status']}: it is being delivered already; only "
                "delivered or dead deliveries are replayed."
            )
    return ok({"replayed": 1})


@router.post(
    "/webhook/{webhook_id}/replay",
    summary="Send again every dead-lettered (or delivered) delivery of the webhook, optionally in a date range",
    response_model=Envelope[ReplayedPublic],
    responses=errors(*WITH_BODY, 404),
    openapi_extra=json_body(WebhookReplay, {"status": ["dead"], "dateFrom": "2026-11-01"}),
)
def replay_many(webhook_id: str, db: DbDep, org_id: OrgDep, body: JsonBody) -> Response:
    replay = parse(WebhookReplay, body)
    date_from = (
        parse_instant(str(replay.date_from), field="dateFrom") if replay.date_from is not None else None
    )
    date_to = (
        parse_instant(str(replay.date_to), field="dateTo", end_of_day=True)
        if replay.date_to is not None
        else None
    )
    if date_from is not None and date_to is not None and date_from > date_to:
        raise ValidationFailed("dateFrom is after dateTo: swap them.")
    with db.write() as conn:
        _webhook_or_404(conn, org_id, webhook_id)
        count = delivery_store.replay_many(
            conn, webhook_id, replay.status or ["dead"], date_from, date_to, now_ms()
        )
    return ok({"replayed": count})
