"""Call-log queries: one page of a filtered list, calls by id, and the writes.

Every write goes through ``insert_call``/``update_call`` so that the rollups behind list totals
(``store/counts.py``) stay exact. A call ends in one place, :func:`end_call` (status, duration,
cost, latencies, reason, transcript, analytics pending, in the caller's transaction); a call
stored already ended (an import, a webhook that reports a whole call) goes through
:func:`insert_ended_call`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import groupby, repeat
from operator import itemgetter
from typing import Any, Literal

from sqlalchemy import (
    Connection,
    bindparam,
    insert,
    or_,
    select,
)

from dispo.calls import TERMINAL_STATUSES, CallEnding, CallStatus, CallType
from dispo.errors import BadRequest
from dispo.store.analytics_jobs import latest_config_ids, mark_pending, pending_values
from dispo.store.counts import bump, count_calls, count_key, rebuild_counts
from dispo.store.driver import fetch_all, fetch_one, json_value
from dispo.store.filters import (
    DURATION_BUCKETS,
    CallFilter,
    conditions,
    has_duration_terms,
    in_list,
    on_connection,
    placeholders,
    where_sql,
)
from dispo.store.tables import analytics_results, calls, organizations, transcript_messages
from dispo.store.webhooks import emit_for_call
from dispo.types import Row

__all__ = [
    "ANALYTICS_COLUMNS",
    "CALL_LOG_COLUMNS",
    "DEMOTE_AT",
    "DURATION_BUCKETS",
    "SORT_COLUMNS",
    "CallFilter",
    "CallLog",
    "CallPage",
    "Cursor",
    "Ended",
    "SortKey",
    "SortOrder",
    "Statement",
    "append_transcript",
    "call_log_entries",
    "call_log_entry",
    "call_status",
    "calls_matching",
    "count_calls",
    "end_call",
    "get_call",
    "get_calls_by_ids",
    "idle_chats",
    "insert_call",
    "insert_ended_call",
    "insert_ended_calls",
    "list_calls",
    "list_statements",
    "load_latest_analytics",
    "load_transcripts",
    "mean_latency",
    "ranked_calls",
    "rebuild_counts",
    "update_call",
]

SORT_COLUMNS = {
    "createdAt": calls.c.created_at,
    "updatedAt": calls.c.updated_at,
    "callDuration": calls.c.duration,
    "avgLatency": calls.c.avg_latency,
}

SortKey = Literal["createdAt", "updatedAt", "callDuration", "avgLatency"]
SortOrder = Literal["asc", "desc"]


@dataclass(frozen=True)
class Cursor:
    """Where the previous page ended, in the order it was sorted by. Opaque to clients."""

    sort_by: str
    order: str
    value: float | int
    pk: int

    def encode(self) -> str:
        raw = json.dumps([self.sort_by, self.order, self.value, self.pk], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """The cursor ``encode`` made; anything else (altered, truncated, forged) is a 400."""
        try:
            if len(token) > _CURSOR_MAX_CHARS:
                raise ValueError("too long")
            padded = token + "=" * (-len(token) % 4)
            sort_by, order, value, pk = json.loads(base64.urlsafe_b64decode(padded.encode()))
            if sort_by not in SORT_COLUMNS or order not in ("asc", "desc"):
                raise ValueError(sort_by)
            if not (_is_int64(value) or (type(value) is float and math.isfinite(value))):
                raise ValueError(value)  # a database can compare only 64-bit integers and finite floats
            if not _is_int64(pk):
                raise ValueError(pk)
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
            raise BadRequest(
                "cursor is not one this server issued: pass pagination.nextCursor from a previous "
                "response unchanged, or drop cursor to start from the first page."
            ) from None
        return cls(sort_by, order, value, pk)


_CURSOR_MAX_CHARS = 256  # this server's cursors are under 100 characters


def _is_int64(value: Any) -> bool:
    return type(value) is int and -(2**63) <= value < 2**63


# The columns of a call as the call log shows it, in the order ``api/calllog.py`` unpacks them.
CALL_LOG_COLUMNS = (
    "pk",
    "id",
    "call_id",
    "status",
    "duration",
    "from_number",
    "to_number",
    "type",
    "agent_id",
    "campaign_id",
    "created_at",
    "updated_at",
    "started_at",
    "ended_at",
    "recording_url",
    "recording_dual_url",
    "call_cost",
    "disconnection_reason",
    "call_failure_reason",
    "retry_count",
    "avg_transcriber_latency",
    "avg_agent_latency",
    "avg_synthesizer_latency",
    "analytics_status",
    "analytics_queued_at",
    "analytics_started_at",
    "analytics_finished_at",
    "analytics_attempts",
    "analytics_error",
    "avg_latency",
    "variables",  # JSON, last
)
# A call's newest analytics result: the columns the call log shows, JSON last.
ANALYTICS_COLUMNS = ("summary", "config_id", "config_version", "model", "created_at", "disposition_metrics")
_SELECT_CALLS = "SELECT " + ", ".join(f"calls.{c}" for c in CALL_LOG_COLUMNS) + " FROM calls"
_SORT_INDEX = {key: CALL_LOG_COLUMNS.index(column.name) for key, column in SORT_COLUMNS.items()}

CallRow = tuple[Any, ...]  # CALL_LOG_COLUMNS
AnalyticsRow = tuple[Any, ...]  # ANALYTICS_COLUMNS
MessageRow = tuple[Any, ...]  # call_pk, role, content, timestamp, latency_ms


@dataclass(frozen=True)
class Statement:
    """SQL text with ``:name`` parameters, run by ``store.driver``."""

    sql: str
    params: dict[str, Any]

    def __str__(self) -> str:
        return self.sql


@dataclass
class CallLog:
    """Calls as the call log shows them: rows (``CALL_LOG_COLUMNS``), each call's transcript and its
    newest analytics result, by ``pk``."""

    rows: list[CallRow]
    transcripts: dict[int, list[MessageRow]] = field(default_factory=dict)
    analytics: dict[int, AnalyticsRow] = field(default_factory=dict)


@dataclass
class CallPage(CallLog):
    total: int = 0
    total_is_lower_bound: bool = False  # more than ``total`` match (``list_calls``'s ``total_cap``)
    next_cursor: str | None = None
    has_more: bool = False


# Above this many matches, a page is found faster by walking the time index (see list_statements).
DEMOTE_AT = 2000


def list_statements(
    f: CallFilter,
    *,
    sort_by: SortKey = "createdAt",
    order: SortOrder = "desc",
    limit: int = 10,
    offset: int = 0,
    cursor: Cursor | None = None,
    matching: int | None = None,
    postgresql: bool = False,
) -> Statement:
    """The SELECT for one page (one row more than ``limit``, to tell whether more follow).

    ``matching`` is the page's total when already known (SQLite only). SQLite's planner cannot
    tell how many calls a duration range or a search matches, and guesses wrong both ways: with
    thousands of matches it drives the query from that column's index and sorts every match to
    return ten, so those terms are demoted and it walks the sort order's index, stopping after
    one page; with few matches it walks the whole time index looking for them, so the sort key is
    made an expression and it uses the search or duration index instead.
    """
    column = f"calls.{SORT_COLUMNS[sort_by].name}"
    hinted = matching is not None and (
        f.search is not None or bool(f.metrics) or (sort_by != "callDuration" and has_duration_terms(f))
    )
    demote = hinted and matching is not None and matching >= DEMOTE_AT
    where, params = where_sql(f, date_from=f.date_from, date_to=f.date_to, demote=demote)
    if hinted and not demote:
        # Few matches: sorting them is cheap, so order by an expression no index provides and
        # SQLite finds them through the search or duration index instead of walking time.
        column += " + 0"
    direction = "DESC" if order == "desc" else "ASC"
    if cursor is not None:
        where += f" AND ({column}, calls.pk) {'<' if order == 'desc' else '>'} (:cursor_value, :cursor_pk)"
        params.update(cursor_value=cursor.value, cursor_pk=cursor.pk)
    sql = f"{_SELECT_CALLS} WHERE {where} ORDER BY {column} {direction}, calls.pk {direction} LIMIT :limit"
    params["limit"] = limit + 1
    if offset:
        sql += " OFFSET :offset"
        params["offset"] = offset
    # Each call of the page joined with its newest analytics result (no statement of its own);
    # the page is a subquery with its LIMIT, so the join touches only its rows.
    sort = SORT_COLUMNS[sort_by].name
    sql = (
        f"SELECT {_PAGE_COLUMNS}, {_ANALYTICS_SELECT} FROM ({sql}) AS page {_newest_result('page', postgresql)} "
        f"ORDER BY page.{sort} {direction}, page.pk {direction}"
    )
    return Statement(sql, params)


def list_calls(
    conn: Connection,
    f: CallFilter,
    *,
    sort_by: SortKey = "createdAt",
    order: SortOrder = "desc",
    limit: int = 10,
    offset: int = 0,
    cursor: Cursor | None = None,
    total_cap: int = 0,
    counted: bool = True,
) -> CallPage:
    """One page of calls matching ``f``, with the total and the cursor for the next page.

    ``total_cap`` > 0: a total counted call by call (``count_calls``) stops there, and the page
    says so (``total_is_lower_bound``). ``counted=False`` (an export walking every page) leaves
    the total 0 and counts nothing."""
    # Counted at least to DEMOTE_AT: SQLite's plan below depends on whether that many match.
    f = on_connection(f, conn)
    total = count_calls(conn, f, cap=max(total_cap, DEMOTE_AT) if total_cap > 0 else 0) if counted else 0
    stmt = list_statements(
        f,
        sort_by=sort_by,
        order=order,
        limit=limit,
        offset=offset,
        cursor=cursor,
        # PostgreSQL's planner weighs ranges itself (it keeps histograms); SQLite needs the hint.
        matching=total if conn.dialect.name == "sqlite" and counted else None,
        postgresql=conn.dialect.name == "postgresql",
    )
    rows = fetch_all(conn, stmt.sql, stmt.params)
    has_more = len(rows) > limit
    page = CallPage([], total=total, has_more=has_more)
    _add_entries(conn, page, rows[:limit])
    if 0 < total_cap < total and not f.countable_by_rollup:
        page.total, page.total_is_lower_bound = total_cap, True
    if has_more and page.rows:
        last = page.rows[-1]
        page.next_cursor = Cursor(sort_by, order, last[_SORT_INDEX[sort_by]], last[0]).encode()
    _load_transcripts(conn, page)
    return page


def ranked_calls(
    conn: Connection, f: CallFilter, *, limit: int = 10, offset: int = 0, total_cap: int = 0
) -> CallPage:
    """One page of calls matching ``f`` (which has transcript words: ``f.transcript_query``), the
    best transcript match first (SQLite: FTS5's bm25 rank of the call's best message; PostgreSQL:
    ts_rank of it), then newest first; calls matched by number or id only come last."""
    f = on_connection(f, conn)
    postgresql = f.postgresql
    total = count_calls(conn, f, cap=total_cap)
    where, params = where_sql(f, date_from=f.date_from, date_to=f.date_to)
    params.update(fts=f.transcript_query, limit=limit + 1, offset=offset)
    sql = (
        f"SELECT {_CALL_COLUMNS}, {_ANALYTICS_SELECT} FROM calls "
        f"LEFT JOIN ({_RANKS[postgresql]}) AS hits ON hits.call_pk = calls.pk "
        f"{_newest_result('calls', postgresql)} WHERE {where} "
        "ORDER BY COALESCE(hits.score, -1) DESC, calls.created_at DESC, calls.pk DESC LIMIT :limit OFFSET :offset"
    )
    rows = fetch_all(conn, sql, params)
    page = CallPage([], total=total, has_more=len(rows) > limit)
    _add_entries(conn, page, rows[:limit])
    if 0 < total_cap < total:
        page.total, page.total_is_lower_bound = total_cap, True
    _load_transcripts(conn, page)
    return page


# Each matching call's best score, higher better: FTS5's rank is bm25, lower better.
_RANKS = {
    False: "SELECT call_pk, -min(r) AS score FROM (SELECT call_pk, rank AS r FROM transcript_fts "
    "WHERE transcript_fts MATCH :fts) AS m GROUP BY call_pk",
    True: "SELECT call_pk, max(ts_rank(to_tsvector('simple', content), plainto_tsquery('simple', :fts))) "
    "AS score FROM transcript_messages WHERE to_tsvector('simple', content) @@ plainto_tsquery('simple', :fts) "
    "GROUP BY call_pk",
}


def call_log_entry(conn: Connection, org_id: str, call_id: str) -> CallLog | None:
    """A call by its ``CALL-…`` id or its ``_id``, only within ``org_id``, with its transcript and
    newest analytics result.

    The call comes joined with its newest result; on PostgreSQL the transcript too, as one array
    per column, so that the whole read is one statement (one round trip with
    ``Database.read(snapshot=False)``); SQLite, in process, reads the transcript in a second one.
    """
    key = "call_id" if call_id.startswith("CALL-") else "id"
    postgresql = conn.dialect.name == "postgresql"
    found = fetch_one(conn, _ENTRY[postgresql, key], {"id": call_id, "org_id": org_id})
    if found is None:
        return None
    log = CallLog([])
    _add_entries(conn, log, [found])
    pk = found[0]
    if postgresql:
        roles, contents, timestamps, latencies = found[-4:]
        log.transcripts[pk] = list(zip(repeat(pk), roles, contents, timestamps, latencies)) if roles else []
    else:
        log.transcripts[pk] = fetch_all(conn, _TRANSCRIPT, {"pk": pk})
    return log


def call_log_entries(conn: Connection, org_id: str, call_ids: Sequence[str]) -> CallLog:
    """Calls of ``org_id`` among ``call_ids`` (``CALL-…`` ids or ``_id``s), in the order asked, each
    once, with transcripts and newest analytics results (two statements)."""
    wanted = list(dict.fromkeys(call_ids))
    params: dict[str, Any] = {"org_id": org_id}
    ids = in_list("id", tuple(wanted), params)
    sql = (
        f"SELECT {_CALL_COLUMNS}, {_ANALYTICS_SELECT} FROM calls "
        f"{_newest_result('calls', conn.dialect.name == 'postgresql')} "
        f"WHERE calls.org_id = :org_id AND (calls.call_id {ids} OR calls.id {ids})"
    )
    found: dict[str, tuple[Any, ...]] = {}
    for row in fetch_all(conn, sql, params):
        found[row[2]] = row
        found[row[1]] = row
    ordered: dict[int, tuple[Any, ...]] = {}
    for cid in wanted:
        match = found.get(cid)
        if match is not None:
            ordered.setdefault(match[0], match)
    log = CallLog([])
    _add_entries(conn, log, list(ordered.values()))
    _load_transcripts(conn, log)
    return log


def _add_entries(conn: Connection, log: CallLog, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows of ``CALL_LOG_COLUMNS`` then ``ANALYTICS_COLUMNS`` (the newest result, NULLs for a call
    without one) into ``log``, JSON decoded where the driver hands over text (SQLite)."""
    width = len(CALL_LOG_COLUMNS)
    end = width + len(ANALYTICS_COLUMNS)
    text = conn.dialect.name == "sqlite"
    for found in rows:
        row, result = found[:width], found[width:end]
        if text:
            row = (*row[:-1], json_value(conn, row[-1]))
        log.rows.append(row)
        if result[4] is not None:  # created_at: the call has a result
            log.analytics[row[0]] = (*result[:-1], json_value(conn, result[-1])) if text else result


def _load_transcripts(conn: Connection, log: CallLog) -> None:
    """The transcripts of ``log.rows``, in one statement."""
    if not log.rows:
        return
    pks = [r[0] for r in log.rows]
    params = {f"pk{i}": pk for i, pk in enumerate(pks)}
    # Ordered by call: one list per call, grouped without a Python loop per message.
    rows = fetch_all(conn, _transcripts_sql(len(pks)), params)
    log.transcripts = {pk: list(messages) for pk, messages in groupby(rows, itemgetter(0))}


_ANALYTICS_SELECT = ", ".join(f"analytics_results.{c}" for c in ANALYTICS_COLUMNS)
_CALL_COLUMNS = ", ".join(f"calls.{c}" for c in CALL_LOG_COLUMNS)
_PAGE_COLUMNS = ", ".join(f"page.{c}" for c in CALL_LOG_COLUMNS)


def _newest_result(calls_alias: str, postgresql: bool) -> str:
    """The join of each call with its newest analytics result, as ``analytics_results``.

    PostgreSQL gets a LATERAL subquery: with the SQLite form (a correlated subquery in the join
    condition) it hashed every result in the table for a page of 1,000 calls (66 ms, not 14)."""
    if postgresql:
        return (
            f"LEFT JOIN LATERAL (SELECT {_NEWEST_COLUMNS} FROM analytics_results AS newest "
            f"WHERE newest.call_pk = {calls_alias}.pk ORDER BY newest.created_at DESC, newest.id DESC "
            "LIMIT 1) AS analytics_results ON true"
        )
    return (
        "LEFT JOIN analytics_results ON analytics_results.id = (SELECT newest.id FROM analytics_results "
        f"AS newest WHERE newest.call_pk = {calls_alias}.pk "
        "ORDER BY newest.created_at DESC, newest.id DESC LIMIT 1)"
    )


_NEWEST_COLUMNS = ", ".join(f"newest.{c}" for c in ANALYTICS_COLUMNS)
_TRANSCRIPT_ARRAYS = (
    "LEFT JOIN LATERAL (SELECT array_agg(role ORDER BY seq) AS roles, array_agg(content ORDER BY seq) "
    "AS contents, array_agg(timestamp ORDER BY seq) AS timestamps, array_agg(latency_ms ORDER BY seq) "
    "AS latencies FROM transcript_messages WHERE transcript_messages.call_pk = calls.pk) AS t ON true"
)
_ENTRY = {
    (postgresql, key): (
        f"SELECT {_CALL_COLUMNS}, {_ANALYTICS_SELECT}"
        + (", t.roles, t.contents, t.timestamps, t.latencies" if postgresql else "")
        + f" FROM calls {_newest_result('calls', postgresql)}"
        + (f" {_TRANSCRIPT_ARRAYS}" if postgresql else "")
        + f" WHERE calls.{key} = :id AND calls.org_id = :org_id"
    )
    for postgresql in (False, True)
    for key in ("call_id", "id")
}
_TRANSCRIPT = (
    "SELECT call_pk, role, content, timestamp, latency_ms FROM transcript_messages "
    "WHERE call_pk = :pk ORDER BY seq"
)


@lru_cache(maxsize=64)
def _transcripts_sql(n: int) -> str:
    return (
        "SELECT call_pk, role, content, timestamp, latency_ms FROM transcript_messages "
        f"WHERE call_pk {placeholders('pk', n)} ORDER BY call_pk, seq"
    )


# Hot-path statements are built once with bind parameters: constructing a SELECT per request
# costs more than SQLite takes to run it.
_t = transcript_messages.c
_a = analytics_results.c
_TRANSCRIPTS = (
    select(_t.call_pk, _t.role, _t.content, _t.timestamp, _t.latency_ms)
    .where(_t.call_pk.in_(bindparam("pks", expanding=True)))
    .order_by(_t.call_pk, _t.seq)
)
_ANALYTICS = (
    select(analytics_results)
    .where(_a.call_pk.in_(bindparam("pks", expanding=True)))
    .order_by(_a.call_pk, _a.created_at, _a.id)
)
_BY_CALL_ID = select(calls).where(calls.c.call_id == bindparam("id"), calls.c.org_id == bindparam("org_id"))
_BY_OBJECT_ID = select(calls).where(calls.c.id == bindparam("id"), calls.c.org_id == bindparam("org_id"))


def load_transcripts(conn: Connection, pks: Sequence[int]) -> dict[int, list[Row]]:
    out: dict[int, list[Row]] = {pk: [] for pk in pks}
    # .all() fetches in one call; iterating the result would fetch row by row.
    for call_pk, role, content, timestamp, latency in conn.execute(_TRANSCRIPTS, {"pks": list(pks)}).all():
        message = {"role": role, "content": content, "timestamp": timestamp}
        if latency is not None:  # agent turns of calls Dispo placed itself
            message["latency_ms"] = latency
        out[call_pk].append(message)
    return out


def load_latest_analytics(conn: Connection, pks: Sequence[int]) -> dict[int, Row]:
    out: dict[int, Row] = {}
    for row in conn.execute(_ANALYTICS, {"pks": list(pks)}).mappings():
        out[row["call_pk"]] = row  # ordered ascending: the last one per call wins
    return out


def get_call(conn: Connection, org_id: str, call_id: str) -> Row | None:
    """A call by its ``CALL-…`` id or its ``_id``, only within ``org_id``."""
    stmt = _BY_CALL_ID if call_id.startswith("CALL-") else _BY_OBJECT_ID
    return conn.execute(stmt, {"id": call_id, "org_id": org_id}).mappings().first()


def get_calls_by_ids(conn: Connection, org_id: str, call_ids: Iterable[str]) -> list[Row]:
    """Calls of ``org_id`` among ``call_ids`` (``CALL-…`` ids or ``_id``s), in the order asked."""
    wanted = list(dict.fromkeys(call_ids))
    stmt = select(calls).where(
        calls.c.org_id == org_id,
        or_(calls.c.call_id.in_(wanted), calls.c.id.in_(wanted)),
    )
    found: dict[str, Row] = {}
    for row in conn.execute(stmt).mappings():
        found[row["call_id"]] = row
        found[row["id"]] = row
    out: list[Row] = []
    seen: set[int] = set()
    for cid in wanted:
        match = found.get(cid)
        if match is not None and match["pk"] not in seen:
            seen.add(match["pk"])
            out.append(match)
    return out


def calls_matching(conn: Connection, f: CallFilter, *, statuses: Sequence[str], limit: int) -> list[Row]:
    """``pk``, ``id``, ``call_id``, ``agent_id`` and ``status`` of up to ``limit`` calls matching ``f``
    whose status is one of ``statuses``, oldest first (re-analysis picks calls with it)."""
    c = calls.c
    f = on_connection(f, conn)
    where = conditions(f, date_from=f.date_from, date_to=f.date_to)
    where.append(c.status.in_(statuses))
    stmt = (
        select(c.pk, c.id, c.call_id, c.agent_id, c.status)
        .where(*where)
        .order_by(c.created_at, c.pk)
        .limit(limit)
    )
    return list(conn.execute(stmt).mappings())


def insert_call(
    conn: Connection,
    values: Row,
    transcript: Sequence[Row] = (),
) -> int:
    """Insert one call (and its transcript); returns its ``pk``."""
    row = {"avg_latency": mean_latency(values), **values}
    pk = int(conn.execute(calls.insert().values(**row).returning(calls.c.pk)).scalar_one())
    if transcript:
        conn.execute(
            transcript_messages.insert(),
            [{"call_pk": pk, "seq": i, **m} for i, m in enumerate(transcript)],
        )
    bump(conn, count_key(row), 1)
    return pk


def update_call(conn: Connection, pk: int, changes: Row) -> None:
    """Change columns of one call, moving it between rollup cells when a counted column changes."""
    before = conn.execute(select(calls).where(calls.c.pk == pk)).mappings().one()
    after = {**before, **changes}
    if any(k.startswith("avg_") for k in changes):
        changes = {**changes, "avg_latency": mean_latency(after)}
    conn.execute(calls.update().where(calls.c.pk == pk).values(**changes))
    old_key, new_key = count_key(before), count_key(after)
    if old_key != new_key:
        bump(conn, old_key, -1)
        bump(conn, new_key, 1)


def mean_latency(values: Row) -> float:
    measured = [
        v
        for v in (
            values.get("avg_transcriber_latency"),
            values.get("avg_agent_latency"),
            values.get("avg_synthesizer_latency"),
        )
        if v is not None
    ]
    return sum(measured) / len(measured) if measured else 0.0


# ---------------------------------------------------------------------------------------------
# Calls as they happen: status, transcript, the end


def call_status(conn: Connection, pk: int) -> str:
    """The call's status (the call must exist)."""
    return str(conn.execute(select(calls.c.status).where(calls.c.pk == pk)).scalar_one())


def append_transcript(
    conn: Connection, call_pk: int, turns: Sequence[Row], first_seq: int | None = None
) -> None:
    """Add ``turns`` (``role``, ``content``, ``timestamp``, ``latency_ms``) to the call's transcript,
    numbered from ``first_seq``; None numbers them after the last turn stored."""
    if not turns:
        return
    if first_seq is None:
        t = transcript_messages.c
        last = conn.execute(
            select(t.seq).where(t.call_pk == call_pk).order_by(t.seq.desc()).limit(1)
        ).scalar()
        first_seq = int(last if last is not None else -1) + 1
    conn.execute(
        transcript_messages.insert(),
        [{"call_pk": call_pk, "seq": first_seq + i, **turn} for i, turn in enumerate(turns)],
    )


@dataclass(frozen=True)
class Ended:
    """What :func:`end_call` did: the call's status and reason after it, whether it wrote them
    (``changed``: False when the call had already ended), and whether its analytics were marked
    pending (``marked``: enqueue the job after the commit)."""

    status: str
    reason: str | None
    changed: bool
    marked: bool


def end_call(conn: Connection, call_pk: int, ending: CallEnding, transcript: Sequence[Row] = ()) -> Ended:
    """End a call in the caller's transaction: its terminal status, times, duration, cost,
    latencies and disconnection reason (``ending``), the rest of its ``transcript``, and its
    analytics marked pending.

    A call that has already ended (a terminal status) is left as it is: the row is the record, and
    whoever ended it first settled it. The row is locked (PostgreSQL) until the commit, so two
    enders cannot both write.
    """
    c = calls.c
    current = conn.execute(
        select(c.status, c.disconnection_reason).where(c.pk == call_pk).with_for_update()
    ).one()
    if current.status in TERMINAL_STATUSES:
        return Ended(str(current.status), current.disconnection_reason, changed=False, marked=False)
    append_transcript(conn, call_pk, transcript)
    values = ending.values()
    update_call(conn, call_pk, values)
    marked = mark_pending(conn, call_pk)
    emit_for_call(conn, call_pk, "post-conversation")  # the webhooks' outbox, in this transaction
    return Ended(values["status"], values["disconnection_reason"], changed=True, marked=marked)


def insert_ended_call(conn: Connection, values: Row, transcript: Sequence[Row] = ()) -> tuple[int, bool]:
    """``insert_call`` for a call stored already ended (imports, webhooks that report a whole call),
    marking its analytics pending when its status is terminal. Returns ``(pk, marked)``: enqueue
    the job after the commit when marked."""
    pk = insert_call(conn, values, transcript)
    if values.get("status") in TERMINAL_STATUSES:
        emit_for_call(conn, pk, "post-conversation")
        return pk, mark_pending(conn, pk)
    return pk, False


def insert_ended_calls(conn: Connection, items: Sequence[tuple[Row, Sequence[Row]]]) -> list[int]:
    """:func:`insert_ended_call` for many calls at once (imports): a few statements per batch, not
    per call. Calls with a terminal status are inserted with their analytics pending, with their
    agent's newest config, as :func:`mark_pending` would; enqueue them after the commit.
    Returns the calls' ``pk``, in order."""
    if not items:
        return []
    now = max(int(v["updated_at"]) for v, _ in items)
    configs = latest_config_ids(conn, [v.get("agent_id") or "" for v, _ in items])
    rows = []
    for values, _ in items:
        row = {"avg_latency": mean_latency(values), **values}
        if row.get("status") in TERMINAL_STATUSES:
            config = configs.get(row.get("agent_id") or "")
            row.update(pending_values(config[0] if config else None, now))
        rows.append(row)
    result = conn.execute(insert(calls).returning(calls.c.pk, sort_by_parameter_order=True), rows)
    pks = [int(pk) for pk in result.scalars().all()]
    messages = [
        {"call_pk": pk, "seq": i, **m}
        for pk, (_, transcript) in zip(pks, items, strict=False)
        for i, m in enumerate(transcript)
    ]
    if messages:
        conn.execute(insert(transcript_messages), messages)
    cells: dict[tuple[Any, ...], tuple[Row, int]] = {}
    for row in rows:
        key = count_key(row)
        ident = tuple(key.values())
        cells[ident] = (key, cells.get(ident, (key, 0))[1] + 1)
    for cell, n in cells.values():
        bump(conn, cell, n)
    for pk, row in zip(pks, rows, strict=True):
        if row.get("status") in TERMINAL_STATUSES:
            emit_for_call(conn, pk, "post-conversation")  # the webhooks' outbox, in this transaction
    return pks


def idle_chats(conn: Connection, updated_before: int, limit: int) -> list[tuple[str, str]]:
    """``(org_id, call_id)`` of chats in progress not updated since ``updated_before``, at most
    ``limit`` per organization."""
    c = calls.c
    out: list[tuple[str, str]] = []
    # Per organization, so that ix_calls_org_status_created finds the few calls in progress.
    for (org_id,) in conn.execute(select(organizations.c.id)).all():
        rows = conn.execute(
            select(c.org_id, c.call_id)
            .where(
                c.org_id == org_id,
                c.status == CallStatus.IN_PROGRESS,
                c.type == CallType.CHAT,
                c.updated_at < updated_before,
            )
            .limit(limit)
        ).all()
        out += [(str(r.org_id), str(r.call_id)) for r in rows]
    return out
