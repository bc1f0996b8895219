"""Call-log queries: list with filters, totals, cursors; fetch by id; insert and update.

Totals. A filtered list reports ``total``, and counting a million call rows takes ~25 ms on SQLite
and longer on PostgreSQL. So every write to ``calls`` also maintains ``call_counts``, per-day
counts by every dimension the list filters use, in the same transaction. A total whose filters
are all such dimensions is a sum over that much smaller table; the partial days at either end
of a date range are counted exactly from ``calls``. Filters that are not dimensions (``search``,
``minDuration``/``maxDuration``) count from ``calls``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite

from dispo.errors import BadRequest
from dispo.store.tables import analytics_results, call_counts, call_counts_weekly, calls, transcript_messages
from dispo.types import Row

DAY_MS = 86_400_000

# Duration buckets of the Atoms call-log filter, as half-open ranges of seconds.
DURATION_BUCKETS: dict[str, tuple[float, float | None]] = {
    "0-30": (0, 30),
    "30-60": (30, 60),
    "1-5": (60, 300),
    "5+": (300, None),
}

SORT_COLUMNS = {
    "createdAt": calls.c.created_at,
    "updatedAt": calls.c.updated_at,
    "callDuration": calls.c.duration,
    "avgLatency": calls.c.avg_latency,
}

SortKey = Literal["createdAt", "updatedAt", "callDuration", "avgLatency"]
SortOrder = Literal["asc", "desc"]


def duration_bucket(seconds: float) -> str:
    for name, (low, high) in DURATION_BUCKETS.items():
        if seconds >= low and (high is None or seconds < high):
            return name
    return "0-30"  # negative durations never happen; a call of no length is "0-30"


@dataclass(frozen=True)
class CallFilter:
    """Validated list filters. Empty tuples mean "any"."""

    org_id: str
    agent_ids: tuple[str, ...] = ()
    campaign_ids: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    disconnect_reasons: tuple[str, ...] = ()
    duration_buckets: tuple[str, ...] = ()
    min_duration: float | None = None
    max_duration: float | None = None
    date_from: int | None = None  # inclusive, epoch ms
    date_to: int | None = None  # inclusive, epoch ms
    search: str | None = None

    @property
    def countable_by_rollup(self) -> bool:
        return self.search is None and self.min_duration is None and self.max_duration is None


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
        try:
            padded = token + "=" * (-len(token) % 4)
            sort_by, order, value, pk = json.loads(base64.urlsafe_b64decode(padded.encode()))
            if sort_by not in SORT_COLUMNS or order not in ("asc", "desc"):
                raise ValueError(sort_by)
            if not isinstance(value, int | float) or not isinstance(pk, int):
                raise ValueError(value)
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise BadRequest(
                "cursor is not one this server issued: pass pagination.nextCursor from a previous "
                "response unchanged, or drop cursor to start from the first page."
            ) from None
        return cls(sort_by, order, value, pk)


@dataclass
class CallPage:
    rows: list[Row]
    total: int
    next_cursor: str | None
    has_more: bool
    transcripts: dict[int, list[Row]] = field(default_factory=dict)
    analytics: dict[int, Row] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Filters


def _prefix_range(column: Any, prefix: str) -> ColumnElement[bool]:
    """``column LIKE 'prefix%'`` written as a range, so both databases walk an index."""
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return and_(column >= prefix, column < upper)


def _search_terms(text: str) -> list[str]:
    """Forms of a search string worth matching: as typed, and as a phone number."""
    terms = [text]
    digits = "".join(ch for ch in text if ch.isdigit())
    if digits and all(ch.isdigit() or ch in "+-() ." for ch in text):
        terms = [f"+{digits}", digits] if not text.startswith("+") else [f"+{digits}"]
    return list(dict.fromkeys(terms))


def _dimensions(columns: Any, f: CallFilter) -> list[tuple[Any, tuple[str, ...]]]:
    """The filter's value lists next to their columns, in ``calls`` or in ``call_counts``."""
    return [
        (columns.agent_id, f.agent_ids),
        (columns.campaign_id, f.campaign_ids),
        (columns.status, f.statuses),
        (columns.type, f.types),
        (columns.disconnection_reason, f.disconnect_reasons),
    ]


def _where(
    f: CallFilter, *, date_from: int | None, date_to: int | None, demote: bool = False
) -> list[ColumnElement[bool]]:
    """WHERE terms for ``f``. ``demote`` writes the duration and search terms so that no index
    can serve them (``duration + 0``, ``from_number || ''``): see ``list_statements``."""
    c = calls.c
    duration: Any = c.duration + 0 if demote else c.duration
    from_number: Any = c.from_number.concat("") if demote else c.from_number
    to_number: Any = c.to_number.concat("") if demote else c.to_number
    call_id: Any = c.call_id.concat("") if demote else c.call_id
    where: list[ColumnElement[bool]] = [c.org_id == f.org_id]
    for column, values in _dimensions(c, f):
        if len(values) == 1:
            where.append(column == values[0])
        elif values:
            where.append(column.in_(values))
    if f.duration_buckets:
        ranges = []
        for name in f.duration_buckets:
            low, high = DURATION_BUCKETS[name]
            ranges.append(duration >= low if high is None else and_(duration >= low, duration < high))
        where.append(or_(*ranges))
    if f.min_duration is not None:
        where.append(duration >= f.min_duration)
    if f.max_duration is not None:
        where.append(duration <= f.max_duration)
    if date_from is not None:
        where.append(c.created_at >= date_from)
    if date_to is not None:
        where.append(c.created_at <= date_to)
    if f.search:
        terms: list[ColumnElement[bool]] = []
        looks_like_call_id = f.search.upper().startswith("CALL-")
        for term in _search_terms(f.search):
            if looks_like_call_id:
                # Phone numbers never start with CALL-, and call ids never start with a digit or +.
                terms.append(call_id == term if len(term) > 20 else _prefix_range(call_id, term))
                continue
            if not term.startswith("+"):
                terms.append(_prefix_range(call_id, term))
            terms.append(_prefix_range(from_number, term))
            terms.append(_prefix_range(to_number, term))
        where.append(or_(*terms))
    return where


# ---------------------------------------------------------------------------------------------
# Totals


def count_calls(conn: Connection, f: CallFilter) -> int:
    """The number of calls matching ``f``, from the rollups where they can answer.

    A date range splits three ways: whole weeks (``call_counts_weekly``), the whole days at
    either end of those (``call_counts``), and the part-days at either end (counted in ``calls``).
    """
    if not f.countable_by_rollup:
        return _count_exact(conn, f, f.date_from, f.date_to)
    days, ragged = _split(f.date_from, f.date_to, DAY_MS)
    total = sum(_count_exact(conn, f, lo, hi) for lo, hi in ragged)
    if days is None:
        return total
    weeks, loose_days = _split(days[0], days[1], 7)
    if weeks is not None:
        total += _count_rollup(conn, f, call_counts_weekly, weeks)
    for day_range in loose_days:
        total += _count_rollup(conn, f, call_counts, day_range)
    return total


Span = tuple[int | None, int | None]  # inclusive bounds; None is unbounded


def _split(lo: int | None, hi: int | None, unit: int) -> tuple[Span | None, list[tuple[int, int]]]:
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


def _count_exact(conn: Connection, f: CallFilter, date_from: int | None, date_to: int | None) -> int:
    stmt = select(func.count()).select_from(calls).where(*_where(f, date_from=date_from, date_to=date_to))
    return int(conn.execute(stmt).scalar_one())


def _count_rollup(conn: Connection, f: CallFilter, table: Table, span: Span) -> int:
    k = table.c
    period = k.week if table is call_counts_weekly else k.day
    where: list[ColumnElement[bool]] = [k.org_id == f.org_id]
    for column, values in [*_dimensions(k, f), (k.duration_bucket, f.duration_buckets)]:
        if values:
            where.append(column.in_(values))
    if span[0] is not None:
        where.append(period >= span[0])
    if span[1] is not None:
        where.append(period <= span[1])
    return int(conn.execute(select(func.coalesce(func.sum(k.calls), 0)).where(*where)).scalar_one())


# Above this many matches, a page is found faster by walking the time index (see list_statements).
DEMOTE_AT = 2000


def _has_duration_terms(f: CallFilter) -> bool:
    return bool(f.duration_buckets) or f.min_duration is not None or f.max_duration is not None


def list_statements(
    f: CallFilter,
    *,
    sort_by: SortKey = "createdAt",
    order: SortOrder = "desc",
    limit: int = 10,
    offset: int = 0,
    cursor: Cursor | None = None,
    matching: int | None = None,
) -> Select[Any]:
    """The SELECT for one page (one row more than ``limit``, to tell whether more follow).

    ``matching`` is the page's total when already known (SQLite only). SQLite's planner cannot
    tell how many calls a duration range or a search matches, and guesses wrong both ways: with
    thousands of matches it drives the query from that column's index and sorts every match to
    return ten, so those terms are demoted and it walks the sort order's index, stopping after
    one page; with few matches it walks the whole time index looking for them, so the sort key is
    made an expression and it uses the search or duration index instead.
    """
    column: ColumnElement[Any] = SORT_COLUMNS[sort_by]
    hinted = matching is not None and (
        f.search is not None or (sort_by != "callDuration" and _has_duration_terms(f))
    )
    demote = hinted and matching is not None and matching >= DEMOTE_AT
    where = _where(f, date_from=f.date_from, date_to=f.date_to, demote=demote)
    if hinted and not demote:
        # Few matches: sorting them is cheap, so order by an expression no index provides and
        # SQLite finds them through the search or duration index instead of walking time.
        column = column + 0
    if cursor is not None:
        key = tuple_(column, calls.c.pk)
        where.append(
            key < tuple_(literal(cursor.value), literal(cursor.pk))
            if order == "desc"
            else key > tuple_(literal(cursor.value), literal(cursor.pk))
        )
    ordering = (column.desc(), calls.c.pk.desc()) if order == "desc" else (column.asc(), calls.c.pk.asc())
    stmt = select(calls).where(*where).order_by(*ordering).limit(limit + 1)
    if offset:
        stmt = stmt.offset(offset)
    return stmt


def list_calls(
    conn: Connection,
    f: CallFilter,
    *,
    sort_by: SortKey = "createdAt",
    order: SortOrder = "desc",
    limit: int = 10,
    offset: int = 0,
    cursor: Cursor | None = None,
    with_details: bool = True,
) -> CallPage:
    """One page of calls matching ``f``, with the total and the cursor for the next page."""
    total = count_calls(conn, f)
    stmt = list_statements(
        f,
        sort_by=sort_by,
        order=order,
        limit=limit,
        offset=offset,
        cursor=cursor,
        # PostgreSQL's planner weighs ranges itself (it keeps histograms); SQLite needs the hint.
        matching=total if conn.dialect.name == "sqlite" else None,
    )
    rows: list[Row] = list(conn.execute(stmt).mappings().all())
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if has_more and rows:
        last = rows[-1]
        value = last[SORT_COLUMNS[sort_by].name]
        next_cursor = Cursor(sort_by, order, value, last["pk"]).encode()
    page = CallPage(rows=rows, total=total, next_cursor=next_cursor, has_more=has_more)
    if with_details and rows:
        pks = [r["pk"] for r in rows]
        page.transcripts = load_transcripts(conn, pks)
        page.analytics = load_latest_analytics(conn, pks)
    return page


# Hot-path statements are built once with bind parameters: constructing a SELECT per request
# costs more than SQLite takes to run it.
_t = transcript_messages.c
_a = analytics_results.c
_TRANSCRIPTS = (
    select(_t.call_pk, _t.role, _t.content, _t.timestamp)
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
    for call_pk, role, content, timestamp in conn.execute(_TRANSCRIPTS, {"pks": list(pks)}).all():
        out[call_pk].append({"role": role, "content": content, "timestamp": timestamp})
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
        calls.c.org_id == org_id, or_(calls.c.call_id.in_(wanted), calls.c.id.in_(wanted))
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


# ---------------------------------------------------------------------------------------------
# Writes: every path that changes a counted column goes through here, keeping call_counts exact.


def _count_key(row: Row) -> dict[str, Any]:
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


def _bump(conn: Connection, key: Row, delta: int) -> None:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    weekly_key = {("week" if k == "day" else k): (v // 7 if k == "day" else v) for k, v in key.items()}
    for table, cell in ((call_counts, key), (call_counts_weekly, weekly_key)):
        stmt = insert(table).values(**cell, calls=delta)
        stmt = stmt.on_conflict_do_update(index_elements=list(cell), set_={"calls": table.c.calls + delta})
        conn.execute(stmt)


def insert_call(
    conn: Connection,
    values: Row,
    transcript: Sequence[Row] = (),
) -> int:
    """Insert one call (and its transcript); returns its ``pk``."""
    row = {"avg_latency": _mean_latency(values), **values}
    pk = int(conn.execute(calls.insert().values(**row).returning(calls.c.pk)).scalar_one())
    if transcript:
        conn.execute(
            transcript_messages.insert(),
            [{"call_pk": pk, "seq": i, **m} for i, m in enumerate(transcript)],
        )
    _bump(conn, _count_key(row), 1)
    return pk


def update_call(conn: Connection, pk: int, changes: Row) -> None:
    """Change columns of one call, moving it between rollup cells when a counted column changes."""
    before = conn.execute(select(calls).where(calls.c.pk == pk)).mappings().one()
    after = {**before, **changes}
    if any(k.startswith("avg_") for k in changes):
        changes = {**changes, "avg_latency": _mean_latency(after)}
    conn.execute(calls.update().where(calls.c.pk == pk).values(**changes))
    old_key, new_key = _count_key(before), _count_key(after)
    if old_key != new_key:
        _bump(conn, old_key, -1)
        _bump(conn, new_key, 1)


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
        case(
            (c.duration >= 300, literal("5+")),
            (c.duration >= 60, literal("1-5")),
            (c.duration >= 30, literal("30-60")),
            else_=literal("0-30"),
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


def _mean_latency(values: Row) -> float:
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
