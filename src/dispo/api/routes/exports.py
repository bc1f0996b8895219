"""``GET /conversation/export``: every call matching the call-list filters, streamed as CSV or JSONL."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from dispo.api import calllog, exports
from dispo.api.contract import ContractRoute, lean
from dispo.api.deps import get_org_id
from dispo.api.schemas import AUTHED, FILTER_SCHEMAS, LIST_CALLS_SCHEMAS, errors, query_parameters
from dispo.config import Settings
from dispo.errors import ValidationFailed

router = APIRouter(tags=["call logs"], route_class=ContractRoute)

_PARAMETERS = {
    "format": {
        "type": "string",
        "enum": list(exports.FORMATS),
        "default": "csv",
        "description": "csv or jsonl.",
    },
    **FILTER_SCHEMAS,
    "sortBy": LIST_CALLS_SCHEMAS["sortBy"],
    "sortOrder": LIST_CALLS_SCHEMAS["sortOrder"],
}


@router.get(
    "/conversation/export",
    summary="Export every call matching the call-list filters (CSV or JSONL, streamed)",
    description=(
        "Takes GET /conversation's filters (metric.<identifier> too) and sort, and format=csv (one "
        "row per call, one column per metric of the agents' newest analytics configs, the transcript "
        "as 'role: text' lines) or format=jsonl (one call per line, as GET /conversation/{id} shows "
        "it). Streamed a page at a time: memory does not grow with the number of calls."
    ),
    responses={
        200: {
            "description": "The export.",
            "content": {t: {"schema": {"type": "string"}} for t in exports.FORMATS.values()},
        },
        **errors(*AUTHED),
    },
    response_class=Response,
    openapi_extra=lean(parameters=query_parameters(_PARAMETERS), **{"x-query-prefixes": ["metric."]}),
)
async def export_conversations(request: Request) -> Response:
    org_id = await get_org_id(request)
    settings: Settings = request.app.state.settings
    params = request.query_params
    fmt = params.get("format", "csv")
    if fmt not in exports.FORMATS:
        raise ValidationFailed(f"format={fmt!r} is not an export format: use csv or jsonl.")
    query = calllog.parse_list_query(org_id, params, max_limit=settings.page_limit_max, extra=("format",))
    db = request.app.state.db
    metrics = await run_in_threadpool(exports.metric_columns, db, query) if fmt == "csv" else []
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        exports.export_lines(db, query, fmt, metrics),
        media_type=exports.FORMATS[fmt],
        headers={"Content-Disposition": f'attachment; filename="calls-{stamp}.{fmt}"'},
    )
