"""Call logs: ``/conversation`` list, detail and batch search."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request
from starlette.responses import Response

from dispo import calllog
from dispo.api.bodies import json_object
from dispo.api.deps import DbDep, OrgDep, SettingsDep
from dispo.api.responses import ok
from dispo.errors import NotFound, ValidationFailed
from dispo.ids import is_call_id, is_object_id

router = APIRouter(tags=["call logs"])


@router.get(
    "/conversation",
    summary="List calls",
    description=(
        "Newest first by default. Filters: agentIds, campaignIds, statusFilter, callTypes, "
        "disconnectReasonFilter (comma-separated), search (call id or phone-number prefix), "
        "dateFrom/dateTo (ISO 8601, epoch ms or '7 days ago'), durationFilter (0-30, 30-60, 1-5, 5+), "
        "minDuration/maxDuration (seconds), sortBy (createdAt, updatedAt, callDuration, avgLatency), "
        "sortOrder. Paginate with page/limit (limit 1-1000) or with cursor=pagination.nextCursor."
    ),
)
def list_conversations(request: Request, db: DbDep, org_id: OrgDep, settings: SettingsDep) -> Response:
    query = calllog.parse_list_query(
        org_id,
        request.query_params,
        default_limit=settings.page_limit_default,
        max_limit=settings.page_limit_max,
    )
    with db.read() as conn:
        return ok(calllog.list_calls(conn, query))


@router.post("/conversation/search", summary="Fetch up to 100 calls by id")
def search_conversations(
    db: DbDep,
    org_id: OrgDep,
    settings: SettingsDep,
    body: Any = Body(..., examples=[{"callIds": ["CALL-1768807723178-4561d0"]}]),
) -> Response:
    body = json_object(body)
    call_ids = body.get("callIds")
    most = settings.search_ids_max
    if not isinstance(call_ids, list) or not all(isinstance(c, str) for c in call_ids):
        raise ValidationFailed(
            'callIds is required: a list of call id strings, e.g. {"callIds": ["CALL-…"]}.'
        )
    if not call_ids:
        raise ValidationFailed(f"callIds is empty: give 1 to {most} call ids.")
    if len(call_ids) > most:
        raise ValidationFailed(
            f"callIds lists {len(call_ids)} ids; at most {most} are allowed per request: send them in batches of {most}."
        )
    unknown_keys = sorted(set(body) - {"callIds"})
    if unknown_keys:
        raise ValidationFailed(f"Unknown field {', '.join(unknown_keys)}: this endpoint takes only callIds.")
    with db.read() as conn:
        return ok(calllog.search_calls(conn, org_id, call_ids))


@router.get("/conversation/{call_id}", summary="Get one call with transcript, recordings, cost and analytics")
def get_conversation(call_id: str, db: DbDep, org_id: OrgDep) -> Response:
    if not (is_call_id(call_id) or is_object_id(call_id)):
        raise NotFound(
            f"No call {call_id!r}: call ids look like CALL-1768807723178-4561d0. List calls with GET /conversation."
        )
    with db.read() as conn:
        data = calllog.get_call(conn, org_id, call_id)
    if data is None:
        raise NotFound(
            f"No call {call_id} in this organization: check the id, or list calls with GET /conversation."
        )
    return ok(data)
