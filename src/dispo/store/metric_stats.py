"""Aggregates of the call log over a period (``GET /analytics/metrics``): the distribution of each
ENUM and BOOLEAN metric, statistics of each INTEGER metric, and calls, connections, cost and
minutes per day. Every statement is one GROUP BY over ``calls`` joined with ``call_metrics``,
both read through their ``org_id``-first indexes; percentiles are one ``ORDER BY value_num LIMIT 1
OFFSET k`` each (the same SQL on both databases: SQLite has no percentile function).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from dispo.calls import TERMINAL_STATUSES
from dispo.store.driver import fetch_all, fetch_one
from dispo.store.filters import DAY_MS

__all__ = ["Period", "daily_totals", "distributions", "integer_stats"]

_TERMINAL = ", ".join(f"'{s.value}'" for s in TERMINAL_STATUSES)


@dataclass(frozen=True)
class Period:
    org_id: str
    date_from: int  # epoch ms, inclusive
    date_to: int  # epoch ms, inclusive
    agent_id: str | None = None

    def where(self, params: dict[str, Any]) -> str:
        """Terms over ``calls`` for the period, with their parameters bound in ``params``."""
        params.update(org_id=self.org_id, date_from=self.date_from, date_to=self.date_to)
        sql = "calls.org_id = :org_id AND calls.created_at >= :date_from AND calls.created_at <= :date_to"
        if self.agent_id is not None:
            params["agent_id"] = self.agent_id
            sql += " AND calls.agent_id = :agent_id"
        return sql


def distributions(conn: Connection, period: Period) -> list[tuple[str, str, str | None, int]]:
    """``(identifier, type, value or None, calls)`` of every ENUM and BOOLEAN metric."""
    params: dict[str, Any] = {}
    sql = (
        "SELECT m.identifier, m.type, m.value_text, count(*) FROM call_metrics AS m "
        "JOIN calls ON calls.pk = m.call_pk "
        f"WHERE m.org_id = :org_id AND m.type IN ('ENUM', 'BOOLEAN') AND {period.where(params)} "
        "GROUP BY m.identifier, m.type, m.value_text ORDER BY m.identifier, count(*) DESC"
    )
    return [(str(i), str(t), v, int(n)) for i, t, v, n in fetch_all(conn, sql, params)]


def integer_stats(conn: Connection, period: Period) -> list[dict[str, Any]]:
    """Per INTEGER metric: calls with a value, their sum, mean, median (p50) and p90."""
    params: dict[str, Any] = {}
    where = (
        f"m.org_id = :org_id AND m.type = 'INTEGER' AND m.value_num IS NOT NULL AND {period.where(params)}"
    )
    joined = f"FROM call_metrics AS m JOIN calls ON calls.pk = m.call_pk WHERE {where}"
    sql = f"SELECT m.identifier, count(*), sum(m.value_num), avg(m.value_num) {joined} GROUP BY m.identifier"
    out = []
    for identifier, n, total, mean in fetch_all(conn, sql, params):
        stats: dict[str, Any] = {"identifier": identifier, "type": "INTEGER", "count": int(n)}
        stats.update(sum=float(total), avg=round(float(mean), 3))
        for name, share in (("p50", 0.5), ("p90", 0.9)):
            one = {**params, "identifier": identifier, "k": min(int(n) - 1, int(share * int(n)))}
            row = fetch_one(
                conn,
                f"SELECT m.value_num {joined} AND m.identifier = :identifier "
                "ORDER BY m.value_num LIMIT 1 OFFSET :k",
                one,
            )
            stats[name] = None if row is None else float(row[0])
        out.append(stats)
    return out


def daily_totals(conn: Connection, period: Period) -> list[dict[str, Any]]:
    """Per UTC day with calls: calls, ended, connected (completed), ended normally (a hangup),
    cost and minutes."""
    params: dict[str, Any] = {}
    sql = (
        f"SELECT calls.created_at / {DAY_MS} AS day, count(*), "
        f"sum(CASE WHEN calls.status IN ({_TERMINAL}) THEN 1 ELSE 0 END), "
        "sum(CASE WHEN calls.status = 'completed' THEN 1 ELSE 0 END), "
        "sum(CASE WHEN calls.status = 'completed' AND calls.disconnection_reason IN "
        "('user_hangup', 'agent_hangup') THEN 1 ELSE 0 END), "
        "sum(calls.call_cost), sum(calls.duration) "
        f"FROM calls WHERE {period.where(params)} GROUP BY calls.created_at / {DAY_MS} ORDER BY 1"
    )
    return [
        {
            "day": int(day),
            "calls": int(n),
            "ended": int(ended or 0),
            "connected": int(connected or 0),
            "completed": int(completed or 0),
            "cost": round(float(cost or 0), 4),
            "minutes": round(float(seconds or 0) / 60, 3),
        }
        for day, n, ended, connected, completed, cost, seconds in fetch_all(conn, sql, params)
    ]
