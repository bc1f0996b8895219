"""The call log (filters in the URL, the API's own parameters), its CSV export, one call's story,
and "re-run analytics" on it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from dispo.api import calllog
from dispo.api.routes.reanalyze import reanalyze_conversations
from dispo.api.routes.recordings import with_links
from dispo.dashboard import web
from dispo.errors import DispoError, NotFound, ValidationFailed
from dispo.ids import is_call_id, is_object_id
from dispo.store import agents as agent_store
from dispo.store import calls as call_store
from dispo.store import campaigns as campaign_store

router = APIRouter()

PAGE_SIZE = 25
EXPORT_PAGE = 500
EXPORT_MAX = 100_000  # rows in one export; a bigger one is cut there, and its last line says so
SORTABLE = {
    "createdAt": "Created",
    "callDuration": "Duration",
    "avgLatency": "Latency",
    "updatedAt": "Updated",
}


def list_params(query: Mapping[str, Any], *, keep_paging: bool = True) -> dict[str, str]:
    """The API's list parameters from the page's URL: empty fields dropped, repeated ones (a
    multiple select) joined with commas as the API takes them."""
    names = [n for n in calllog.LIST_PARAMETERS if keep_paging or n not in ("cursor", "page", "limit")]
    getlist = getattr(query, "getlist", None)
    out: dict[str, str] = {}
    # The metric filters (metric.<identifier>=[op:]value), named by the agent's configuration.
    names += [n for n in query if isinstance(n, str) and n.startswith(calllog.METRIC_PREFIX)]
    for name in names:
        values = getlist(name) if getlist else [query.get(name)]
        joined = ",".join(v.strip() for v in values if isinstance(v, str) and v.strip())
        if joined:
            out[name] = joined
    return out


def date_presets(today: datetime | None = None) -> list[tuple[str, str, str]]:
    """``(label, dateFrom, dateTo)`` for the preset links."""
    day = (today or datetime.now(UTC)).date()
    iso = day.isoformat()
    return [
        ("Today", iso, iso),
        ("Yesterday", (day - timedelta(days=1)).isoformat(), (day - timedelta(days=1)).isoformat()),
        ("Last 7 days", (day - timedelta(days=6)).isoformat(), iso),
        ("Last 30 days", (day - timedelta(days=29)).isoformat(), iso),
    ]


def _choices(conn: Connection, org_id: str) -> dict[str, Any]:
    agents, _ = agent_store.list_agents(conn, org_id, limit=500, offset=0)
    campaigns, _ = campaign_store.list_campaigns(conn, org_id, limit=500, offset=0)
    return {
        "agents": [(a["id"], a["name"]) for a in agents],
        "campaigns": [(c["id"], c["name"]) for c in campaigns],
        "statuses": calllog.CALL_STATUSES,
        "types": calllog.CALL_TYPES,
        "reasons": calllog.DISCONNECT_REASONS,
        "buckets": tuple(call_store.DURATION_BUCKETS),
    }


def metric_columns(conn: Connection, org_id: str, agent_ids: tuple[str, ...]) -> list[dict[str, Any]]:
    """The disposition metrics configured for the one agent the view is filtered to (else none)."""
    if len(agent_ids) != 1 or agent_store.get_agent(conn, org_id, agent_ids[0]) is None:
        return []
    config = agent_store.latest_analytics_config(conn, agent_ids[0])
    return list(config["disposition_metrics"]) if config else []


def mean_latency(call: dict[str, Any]) -> float | None:
    """The mean of the stage latencies the call measured (what ``sortBy=avgLatency`` orders by)."""
    stages = ("average_transcriber_latency", "average_agent_latency", "average_synthesizer_latency")
    values = [call[s] for s in stages if call.get(s) is not None]
    return sum(values) / len(values) if values else None


def metric_values(call: dict[str, Any]) -> dict[str, Any]:
    return {
        str(m.get("identifier")): m.get("value")
        for m in call["postCallAnalytics"].get("dispositionMetrics") or []
        if isinstance(m, dict)
    }


def _log_page(conn: Connection, org_id: str, params: dict[str, str], settings: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"choices": _choices(conn, org_id), "errors": [], "calls": [], "pagination": None}
    try:
        query = calllog.parse_list_query(
            org_id, params, default_limit=PAGE_SIZE, max_limit=200, total_cap=settings.list_total_cap
        )
    except ValidationFailed as exc:
        out["errors"] = exc.errors
        agents = tuple(a for a in params.get("agentIds", "").split(",") if a)
        out["metrics"] = metric_columns(conn, org_id, agents) if all(map(is_object_id, agents)) else []
        return out
    data = calllog.list_calls(conn, query)
    out["calls"] = [
        {**c, "metric_values": metric_values(c), "latency": mean_latency(c)} for c in data["logs"]
    ]
    out["pagination"] = data["pagination"]
    out["metrics"] = metric_columns(conn, org_id, query.filter.agent_ids)
    out["sort_by"], out["order"] = query.sort_by, query.order
    return out


@router.get("/calls")
async def call_log(request: Request) -> Response:
    ctx = await web.begin(request)
    if ctx.org_id is None:
        return web.to_login(ctx)
    org_id, params = ctx.org_id, list_params(request.query_params)
    settings = request.app.state.settings

    def work() -> dict[str, Any]:
        with request.app.state.db.read() as conn:
            return _log_page(conn, org_id, params, settings)

    data = await run_in_threadpool(work)
    view = {k: v for k, v in params.items() if k not in ("cursor", "page")}
    export = list_params(request.query_params, keep_paging=False)
    configured = {str(m.get("identifier")) for m in data["metrics"]}
    context = {
        **data,
        # Metric filters in the URL for metrics the form has no field for (no one agent selected).
        "extra_metric_filters": [
            n
            for n in params
            if n.startswith(calllog.METRIC_PREFIX) and n[len(calllog.METRIC_PREFIX) :] not in configured
        ],
        "params": params,
        "view": view,
        "export_query": web.query_string(export),
        "presets": date_presets(),
        "sortable": SORTABLE,
    }
    return web.render(ctx, "calls.html", context, status_code=400 if data["errors"] else 200)


CSV_COLUMNS = (
    "callId",
    "createdAt",
    "status",
    "type",
    "agentId",
    "campaignId",
    "from",
    "to",
    "duration",
    "callCost",
    "disconnectionReason",
)


def cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (``=…``, ``@…``, ``-x…``) made inert with a
    leading apostrophe (OWASP's CSV-injection advice); numbers and phone numbers (``+1415…``) stay."""
    if not isinstance(value, str) or value[:1] not in ("=", "@", "+", "-", "\t", "\r"):
        return value
    signed_number = value[:1] in "+-" and value[1:2].isdigit()
    return value if signed_number else "'" + value


def export_rows(db: Any, org_id: str, params: dict[str, str]) -> Iterator[str]:
    """The CSV of every call of the view, read a page at a time with the list's cursor (each page
    in its own short read), so that a large export neither holds a transaction nor the memory."""
    query = calllog.parse_list_query(org_id, {**params, "limit": str(EXPORT_PAGE)}, max_limit=EXPORT_PAGE)
    with db.read() as conn:
        metrics = [m["identifier"] for m in metric_columns(conn, org_id, query.filter.agent_ids)]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*CSV_COLUMNS, "analyticsStatus", "summary", *metrics, *([] if metrics else ["metrics"])])
    sent = 0
    while True:
        with db.read() as conn:
            data = calllog.list_calls(conn, query)
        for call in data["logs"]:
            analytics = call["postCallAnalytics"]
            values = metric_values(call)
            extra = [values.get(m) for m in metrics] or ["; ".join(f"{k}={v}" for k, v in values.items())]
            row = [*(call[c] for c in CSV_COLUMNS), analytics["status"], analytics["summary"], *extra]
            writer.writerow([cell(v) for v in row])
            sent += 1
        cursor = data["pagination"]["nextCursor"]
        if cursor and sent >= EXPORT_MAX:
            writer.writerow(
                [f"# cut at {EXPORT_MAX} calls: narrow the filters (e.g. the dates) to export the rest"]
            )
            cursor = None
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if not cursor:
            return
        query = calllog.ListQuery(
            query.filter, 1, query.limit, query.sort_by, query.order, call_store.Cursor.decode(cursor)
        )


@router.get("/calls.csv")
async def export_calls(request: Request) -> Response:
    ctx = await web.begin(request)
    if ctx.org_id is None:
        return web.to_login(ctx)
    params = list_params(request.query_params, keep_paging=False)
    calllog.parse_list_query(ctx.org_id, params)  # a bad filter is a 400 page before any row
    rows = export_rows(request.app.state.db, ctx.org_id, params)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    headers = {"Content-Disposition": f'attachment; filename="calls-{stamp}.csv"'}
    return web.finish(ctx, StreamingResponse(rows, media_type="text/csv; charset=utf-8", headers=headers))


def _offset_seconds(timestamp: str | None, start: str | None) -> float | None:
    if not timestamp or not start:
        return None
    delta = datetime.fromisoformat(timestamp) - datetime.fromisoformat(start)
    return max(0.0, delta.total_seconds())


def _find_call(request: Request, org_id: str, call_id: str) -> dict[str, Any]:
    if not (is_call_id(call_id) or is_object_id(call_id)):
        raise NotFound(
            f"No call {call_id!r}: call ids look like CALL-1768807723178-4561d0. Find it in the call log."
        )
    with request.app.state.db.read() as conn:
        call = calllog.get_call(conn, org_id, call_id)
        agent = agent_store.get_agent(conn, org_id, call["agentId"]) if call and call["agentId"] else None
    if call is None:
        raise NotFound(
            f"No call {call_id} in this organization: check the id, or find the call in the call log."
        )
    call["agent_name"] = agent["name"] if agent else None
    with_links(request, [call])  # the recordings' keys become signed links, as in the API
    start = call["startedAt"] or call["createdAt"]
    for message in call["transcript"]:
        message["offset"] = _offset_seconds(message["timestamp"], start)
    return call


@router.get("/calls/{call_id}")
async def call_detail(request: Request, call_id: str) -> Response:
    ctx = await web.begin(request)
    if ctx.org_id is None:
        return web.to_login(ctx)
    call = await run_in_threadpool(_find_call, request, ctx.org_id, call_id)
    return web.render(ctx, "call.html", {"call": call})


@router.post("/calls/{call_id}/reanalyze")
async def rerun_analytics(request: Request, call_id: str) -> Response:
    """Queues the call's analytics again through the API's own re-analysis (its checks, its queue)."""
    ctx = await web.begin(request)
    if ctx.org_id is None:
        return web.to_login(ctx)
    await web.form_of(ctx)
    call = await run_in_threadpool(_find_call, request, ctx.org_id, call_id)
    state = request.app.state
    try:
        response = await run_in_threadpool(
            reanalyze_conversations,
            state.db,
            ctx.org_id,
            state.settings,
            state.jobs,
            {"callIds": [call["callId"]]},
        )
        queued = web.body_of(response)["queued"]
        flash = (
            "Analytics queued again: the status below follows the job; reload to see the new result."
            if queued
            else "This call has not ended yet: analytics run once it ends."
        )
    except DispoError as exc:
        flash = exc.message
    return web.redirect(ctx, f"/calls/{call['callId']}", flash=flash)
