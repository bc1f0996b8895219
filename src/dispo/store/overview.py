"""The dashboard overview's aggregates: calls per day by status, averages, and recent metric values.

Built to stay fast on a million calls (benchmarks/dashboard.py):

* Counts by day and status come from the ``call_counts`` rollup (a few hundred cells for a month),
  never from ``calls``.
* Averages (duration, cost, stage latencies) read the calls of the date range through
  ``ix_calls_org_created`` (or the agent's index): the range, 7 days by default, bounds the work.
* Metric values are read from the newest ``METRIC_SAMPLE`` analysed calls of the range, walking the
  same index newest first and stopping there; the page says the charts show that sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from dispo.store.driver import fetch_all, fetch_one, json_value
from dispo.store.filters import in_list
from dispo.store.tables import analytics_configs

METRIC_SAMPLE = 2000


@dataclass(frozen=True)
class Scope:
    """What the overview covers: one organization, days ``[day_from, day_to]`` (days since
    1970-01-01 UTC), optionally some agents."""

    org_id: str
    day_from: int
    day_to: int
    agent_ids: tuple[str, ...] = ()

    @property
    def ms_from(self) -> int:
        return self.day_from * 86_400_000

    @property
    def ms_to(self) -> int:
        return (self.day_to + 1) * 86_400_000 - 1


def _agent_term(scope: Scope, params: dict[str, Any], column: str) -> str:
    return f" AND {column} {in_list('agent', scope.agent_ids, params)}" if scope.agent_ids else ""


def counts_by_day_and_status(conn: Connection, scope: Scope) -> list[tuple[int, str, int]]:
    """``(day, status, calls)`` for every day and status with calls, from the daily rollup."""
    params: dict[str, Any] = {"org_id": scope.org_id, "day_from": scope.day_from, "day_to": scope.day_to}
    sql = (
        "SELECT day, status, SUM(calls) FROM call_counts WHERE org_id = :org_id "
        "AND day >= :day_from AND day <= :day_to"
        + _agent_term(scope, params, "agent_id")
        + " GROUP BY day, status ORDER BY day, status"
    )
    return [(int(day), str(status), int(n)) for day, status, n in fetch_all(conn, sql, params)]


@dataclass(frozen=True)
class Averages:
    calls: int
    connected: int
    avg_duration: float | None  # seconds, over connected calls
    avg_cost: float | None  # over every call
    total_cost: float
    avg_transcriber_latency: float | None  # ms, over calls that measured it
    avg_agent_latency: float | None
    avg_synthesizer_latency: float | None


def averages(conn: Connection, scope: Scope) -> Averages:
    """Duration, cost and stage latencies over the calls of the range (one statement)."""
    params: dict[str, Any] = {"org_id": scope.org_id, "ms_from": scope.ms_from, "ms_to": scope.ms_to}
    sql = (
        "SELECT COUNT(*), "
        "SUM(CASE WHEN status IN ('completed', 'in_progress') THEN 1 ELSE 0 END), "
        "AVG(CASE WHEN status IN ('completed', 'in_progress') THEN duration END), "
        "AVG(call_cost), SUM(call_cost), AVG(avg_transcriber_latency), AVG(avg_agent_latency), "
        "AVG(avg_synthesizer_latency) FROM calls WHERE org_id = :org_id "
        "AND created_at >= :ms_from AND created_at <= :ms_to" + _agent_term(scope, params, "agent_id")
    )
    row = fetch_one(conn, sql, params)
    assert row is not None
    n, connected, duration, cost, total, transcriber, agent, synthesizer = row

    def num(value: Any) -> float | None:
        return None if value is None else float(value)

    return Averages(
        int(n or 0),
        int(connected or 0),
        num(duration),
        num(cost),
        float(total or 0),
        num(transcriber),
        num(agent),
        num(synthesizer),
    )


def recent_metric_values(
    conn: Connection, scope: Scope, limit: int = METRIC_SAMPLE
) -> list[tuple[int, str | None, list[Any]]]:
    """``(created_at, agent_id, disposition metrics)`` of the newest ``limit`` analysed calls of the
    range, newest first: each call's newest analytics result."""
    params: dict[str, Any] = {
        "org_id": scope.org_id,
        "ms_from": scope.ms_from,
        "ms_to": scope.ms_to,
        "limit": limit,
    }
    sql = (
        "SELECT calls.created_at, calls.agent_id, analytics_results.disposition_metrics "
        "FROM calls JOIN analytics_results ON analytics_results.id = ("
        "SELECT MAX(r.id) FROM analytics_results AS r WHERE r.call_pk = calls.pk) "
        "WHERE calls.org_id = :org_id AND calls.created_at >= :ms_from AND calls.created_at <= :ms_to"
        + _agent_term(scope, params, "calls.agent_id")
        + " ORDER BY calls.created_at DESC LIMIT :limit"
    )
    out = []
    for created_at, agent_id, metrics in fetch_all(conn, sql, params):
        value = json_value(conn, metrics)
        out.append((int(created_at), agent_id, value if isinstance(value, list) else []))
    return out


def metric_types(conn: Connection, org_id: str, agent_ids: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """Each metric identifier's definition in the agents' configs (newest version wins), as stored."""
    c = analytics_configs.c
    stmt = select(c.disposition_metrics).where(c.org_id == org_id).order_by(c.version, c.id)
    if agent_ids:
        stmt = stmt.where(c.agent_id.in_(agent_ids))
    out: dict[str, dict[str, Any]] = {}
    for (metrics,) in conn.execute(stmt):
        for metric in metrics or []:
            if isinstance(metric, dict) and isinstance(metric.get("identifier"), str):
                out[metric["identifier"]] = metric
    return out
