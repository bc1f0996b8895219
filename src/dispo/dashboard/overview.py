"""The overview: calls per day by status, rates, averages, and what the metrics extracted, as
charts (Chart.js, served from the package), each linking to the calls behind it."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from dispo.dashboard import web
from dispo.ids import is_object_id
from dispo.store import agents as agent_store
from dispo.store import latency as latency_store
from dispo.store import overview as store

router = APIRouter()

RANGES = {"7": 7, "30": 30, "90": 90}  # days; 7 by default (benchmarks/dashboard.py measures it)
CONNECTED = ("completed", "in_progress")
HISTOGRAM_BINS = 10


def _day(n: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=n)).isoformat()


def _last_day(raw: str | None, today: int | None) -> int:
    """The range's last day: ``to=YYYY-MM-DD`` if given and valid, else today (UTC)."""
    if raw:
        try:
            return (date.fromisoformat(raw) - date(1970, 1, 1)).days
        except ValueError:
            pass  # a malformed date shows the range ending today, as without one
    return today if today is not None else (datetime.now(UTC).date() - date(1970, 1, 1)).days


def scope_of(org_id: str, params: Any, today: int | None = None) -> tuple[store.Scope, str]:
    """The overview's range (``days`` of 7, 30 or 90, ending on ``to`` or today) and agent."""
    days = RANGES.get(params.get("days", "7"), 7)
    last = _last_day(params.get("to"), today)
    agent = params.get("agentId") or ""
    agents = (agent,) if is_object_id(agent) else ()
    return store.Scope(org_id, last - days + 1, last, agents), str(days)


def status_series(scope: store.Scope, counts: list[tuple[int, str, int]]) -> dict[str, Any]:
    """Chart data: one dataset per status, one label per day of the range (zeros included)."""
    days = list(range(scope.day_from, scope.day_to + 1))
    by_status: dict[str, dict[int, int]] = defaultdict(dict)
    for day, status, n in counts:
        by_status[status][day] = n
    return {
        "labels": [_day(d) for d in days],
        "datasets": [
            {"label": status, "data": [by_status[status].get(d, 0) for d in days]}
            for status in sorted(by_status)
        ],
    }


def rates(counts: list[tuple[int, str, int]]) -> dict[str, Any]:
    total = sum(n for _, _, n in counts)
    connected = sum(n for _, s, n in counts if s in CONNECTED)
    completed = sum(n for _, s, n in counts if s == "completed")
    return {
        "total": total,
        "connect_rate": connected / total if total else None,
        "completion_rate": completed / total if total else None,
    }


def metric_charts(
    samples: list[tuple[int, str | None, list[Any]]], definitions: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per ENUM/BOOLEAN metric, counts of each value per day; per INTEGER metric, a histogram."""
    per_day: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    integers: dict[str, list[int]] = defaultdict(list)
    for created_at, _agent, metrics in samples:
        day = datetime.fromtimestamp(created_at / 1000, UTC).date().isoformat()
        for m in metrics:
            if not isinstance(m, dict):
                continue
            ident, value = m.get("identifier"), m.get("value")
            kind = _type_of(definitions.get(ident) if isinstance(ident, str) else None)
            if not isinstance(ident, str) or value is None:
                continue
            if kind in ("ENUM", "BOOLEAN"):
                per_day[ident][day][str(value).lower() if isinstance(value, bool) else str(value)] += 1
            elif kind == "INTEGER" and isinstance(value, int | float) and not isinstance(value, bool):
                integers[ident].append(int(value))
    charts = [_distribution(ident, definitions[ident], days) for ident, days in sorted(per_day.items())]
    charts += [_histogram(ident, values) for ident, values in sorted(integers.items())]
    return charts


def _type_of(definition: dict[str, Any] | None) -> str | None:
    if definition is None:
        return None
    kind = definition.get("dispositionMetricType") or (definition.get("dispositionValues") or {}).get("type")
    return str(kind).upper() if kind else None


def _distribution(ident: str, definition: dict[str, Any], days: dict[str, Counter[str]]) -> dict[str, Any]:
    labels = sorted(days)
    values = list(definition.get("choices") or [])
    for counter in days.values():
        values += [v for v in counter if v not in values]
    return {
        "id": ident,
        "kind": _type_of(definition),
        "chart": "bar",
        "labels": labels,
        "datasets": [{"label": v, "data": [days[d].get(v, 0) for d in labels]} for v in values],
    }


def _histogram(ident: str, values: list[int]) -> dict[str, Any]:
    low, high = min(values), max(values)
    width = max(1, -(-(high - low + 1) // HISTOGRAM_BINS))
    bins: Counter[int] = Counter((v - low) // width for v in values)
    count = -(-(high - low + 1) // width)
    labels = [
        f"{low + i * width}" if width == 1 else f"{low + i * width}-{low + (i + 1) * width - 1}"
        for i in range(count)
    ]
    return {
        "id": ident,
        "kind": "INTEGER",
        "chart": "histogram",
        "labels": labels,
        "datasets": [{"label": "calls", "data": [bins.get(i, 0) for i in range(count)]}],
    }


# Stage percentiles are read from the turns of the range's newest calls, at most this many.
LATENCY_SAMPLE = 2000


def overview_data(db: Any, scope: store.Scope) -> dict[str, Any]:
    with db.read() as conn:
        counts = store.counts_by_day_and_status(conn, scope)
        averages = store.averages(conn, scope)
        samples = store.recent_metric_values(conn, scope)
        definitions = store.metric_types(conn, scope.org_id, scope.agent_ids)
        agents, _ = agent_store.list_agents(conn, scope.org_id, limit=500, offset=0)
        latency_calls, percentiles = latency_store.recent_stage_percentiles(
            conn,
            scope.org_id,
            scope.ms_from,
            scope.ms_to,
            agent_ids=scope.agent_ids,
            calls_limit=LATENCY_SAMPLE,
        )
    return {
        "percentiles": percentiles,
        "latency_calls": latency_calls,
        "latency_sample": LATENCY_SAMPLE,
        "status_chart": status_series(scope, counts),
        "rates": rates(counts),
        "averages": averages,
        "metric_charts": metric_charts(samples, definitions),
        "sampled": len(samples),
        "sample_limit": store.METRIC_SAMPLE,
        "agents": [(a["id"], a["name"]) for a in agents],
    }


@router.get("/overview")
async def overview(request: Request) -> Response:
    ctx = await web.begin(request)
    if ctx.org_id is None:
        return web.to_login(ctx)
    scope, days = scope_of(ctx.org_id, request.query_params)
    data = await run_in_threadpool(overview_data, request.app.state.db, scope)
    context = {
        **data,
        "days": days,
        "ranges": list(RANGES),
        "agent_id": scope.agent_ids[0] if scope.agent_ids else "",
        "date_from": _day(scope.day_from),
        "date_to": _day(scope.day_to),
    }
    return web.render(ctx, "overview.html", context)
