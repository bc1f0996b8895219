"""``GET /analytics/metrics``: what post-call analytics found over a period, and calls per day."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from dispo.api.contract import ContractRoute, lean
from dispo.api.deps import get_org_id, read
from dispo.api.responses import ok
from dispo.api.schemas import AUTHED, Envelope, errors, query_parameters
from dispo.errors import ValidationFailed
from dispo.ids import is_object_id
from dispo.store import metric_stats
from dispo.store.filters import DAY_MS
from dispo.timeutil import ms_to_iso, now_ms, parse_instant

router = APIRouter(tags=["post-call analytics"], route_class=ContractRoute)

_DEFAULT_DAYS = 30
_PARAMETERS = {
    "agentId": {"type": "string", "description": "Only this agent's calls (24 hex characters)."},
    "dateFrom": {
        "type": "string",
        "description": f"Calls created from (ISO 8601, epoch ms, '7 days ago'); default {_DEFAULT_DAYS} days ago.",
    },
    "dateTo": {"type": "string", "description": "Calls created until (a bare date: its end); default now."},
}


class MetricsPublic(BaseModel):
    """See docs/api.md: distributions, INTEGER statistics, rates, and per-day totals."""

    model_config = ConfigDict(extra="allow")

    agent_id: str | None = None
    calls: int
    metrics: list[dict[str, Any]]
    days: list[dict[str, Any]]


@router.get(
    "/analytics/metrics",
    summary="Aggregate extracted metrics and calls over a period",
    description=(
        "For the calls created in [dateFrom, dateTo] (of agentId): the distribution of each ENUM and "
        "BOOLEAN metric, count/sum/avg/p50/p90 of each INTEGER metric (values of each call's newest "
        "analysis), connectRate (completed / ended calls), completionRate (calls ended by a hangup / "
        "completed calls), and calls, connections, cost and minutes per UTC day."
    ),
    response_model=Envelope[MetricsPublic],
    responses=errors(*AUTHED),
    openapi_extra=lean(parameters=query_parameters(_PARAMETERS)),
)
async def analytics_metrics(request: Request) -> Response:
    org_id = await get_org_id(request)
    period = _period(org_id, request.query_params)
    return ok(await read(request, lambda conn: _aggregate(conn, period)))


def _period(org_id: str, params: Any) -> metric_stats.Period:
    problems: list[str] = []
    agent_id = params.get("agentId") or None
    if agent_id is not None and not is_object_id(agent_id):
        problems.append(
            f"agentId={agent_id!r} is not an agent id: give 24 hex characters (GET /agent lists them)."
        )
    bounds = []
    for name, default, end in (
        ("dateFrom", now_ms() - _DEFAULT_DAYS * DAY_MS, False),
        ("dateTo", now_ms(), True),
    ):
        raw = params.get(name)
        try:
            bounds.append(parse_instant(raw, field=name, end_of_day=end) if raw else default)
        except ValidationFailed as exc:
            problems.append(exc.message)
            bounds.append(default)
    if not problems and bounds[0] > bounds[1]:
        problems.append(
            f"dateFrom ({ms_to_iso(bounds[0])}) is after dateTo ({ms_to_iso(bounds[1])}): swap them."
        )
    if problems:
        raise ValidationFailed(problems[0], errors=problems)
    return metric_stats.Period(org_id, bounds[0], bounds[1], agent_id)


def _aggregate(conn: Any, period: metric_stats.Period) -> dict[str, Any]:
    days = metric_stats.daily_totals(conn, period)
    metrics: dict[str, dict[str, Any]] = {}
    for identifier, metric_type, value, n in metric_stats.distributions(conn, period):
        entry = metrics.setdefault(
            identifier, {"identifier": identifier, "type": metric_type, "distribution": {}}
        )
        entry["distribution"]["null" if value is None else value] = n
    total = {k: sum(d[k] for d in days) for k in ("calls", "ended", "connected", "completed")}
    return {
        "agentId": period.agent_id,
        "dateFrom": ms_to_iso(period.date_from),
        "dateTo": ms_to_iso(period.date_to),
        **total,
        "connectRate": round(total["connected"] / total["ended"], 4) if total["ended"] else None,
        "completionRate": round(total["completed"] / total["connected"], 4) if total["connected"] else None,
        "metrics": [*metrics.values(), *metric_stats.integer_stats(conn, period)],
        "days": [
            {"date": ms_to_iso(d.pop("day") * DAY_MS)[:10], **d}  # type: ignore[index]
            for d in days
        ],
    }
