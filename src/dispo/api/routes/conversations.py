"""Call logs: ``/conversation`` list, detail and batch search.

The list and the single call are the API's hot paths, so their endpoints take only the
``Request`` and do their work directly (``dispo.api.contract.lean``: no FastAPI dependency
solving), and a read of one call runs on the event loop where the database allows
(``dispo.api.deps.read``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from dispo.api import calllog
from dispo.api.bodies import JsonBody
from dispo.api.contract import ContractRoute, json_body, lean
from dispo.api.deps import OrgDep, SettingsDep, get_org_id, read
from dispo.api.responses import ok
from dispo.api.routes.recordings import with_links
from dispo.api.schemas import (
    AUTHED,
    LIST_CALLS_SCHEMAS,
    WITH_BODY,
    CallListPublic,
    CallPublic,
    CallSearch,
    CallSearchPublic,
    Envelope,
    errors,
    parse,
    query_parameters,
)
from dispo.config import Settings
from dispo.errors import NotFound, ValidationFailed
from dispo.ids import is_call_id, is_object_id

router = APIRouter(tags=["call logs"], route_class=ContractRoute)


@router.get(
    "/conversation",
    summary="List calls",
    description=(
        "Newest first by default. Filter by agent, campaign, status, type, disconnect reason, date, "
        "duration, a call id / phone-number prefix or words said in the call (search: each log then "
        "has a snippet, the match marked with <mark>), or extracted metric values "
        "(metric.<identifier>=value, in:a,b, ne:, gt:, gte:, lt:, lte:, between:low,high, is:null, "
        "is:notnull); comma-separated lists match any. Paginate with page/limit or with "
        "cursor=pagination.nextCursor; sortBy=relevance (with search words) ranks the best transcript "
        "match first. Every problem with the parameters is reported at once."
    ),
    response_model=Envelope[CallListPublic],
    responses=errors(*AUTHED),
    # Parsed by dispo.api.calllog (shared with the CLI, same messages), so declared here by hand.
    openapi_extra=lean(parameters=query_parameters(LIST_CALLS_SCHEMAS), **{"x-query-prefixes": ["metric."]}),
)
async def list_conversations(request: Request) -> Response:
    org_id = await get_org_id(request)
    settings: Settings = request.app.state.settings
    query = calllog.parse_list_query(
        org_id,
        request.query_params,
        default_limit=settings.page_limit_default,
        max_limit=settings.page_limit_max,
        total_cap=settings.list_total_cap,
    )
    data = await read(request, lambda conn: calllog.list_calls(conn, query))
    with_links(request, data["logs"])
    return ok(data)


@router.post(
    "/conversation/search",
    summary="Fetch up to 100 calls by id",
    response_model=Envelope[CallSearchPublic],
    responses=errors(*WITH_BODY),
    openapi_extra=json_body(CallSearch, {"callIds": ["CALL-1768807723178-4561d0"]}),
)
async def search_conversations(
    request: Request, org_id: OrgDep, settings: SettingsDep, body: JsonBody
) -> Response:
    # A batch costs milliseconds of database work: FastAPI's dependencies (~50 µs) are kept here.
    call_ids = parse(CallSearch, body).call_ids
    most = settings.search_ids_max
    if not call_ids:
        raise ValidationFailed(f"callIds is empty: give 1 to {most} call ids.")
    if len(call_ids) > most:
        raise ValidationFailed(
            f"callIds lists {len(call_ids)} ids; at most {most} are allowed per request: send them in batches of {most}."
        )
    data = await read(request, lambda conn: calllog.search_calls(conn, org_id, call_ids))
    with_links(request, data["logs"])
    return ok(data)


@router.get(
    "/conversation/{call_id}",
    summary="Get one call with transcript, recordings, cost and analytics",
    response_model=Envelope[CallPublic],
    responses=errors(*AUTHED, 404),
    openapi_extra=lean("call_id"),
)
async def get_conversation(request: Request) -> Response:
    org_id = await get_org_id(request)
    call_id: str = request.path_params["call_id"]
    if not (is_call_id(call_id) or is_object_id(call_id)):
        raise NotFound(
            f"No call {call_id!r}: call ids look like CALL-1768807723178-4561d0. List calls with GET /conversation."
        )
    # One statement on PostgreSQL (store.calls.call_log_entry): no transaction needed around it.
    data = await read(
        request, lambda conn: calllog.get_call(conn, org_id, call_id), bounded=True, snapshot=False
    )
    if data is None:
        raise NotFound(
            f"No call {call_id} in this organization: check the id, or list calls with GET /conversation."
        )
    with_links(request, [data])
    return ok(data)
