"""Totals of call lists, from rollups kept in step with every write.

A filtered list reports ``total``, and counting a million call rows takes ~25 ms on SQLite and
longer on PostgreSQL. So every write to ``calls`` also maintains ``call_counts`` (per day) and
``call_counts_weekly`` (per week): counts by every dimension the list filters use, in the same
transaction. A total whose filters are all such dimensions sums whole weeks, then the whole days
around them, then counts the part-days at either end of a date range exactly from ``calls``.
Filters that are not dimensions (``search``, ``minDuration``/``maxDuration``) count from ``calls``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Table, case, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from dispo.store.driver import fetch_scalar
from dispo.store.filters import (
    DAY_MS,
    DURATION_BUCKETS,
    CallFilter,
    dimensions,
    duration_bucket,
    in_list,
    metric_condition,
    on_connection,
    where_sql,
)
from dispo.store.tables import call_counts, call_counts_weekly, calls
from dispo.types import Row


def count_calls(conn: Connection, f: CallFilter, *, cap: int = 0) -> int:
    """The number of calls matching ``f``, from the rollups where they can answer (one statement:
    :func:`count_statement`)."""
    sql, params = count_statement(on_connection(f, conn), cap=cap)
    return int(fetch_scalar(conn, sql, params))


def count_statement(f: CallFilter, *, cap: int = 0) -> tuple[str, dict[str, Any]]:
    """The SELECT of the number of calls matching ``f``.

    A date range splits three ways: whole weeks (``call_counts_weekly``), the whole days at
    either end of those (``call_counts``), and the part-days at either end (counted in ``calls``);
    the database adds the parts up. A filter the rollups cannot answer (a search, a duration
    range) counts matching calls one by one; ``cap`` > 0 stops that at ``cap + 1``: an answer
    above ``cap`` means "more than ``cap``".
    """
    if not f.countable_by_rollup:
        return _count_exact(f, f.date_from, f.date_to, cap)
    days, ragged = split(f.date_from, f.date_to, DAY_MS)
    parts = [_count_exact(f, lo, hi) for lo, hi in ragged]
    if days is not None:
        weeks, loose_days = split(days[0], days[1], 7)
        if weeks is not None:
            parts.append(_count_rollup(f, call_counts_weekly, weeks))
        parts += [_count_rollup(f, call_counts, day_range) for day_range in loose_days]
    if len(parts) == 1:
        return parts[0]
    sql: list[str] = []
    params: dict[str, Any] = {}
    for i, (part, part_params) in enumerate(parts):
        sql.append(f"({_numbered(part, i)})")
        params.update((f"{name}_{i}", value) for name, value in part_params.items())
    return "SELECT " + " + ".join(sql), params


@lru_cache(maxsize=256)
def _numbered(sql: str, i: int) -> str:
    """``sql`` with its parameters renamed ``name_i``, so that several parts share a statement."""
    return _PARAMETER.sub(lambda m: f":{m.group(1)}_{i}", sql)


_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")


Span = tuple[int | None, int | None]  # inclusive bounds; None is unbounded


def split(lo: int | None, hi: int | None, unit: int) -> tuple[Span | None, list[tuple[int, int]]]:
    """Split the inclusive range [lo, hi] into the whole ``unit``-sized blocks inside it (as block
    numbers, ``None`` when there are none) and the leftover ranges at either end."""
    first = None if lo is None else -(-lo // unit)  # first block starting at or after lo
    last = None if hi is None else (hi + 1) // unit - 1  # last block ending at or before hi
    if first is not None and last is not None and first > last:
        assert lo is not None
        assert hi is not None
        return None, [(lo, hi)]
    ends: list[tuple[int, int]] = []
    if lo is not None and first is not None and lo < first * unit:
        ends.append((lo, first * unit - 1))
    if hi is not None and last is not None and hi >= (last + 1) * unit:
        ends.append(((last + 1) * unit, hi))
    return (first, last), ends


def _count_exact(
    f: CallFilter, date_from: int | None, date_to: int | None, cap: int = 0
) -> tuple[str, dict[str, Any]]:
    if f.metrics and cap > 0:
        return _count_from_metric(f, date_from, date_to, cap)
    where, params = where_sql(f, date_from=date_from, date_to=date_to)
    if cap <= 0:
        return f"SELECT count(*) FROM calls WHERE {where}", params
    params["count_cap"] = cap + 1
    return f"SELECT count(*) FROM (SELECT 1 FROM calls WHERE {where} LIMIT :count_cap) AS matches", params


def _count_from_metric(
    f: CallFilter, date_from: int | None, date_to: int | None, cap: int
) -> tuple[str, dict[str, Any]]:
    """A capped count driven by the first metric filter's index range on ``call_metrics``, each
    match looked up in ``calls`` for the other terms: it stops after ``cap + 1`` matches instead
    of first gathering every call the metric matches (SQLite's ``IN (subquery)``)."""
    rest = replace(f, metrics=f.metrics[1:])
    where, params = where_sql(rest, date_from=date_from, date_to=date_to)
    driver = metric_condition(f.metrics[0], "driver", params, "driver")
    params["count_cap"] = cap + 1
    # CROSS JOIN: SQLite keeps that join order (call_metrics first); PostgreSQL plans it itself.
    joined = "call_metrics AS driver, calls" if f.postgresql else "call_metrics AS driver CROSS JOIN calls"
    return (
        f"SELECT count(*) FROM (SELECT 1 FROM {joined} WHERE driver.org_id = :org_id AND {driver} "
        f"AND calls.pk = driver.call_pk AND {where} LIMIT :count_cap) AS matches",
        params,
    )


def _count_rollup(f: CallFilter, table: Table, span: Span) -> tuple[str, dict[str, Any]]:
    period = "week" if table is call_counts_weekly else "day"
    where = ["org_id = :org_id"]
    params: dict[str, Any] = {"org_id": f.org_id}
    for (column, values), prefix in zip(
        [*dimensions(table.c, f), (table.c.duration_bucket, f.duration_buckets)],
        _ROLLUP_PREFIXES,
        strict=True,
    ):
        if values:
            where.append(f"{column.name} {in_list(prefix, values, params)}")
    if span[0] is not None:
        where.append(f"{period} >= :period_low")
        params["period_low"] = span[0]
    if span[1] is not None:
        where.append(f"{period} <= :period_high")
        params["period_high"] = span[1]
    return f"SELECT coalesce(sum(calls), 0) FROM {table.name} WHERE {' AND '.join(where)}", params


_ROLLUP_PREFIXES = ("agent", "campaign", "status", "type", "reason", "bucket")


def count_key(row: Row) -> dict[str, Any]:
    return {
        "org_id": row["org_id"],
        "day": row["created_at"] // DAY_MS,
        "agent_id": row.get("agent_id") or "",
        "campaign_id": row.get("campaign_id") or "",
        "status": row["status"],
        "type": row["type"],
        "disconnection_reason": row.get("disconnection_reason") or "",
        "duration_bucket": duration_bucket(row.get("duration") or 0),
    }


def bump(conn: Connection, key: Row, delta: int) -> None:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    weekly_key = {("week" if k == "day" else k): (v // 7 if k == "day" else v) for k, v in key.items()}
    for table, cell in ((call_counts, key), (call_counts_weekly, weekly_key)):
        stmt = insert(table).values(**cell, calls=delta)
        stmt = stmt.on_conflict_do_update(index_elements=list(cell), set_={"calls": table.c.calls + delta})
        conn.execute(stmt)


def rebuild_counts(conn: Connection, org_id: str | None = None) -> None:
    """Recompute ``call_counts`` from ``calls`` (after a bulk load that bypassed ``insert_call``)."""
    c = calls.c
    cells = select(
        c.org_id,
        (c.created_at // DAY_MS).label("day"),
        func.coalesce(c.agent_id, "").label("agent_id"),
        func.coalesce(c.campaign_id, "").label("campaign_id"),
        c.status,
        c.type,
        func.coalesce(c.disconnection_reason, "").label("disconnection_reason"),
        # The same buckets as duration_bucket(), highest first, as SQL.
        case(
            *((c.duration >= low, literal(name)) for name, (low, _) in _BUCKETS_DESC[:-1]),
            else_=literal(_BUCKETS_DESC[-1][0]),
        ).label("duration_bucket"),
    )
    delete = call_counts.delete()
    if org_id is not None:
        cells = cells.where(c.org_id == org_id)
        delete = delete.where(call_counts.c.org_id == org_id)
    sub = cells.subquery()
    keys = [sub.c[name] for name in _COUNT_DIMENSIONS]
    grouped = select(*keys, func.count().label("calls")).group_by(*keys)
    conn.execute(delete)
    conn.execute(call_counts.insert().from_select([*_COUNT_DIMENSIONS, "calls"], grouped))
    rebuild_weekly_counts(conn, org_id)


def rebuild_weekly_counts(conn: Connection, org_id: str | None = None) -> None:
    """Recompute ``call_counts_weekly`` by summing ``call_counts`` per week."""
    d = call_counts.c
    others = [d[name] for name in _COUNT_DIMENSIONS if name != "day"]
    week = (d.day // 7).label("week")
    grouped = select(week, *others, func.sum(d.calls).label("calls")).group_by(week, *others)
    delete = call_counts_weekly.delete()
    if org_id is not None:
        grouped = grouped.where(d.org_id == org_id)
        delete = delete.where(call_counts_weekly.c.org_id == org_id)
    conn.execute(delete)
    names = ["week", *(col.name for col in others), "calls"]
    conn.execute(call_counts_weekly.insert().from_select(names, grouped))


_BUCKETS_DESC = sorted(DURATION_BUCKETS.items(), key=lambda item: -item[1][0])
_COUNT_DIMENSIONS = (
    "org_id",
    "day",
    "agent_id",
    "campaign_id",
    "status",
    "type",
    "disconnection_reason",
    "duration_bucket",
)
