"""Call-list filters: what a list request asks for, as SQL terms over ``calls``."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_
from sqlalchemy import text as sql_text

from dispo.store.tables import calls

DAY_MS = 86_400_000

# Duration buckets of the Atoms call-log filter, as half-open ranges of seconds.
DURATION_BUCKETS: dict[str, tuple[float, float | None]] = {
    "0-30": (0, 30),
    "30-60": (30, 60),
    "1-5": (60, 300),
    "5+": (300, None),
}


def duration_bucket(seconds: float) -> str:
    for name, (low, high) in DURATION_BUCKETS.items():
        if seconds >= low and (high is None or seconds < high):
            return name
    return "0-30"  # negative durations never happen; a call of no length is "0-30"


@dataclass(frozen=True)
class MetricTerm:
    """One ``metric.<identifier>=…`` filter: ``op`` is eq, ne, in (``value`` a tuple of texts),
    gt, gte, lt, lte (``value`` a number: INTEGER, BOOLEAN 1/0, DATETIME epoch ms), between
    (``value`` a pair of numbers), null or notnull (no value)."""

    identifier: str
    op: str
    value: Any = None


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
    metrics: tuple[MetricTerm, ...] = ()
    # Set by the store from the connection: the transcript-search term differs by database.
    postgresql: bool = False

    @property
    def countable_by_rollup(self) -> bool:
        return (
            self.search is None
            and self.min_duration is None
            and self.max_duration is None
            and not self.metrics
        )

    @property
    def transcript_query(self) -> str | None:
        """The words ``search`` looks for in transcripts (see :func:`search_words`), or None."""
        return transcript_query(self.search)


def on_connection(f: CallFilter, conn: Connection) -> CallFilter:
    """``f`` with its database set from ``conn`` (the transcript-search term differs by database)."""
    postgresql = conn.dialect.name == "postgresql"
    return f if f.postgresql == postgresql else replace(f, postgresql=postgresql)


def search_words(search: str | None) -> list[str]:
    """The words of a search that is matched against transcripts too: one that contains a letter
    and is not a call id (a phone number or a call id is matched only as such)."""
    if not search or search.upper().startswith("CALL-") or not any(ch.isalpha() for ch in search):
        return []
    return re.findall(r"\w+", search.lower())[:16]


def transcript_query(search: str | None) -> str | None:
    """The full-text query of ``search``: its words, each quoted (SQLite FTS5 syntax, which
    PostgreSQL's plainto_tsquery reads alike): every word must appear in one message."""
    words = search_words(search)
    return " ".join(f'"{w}"' for w in words) if words else None


LIKE_ESCAPE = "\\"


def like_escaped(text: str) -> str:
    """``text`` for a LIKE pattern that matches it literally: ``%``, ``_`` and the escape character
    itself escaped. Use with ``.like(pattern, escape=LIKE_ESCAPE)``."""
    return (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


def contains(column: Any, text: str) -> ColumnElement[bool]:
    """``column`` contains ``text``, literally (no wildcards), ignoring case: lower-case ``text``."""
    return column.like(f"%{like_escaped(text)}%", escape=LIKE_ESCAPE)  # type: ignore[no-any-return]


def _search_terms(text: str) -> list[str]:
    """Forms of a search string worth matching: as typed, and as a phone number."""
    terms = [text]
    digits = "".join(ch for ch in text if ch.isdigit())
    if digits and all(ch.isdigit() or ch in "+-() ." for ch in text):
        terms = [f"+{digits}", digits] if not text.startswith("+") else [f"+{digits}"]
    return list(dict.fromkeys(terms))


def dimensions(columns: Any, f: CallFilter) -> list[tuple[Any, tuple[str, ...]]]:
    """The filter's value lists next to their columns, in ``calls`` or in ``call_counts``."""
    return [
        (columns.agent_id, f.agent_ids),
        (columns.campaign_id, f.campaign_ids),
        (columns.status, f.statuses),
        (columns.type, f.types),
        (columns.disconnection_reason, f.disconnect_reasons),
    ]


def conditions(
    f: CallFilter, *, date_from: int | None, date_to: int | None, demote: bool = False
) -> list[ColumnElement[bool]]:
    """WHERE terms for ``f``, for a Core statement over ``calls``: :func:`where_sql`'s text."""
    sql, params = where_sql(f, date_from=date_from, date_to=date_to, demote=demote)
    return [and_(sql_text(sql).bindparams(**params))]


def where_sql(
    f: CallFilter, *, date_from: int | None, date_to: int | None, demote: bool = False
) -> tuple[str, dict[str, Any]]:
    """WHERE terms for ``f`` as SQL text over ``calls``, with ``:name`` parameters (``store.driver``
    runs it as it is; :func:`conditions` wraps it for Core).

    A search is matched as index ranges (``number >= '+9163' AND number < '+9164'`` for a prefix),
    so both databases walk an index. ``demote`` writes the duration and search terms so that no
    index can serve them (``duration + 0``, ``from_number || ''``): see ``calls.list_statements``.
    """
    sql = ["calls.org_id = :org_id"]
    params: dict[str, Any] = {"org_id": f.org_id}
    prefixes = ("agent", "campaign", "status", "type", "reason")
    for (column, values), prefix in zip(dimensions(calls.c, f), prefixes, strict=True):
        if values:
            sql.append(f"calls.{column.name} {in_list(prefix, values, params)}")
    duration = "calls.duration + 0" if demote else "calls.duration"
    if f.duration_buckets:
        ranges = []
        for i, name in enumerate(f.duration_buckets):
            low, high = DURATION_BUCKETS[name]
            params[f"bucket{i}_low"] = low
            if high is None:
                ranges.append(f"{duration} >= :bucket{i}_low")
            else:
                params[f"bucket{i}_high"] = high
                ranges.append(f"{duration} >= :bucket{i}_low AND {duration} < :bucket{i}_high")
        sql.append(ranges[0] if len(ranges) == 1 else "(" + " OR ".join(f"({r})" for r in ranges) + ")")
    for name, value, op in (("min_duration", f.min_duration, ">="), ("max_duration", f.max_duration, "<=")):
        if value is not None:
            sql.append(f"{duration} {op} :{name}")
            params[name] = value
    for name, ms, op in (("date_from", date_from, ">="), ("date_to", date_to, "<=")):
        if ms is not None:
            sql.append(f"calls.created_at {op} :{name}")
            params[name] = ms
    if f.search:
        sql.append(_search_sql(f, params, demote))
    for i, term in enumerate(f.metrics):
        sql.append(_metric_sql(term, i, params, demote))
    return " AND ".join(sql), params


def in_list(prefix: str, values: tuple[Any, ...], params: dict[str, Any]) -> str:
    """``= :prefix0`` for one value, ``IN (:prefix0, :prefix1, …)`` for more; binds them in ``params``."""
    params.update((f"{prefix}{i}", value) for i, value in enumerate(values))
    return placeholders(prefix, len(values))


def placeholders(prefix: str, n: int) -> str:
    """``= :prefix0`` for one value, ``IN (:prefix0, :prefix1, …)`` for more (``n`` > 0)."""
    if n == 1:
        return f"= :{prefix}0"
    return "IN (" + ", ".join(f":{prefix}{i}" for i in range(n)) + ")"


def _search_sql(f: CallFilter, params: dict[str, Any], demote: bool) -> str:
    assert f.search is not None
    search = f.search
    concat = " || ''" if demote else ""
    terms: list[str] = []
    looks_like_call_id = search.upper().startswith("CALL-")

    def prefix_range(column: str, i: int, prefix: str) -> str:
        params[f"search{i}_low"] = prefix
        params[f"search{i}_high"] = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return f"calls.{column}{concat} >= :search{i}_low AND calls.{column}{concat} < :search{i}_high"

    for i, term in enumerate(_search_terms(search)):
        if looks_like_call_id:
            # Phone numbers never start with CALL-, and call ids never start with a digit or +.
            if len(term) > 20:
                params[f"search{i}"] = term
                terms.append(f"calls.call_id{concat} = :search{i}")
            else:
                terms.append(prefix_range("call_id", i, term))
            continue
        if not term.startswith("+"):
            terms.append(prefix_range("call_id", i, term))
        terms.append(prefix_range("from_number", i, term))
        terms.append(prefix_range("to_number", i, term))
    query = f.transcript_query
    if query is not None:
        params["fts"] = query
        if demote and not f.postgresql:
            # Many matches: probe each call's own messages (their rowids are call_pk * 2**20 + seq)
            # while walking the sort order, instead of gathering every matching message first.
            terms.append(
                "EXISTS (SELECT 1 FROM transcript_fts WHERE transcript_fts MATCH :fts "
                "AND transcript_fts.rowid BETWEEN calls.pk * 1048576 AND calls.pk * 1048576 + 1048575)"
            )
        else:
            terms.append(f"calls.pk IN ({transcript_match_sql(f.postgresql)})")
    if len(terms) == 1:
        return terms[0]
    return "(" + " OR ".join(f"({t})" for t in terms) + ")"


def has_duration_terms(f: CallFilter) -> bool:
    return bool(f.duration_buckets) or f.min_duration is not None or f.max_duration is not None


def transcript_match_sql(postgresql: bool, columns: str = "call_pk") -> str:
    """SELECT ``columns`` of the transcript messages that match ``:fts`` (all its words)."""
    if postgresql:
        return (
            f"SELECT {columns} FROM transcript_messages "
            "WHERE to_tsvector('simple', content) @@ plainto_tsquery('simple', :fts)"
        )
    return f"SELECT {columns} FROM transcript_fts WHERE transcript_fts MATCH :fts"


_COMPARISONS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _metric_sql(term: MetricTerm, i: int, params: dict[str, Any], demote: bool = False) -> str:
    """The call matches ``term``: ``calls.pk IN (…)`` over ``call_metrics``, served by its
    (org_id, identifier, value) indexes when few calls match; ``demote`` (many match, see
    ``calls.list_statements``) writes it as a probe of each call's row instead (its primary key),
    so that SQLite walks the sort order's index and stops after one page."""
    condition = metric_condition(term, f"metric{i}", params)
    if demote:
        return (
            "EXISTS (SELECT 1 FROM call_metrics WHERE call_metrics.call_pk = calls.pk AND "
            f"call_metrics.org_id = :org_id AND {condition})"
        )
    return f"calls.pk IN (SELECT call_pk FROM call_metrics WHERE org_id = :org_id AND {condition})"


def metric_condition(term: MetricTerm, name: str, params: dict[str, Any], table: str = "") -> str:
    """``term`` as SQL over one ``call_metrics`` row (its columns qualified with ``table`` when
    given), its values bound in ``params`` under ``name``."""
    params[name] = term.identifier
    t = f"{table}." if table else ""
    where = f"{t}identifier = :{name}"
    if term.op in ("eq", "ne"):
        params[f"{name}_v"] = term.value
        where += f" AND {t}value_text {'=' if term.op == 'eq' else '<>'} :{name}_v"
    elif term.op == "in":
        where += f" AND {t}value_text {in_list(f'{name}_v', tuple(term.value), params)}"
    elif term.op in _COMPARISONS:
        params[f"{name}_v"] = term.value
        where += f" AND {t}value_num {_COMPARISONS[term.op]} :{name}_v"
    elif term.op == "between":
        params[f"{name}_lo"], params[f"{name}_hi"] = term.value
        where += f" AND {t}value_num >= :{name}_lo AND {t}value_num <= :{name}_hi"
    elif term.op in ("null", "notnull"):
        where += f" AND {t}value_text IS {'NOT ' if term.op == 'notnull' else ''}NULL"
    else:
        raise ValueError(f"unknown metric operator {term.op!r}")
    return where
