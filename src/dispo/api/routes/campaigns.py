"""Campaigns (``/campaign``): an agent calling an audience; see ``dispo.store.campaigns`` for the
lifecycle. Dialling itself happens in the background (the dialer), never in a request."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from dispo.api.bodies import JsonBody
from dispo.api.contract import ContractRoute, json_body
from dispo.api.deps import DbDep, OrgDep
from dispo.api.responses import ok
from dispo.api.schemas import (
    AUTHED,
    WITH_BODY,
    CampaignActionPublic,
    CampaignCreate,
    CampaignDetailPublic,
    CampaignListPublic,
    CampaignPublic,
    Envelope,
    errors,
    parse,
)
from dispo.errors import Conflict, NotFound, ValidationFailed
from dispo.ids import is_object_id
from dispo.store import agents as agent_store
from dispo.store import audiences as audience_store
from dispo.store import campaigns as store
from dispo.store import phone_numbers as number_store
from dispo.timeutil import ms_to_iso, now_ms, parse_instant
from dispo.types import Row

if TYPE_CHECKING:
    from dispo.runtime.dialer import Dialer

router = APIRouter(tags=["campaigns"], route_class=ContractRoute)


def render_campaign(row: Row) -> dict[str, Any]:
    """A campaign: Atoms' fields plus ``agent`` and ``audience`` as ``{_id, name}``."""
    status = row["status"]
    return {
        "_id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "organization": row["org_id"],
        "agentId": row["agent_id"],
        "audienceId": row["audience_id"],
        "agent": {"_id": row["agent_id"], "name": row["agent_name"]},
        "audience": {"_id": row["audience_id"], "name": row["audience_name"]},
        "phoneNumberIds": list(row["phone_number_ids"] or []),
        "status": status,
        "maxRetries": row["max_retries"],
        "retryDelay": row["retry_delay"],
        "isCampaignInProgress": status in ("processing", "running"),
        "isCampaignCompleted": status == "completed",
        "scheduledAt": ms_to_iso(row["scheduled_at"]),
        "startedAt": ms_to_iso(row["started_at"]),
        "completedAt": ms_to_iso(row["completed_at"]),
        "createdAt": ms_to_iso(row["created_at"]),
        "updatedAt": ms_to_iso(row["updated_at"]),
    }


def _campaign_or_404(conn: Any, org_id: str, campaign_id: str) -> Row:
    row = store.get_campaign(conn, org_id, campaign_id) if is_object_id(campaign_id) else None
    if row is None:
        raise NotFound(f"No campaign {campaign_id} in this organization: list campaigns with GET /campaign.")
    return row


def _campaign_values(body: Any) -> dict[str, Any]:
    """Validate a ``POST /campaign`` body into column values (ids still unchecked); every problem
    in the body is reported at once."""
    campaign = parse(CampaignCreate, body)
    scheduled_at = None
    if campaign.scheduled_at is not None:
        scheduled_at = parse_instant(str(campaign.scheduled_at), field="scheduledAt")
        if scheduled_at <= now_ms():
            raise ValidationFailed(
                "scheduledAt is in the past: leave it out and start the campaign with "
                "POST /campaign/{id}/start, or give a future time."
            )
    phone_ids = campaign.phone_number_ids
    return {
        "name": campaign.name.strip(),
        "description": (campaign.description or "").strip(),
        "agent_id": campaign.agent_id.strip(),
        "audience_id": campaign.audience_id.strip(),
        "phone_number_ids": list(dict.fromkeys(phone_ids)) if phone_ids is not None else None,
        "max_retries": 3 if campaign.max_retries is None else campaign.max_retries,
        "retry_delay": 15 if campaign.retry_delay is None else campaign.retry_delay,
        "scheduled_at": scheduled_at,
    }


def _check_references(conn: Any, org_id: str, values: dict[str, Any]) -> None:
    """The agent, audience and numbers must be the organization's (404 naming the one that is not)."""
    agent_id = values["agent_id"]
    agent = agent_store.get_agent(conn, org_id, agent_id) if is_object_id(agent_id) else None
    if agent is None:
        raise NotFound(f"No agent {agent_id} in this organization: agentId must be an id from GET /agent.")
    if agent["archived_at"] is not None:
        raise ValidationFailed(
            f"Agent {agent_id} is archived: restore it with DELETE /agent/{agent_id}/archive?on=false, "
            "or choose another agent."
        )
    audience_id = values["audience_id"]
    audience = audience_store.get_audience(conn, org_id, audience_id) if is_object_id(audience_id) else None
    if audience is None:
        raise NotFound(
            f"No audience {audience_id} in this organization: audienceId must be an id from GET /audience."
        )
    phone_ids = values["phone_number_ids"]
    if phone_ids is None:
        phone_ids = number_store.active_ids(conn, org_id)
        if not phone_ids:
            raise ValidationFailed(
                "This organization has no phone numbers to call from: add one with `dispo numbers add "
                "+14155550123` or DISPO_PHONE_NUMBERS, then pass its _id from GET /product/phone-numbers "
                "in phoneNumberIds."
            )
        values["phone_number_ids"] = phone_ids
        return
    found = number_store.get_many(conn, org_id, [p for p in phone_ids if is_object_id(p)])
    missing = [p for p in phone_ids if p not in found]
    if missing:
        raise NotFound(
            f"No phone number {', '.join(missing)} in this organization: phoneNumberIds must be _id values "
            "from GET /product/phone-numbers."
        )
    inactive = [p for p in phone_ids if not found[p]["is_active"]]
    if inactive:
        raise ValidationFailed(
            f"Phone number {', '.join(inactive)} is inactive: choose active numbers from GET /product/phone-numbers."
        )


@router.post(
    "/campaign",
    status_code=201,
    summary="Create a campaign (status draft, or scheduled with scheduledAt)",
    response_model=Envelope[CampaignPublic],
    responses=errors(*WITH_BODY, 404),
    openapi_extra=json_body(
        CampaignCreate,
        {
            "name": "Spring outreach",
            "agentId": "6b018a82b38fd67804d54c9f",
            "audienceId": "6b018a82b38fd67804d54ca0",
            "phoneNumberIds": ["6b018a82b38fd67804d54ca1"],
            "maxRetries": 3,
            "retryDelay": 15,
        },
    ),
)
def create_campaign(db: DbDep, org_id: OrgDep, body: JsonBody) -> Response:
    values = _campaign_values(body)
    with db.write() as conn:
        _check_references(conn, org_id, values)
        campaign_id = store.create_campaign(conn, org_id, values)
        row = store.get_campaign(conn, org_id, campaign_id)
    assert row is not None
    return ok(render_campaign(row), status_code=201)


@router.get(
    "/campaign",
    summary="List campaigns, newest first",
    response_model=Envelope[CampaignListPublic],
    responses=errors(*AUTHED),
)
def list_campaigns(
    db: DbDep,
    org_id: OrgDep,
    page: int | None = Query(None, ge=1, le=1_000_000, description="1-based page (default 1)."),
    limit: int | None = Query(None, ge=1, le=1000, description="Page size (default 10)."),
    offset: int | None = Query(None, ge=1, le=1000, description="Page size, as the Atoms docs name it."),
    status: str | None = Query(None, description="Comma-separated statuses, e.g. running,paused."),
    search: str | None = Query(None, max_length=200, description="Part of the name or description."),
) -> Response:
    if limit is not None and offset is not None and limit != offset:
        raise ValidationFailed(
            f"limit={limit} and offset={offset} disagree: both set the page size; send one."
        )
    page = page or 1
    size = limit or offset or 10
    statuses: tuple[str, ...] = ()
    if status:
        statuses = tuple(dict.fromkeys(s.strip() for s in status.split(",") if s.strip()))
        bad = [s for s in statuses if s not in store.STATUSES]
        if bad:
            raise ValidationFailed(
                f"status {', '.join(repr(s) for s in bad)} is not a campaign status: use "
                f"{', '.join(store.STATUSES)} (comma-separated)."
            )
    if search and "\x00" in search:
        raise ValidationFailed("search contains a NUL character (%00): remove it.")
    with db.read() as conn:
        rows, total = store.list_campaigns(
            conn, org_id, limit=size, offset=(page - 1) * size, statuses=statuses, search=search
        )
    total_pages = math.ceil(total / size)
    return ok(
        {
            "campaigns": [render_campaign(r) for r in rows],
            "pagination": {
                "total": total,
                "page": page,
                "limit": size,
                "hasMore": page < total_pages,
                "totalPages": total_pages,
            },
        }
    )


@router.get(
    "/campaign/{campaign_id}",
    summary="A campaign with its events and metrics",
    response_model=Envelope[CampaignDetailPublic],
    responses=errors(*AUTHED, 404),
)
def get_campaign(campaign_id: str, db: DbDep, org_id: OrgDep) -> Response:
    with db.read() as conn:
        row = _campaign_or_404(conn, org_id, campaign_id)
        events = store.events(conn, campaign_id)
        metrics = store.metrics(conn, row)
    return ok(
        {
            "campaign": render_campaign(row),
            "events": [{"type": e["event"], "createdAt": ms_to_iso(e["created_at"])} for e in events],
            "metrics": metrics,
        }
    )


def _refuse(row: Row, action: str) -> Conflict:
    """Why ``action`` cannot happen to the campaign in its current status."""
    campaign_id, status = row["id"], row["status"]
    reasons = {
        "deleted": f"Campaign {campaign_id} was deleted: it cannot be {action}; create a new campaign.",
        "completed": f"Campaign {campaign_id} is completed: it cannot be {action}; create a new campaign "
        "with the same agent and audience to call them again.",
    }
    if status in reasons:
        return Conflict(reasons[status])
    hints = {
        ("started", "running"): "it is already running; pause it with POST /campaign/{id}/pause.",
        ("paused", "paused"): "it is already paused; resume it with POST /campaign/{id}/start.",
        ("paused", "draft"): "it has not started; start it with POST /campaign/{id}/start.",
        ("stopped", "draft"): "it has not started; delete it with DELETE /campaign/{id} instead.",
    }
    hint = hints.get((action, status), f"it is {status}.")
    return Conflict(f"Campaign {campaign_id} cannot be {action}: {hint.replace('{id}', campaign_id)}")


@router.post(
    "/campaign/{campaign_id}/start",
    status_code=202,
    summary="Start (or resume a paused) campaign; calls are made in the background",
    response_model=Envelope[CampaignActionPublic],
    responses=errors(*AUTHED, 404, 409),
)
def start_campaign(request: Request, campaign_id: str, db: DbDep, org_id: OrgDep) -> Response:
    with db.write() as conn:
        row = _campaign_or_404(conn, org_id, campaign_id)
        if row["status"] not in store.STARTABLE:
            raise _refuse(row, "started")
        agent = agent_store.get_agent(conn, org_id, row["agent_id"])
        if agent is None or agent["archived_at"] is not None:
            raise Conflict(
                f"Agent {row['agent_id']} of campaign {campaign_id} is archived: restore it with "
                f"DELETE /agent/{row['agent_id']}/archive?on=false, then start again."
            )
        if row["started_at"] is None and audience_store.count_members(conn, row["audience_id"]) == 0:
            raise ValidationFailed(
                f"Audience {row['audience_id']} has no members: add contacts with "
                f"POST /audience/{row['audience_id']}/members, then start again."
            )
        resumed = row["status"] == "paused"
        if not store.start(conn, row):
            raise _refuse(_campaign_or_404(conn, org_id, campaign_id), "started")
        status = _campaign_or_404(conn, org_id, campaign_id)["status"]
    dialer: Dialer | None = request.app.state.dialer  # None: no dialer here, another one polls
    if dialer is not None:
        dialer.wake()  # committed above: the first calls go out now, not at the next poll
    return ok(
        {
            "message": "Campaign resumed" if resumed else "Campaign started",
            "campaignId": campaign_id,
            "status": status,
        },
        status_code=202,
    )


@router.post(
    "/campaign/{campaign_id}/pause",
    summary="Pause a running campaign; start resumes it",
    response_model=Envelope[CampaignActionPublic],
    responses=errors(*AUTHED, 404, 409),
)
def pause_campaign(campaign_id: str, db: DbDep, org_id: OrgDep) -> Response:
    with db.write() as conn:
        row = _campaign_or_404(conn, org_id, campaign_id)
        if row["status"] not in store.PAUSABLE or not store.pause(conn, campaign_id):
            raise _refuse(_campaign_or_404(conn, org_id, campaign_id), "paused")
    return ok({"message": "Campaign paused", "campaignId": campaign_id, "status": "paused"})


@router.post(
    "/campaign/{campaign_id}/stop",
    summary="Stop a campaign for good: queued contacts are cancelled and it becomes completed",
    response_model=Envelope[CampaignActionPublic],
    responses=errors(*AUTHED, 404, 409),
)
def stop_campaign(campaign_id: str, db: DbDep, org_id: OrgDep) -> Response:
    with db.write() as conn:
        row = _campaign_or_404(conn, org_id, campaign_id)
        if row["status"] not in store.STOPPABLE or not store.stop(conn, campaign_id):
            raise _refuse(_campaign_or_404(conn, org_id, campaign_id), "stopped")
    return ok({"message": "Campaign stopped", "campaignId": campaign_id, "status": "completed"})


@router.delete(
    "/campaign/{campaign_id}",
    summary="Delete a campaign (its calls stay in the call log)",
    response_model=Envelope[CampaignActionPublic],
    responses=errors(*AUTHED, 404, 409),
)
def delete_campaign(campaign_id: str, db: DbDep, org_id: OrgDep) -> Response:
    with db.write() as conn:
        row = _campaign_or_404(conn, org_id, campaign_id)
        if row["status"] == "deleted" or not store.delete(conn, campaign_id):
            raise Conflict(f"Campaign {campaign_id} is already deleted.")
    return ok({"message": "Campaign deleted", "campaignId": campaign_id})
