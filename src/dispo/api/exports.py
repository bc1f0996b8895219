"""Exports of the call log: every call matching a ``GET /conversation`` filter, as CSV or JSONL.

The calls are read a page at a time in the list's own order, each page continuing from the last
one's keyset cursor in a fresh read transaction, and written out as they come: memory stays that of
one page (:data:`PAGE`) however many calls match. CSV has one column per metric of the agents'
newest analytics configs; JSONL one call per line, as ``GET /conversation/{id}`` shows it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import Any, cast

import orjson

from dispo.api import calllog
from dispo.store import calls as store
from dispo.store import metric_values
from dispo.store.database import Database

__all__ = ["CSV_COLUMNS", "FORMATS", "PAGE", "export_lines", "metric_columns"]

FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
PAGE = 500
CSV_COLUMNS = (
    "callId",
    "_id",
    "status",
    "type",
    "from",
    "to",
    "agentId",
    "campaignId",
    "createdAt",
    "startedAt",
    "endedAt",
    "duration",
    "callCost",
    "disconnectionReason",
    "analyticsStatus",
    "summary",
)


def metric_columns(db: Database, query: calllog.ListQuery) -> list[str]:
    with db.read() as conn:
        return metric_values.configured_identifiers(conn, query.filter.org_id, query.filter.agent_ids)


def calls_of(db: Database, query: calllog.ListQuery) -> Iterator[dict[str, Any]]:
    """Every call matching ``query``'s filter, in its order, as the call log renders them."""
    cursor: store.Cursor | None = None
    # A relevance-ranked export is written newest first (relevance pages by offset, not by cursor).
    sort_by = cast(store.SortKey, "createdAt" if query.sort_by == calllog.RELEVANCE else query.sort_by)
    while True:
        with db.read() as conn:
            page = store.list_calls(
                conn,
                query.filter,
                sort_by=sort_by,
                order=query.order,
                limit=PAGE,
                cursor=cursor,
                counted=False,
            )
        yield from calllog.render_calls(page)
        if page.next_cursor is None:
            return
        cursor = store.Cursor.decode(page.next_cursor)


def export_lines(
    db: Database,
    query: calllog.ListQuery,
    fmt: str,
    metrics: list[str],
    progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The export as chunks of bytes (a page of calls each); ``progress(n)`` after each chunk of ``n`` calls."""
    if fmt == "jsonl":
        chunk: list[bytes] = []
        for call in calls_of(db, query):
            chunk.append(orjson.dumps(call) + b"\n")
            if len(chunk) >= PAGE:
                yield b"".join(chunk)
                if progress is not None:
                    progress(len(chunk))
                chunk.clear()
        yield b"".join(chunk)
        if progress is not None:
            progress(len(chunk))
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*CSV_COLUMNS, *(f"metric.{m}" for m in metrics), "transcript"])
    n = 0
    for n, call in enumerate(calls_of(db, query), start=1):
        writer.writerow(csv_row(call, metrics))
        if n % PAGE == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            if progress is not None:
                progress(PAGE)
    yield buffer.getvalue().encode()
    if progress is not None:
        progress(n % PAGE if n else 0)


def csv_row(call: dict[str, Any], metrics: list[str]) -> list[Any]:
    analytics = call["postCallAnalytics"]
    values = {m.get("identifier"): m.get("value") for m in analytics.get("dispositionMetrics") or ()}
    shown = {**call, "analyticsStatus": analytics.get("status"), "summary": analytics.get("summary")}
    row: list[Any] = [shown[c] for c in CSV_COLUMNS]
    row += [_cell(values.get(m)) for m in metrics]
    row.append("\n".join(f"{t['role']}: {t['content']}" for t in call["transcript"]))
    return row


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value
