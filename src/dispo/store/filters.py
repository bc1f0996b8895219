"""Call-list filters: what a list request asks for, as SQL terms over ``calls``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

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
    """WHERE terms for ``f``. ``demote`` writes the duration and search terms so that no index
    can serve them (``duration + 0``, ``from_number || ''``): see ``list_statements``."""
    c = calls.c
    duration: Any = c.duration + 0 if demote else c.duration
    from_number: Any = c.from_number.concat("") if demote else c.from_number
    to_number: Any = c.to_number.concat("") if demote else c.to_number
    call_id: Any = c.call_id.concat("") if demote else c.call_id
    where: list[ColumnElement[bool]] = [c.org_id == f.org_id]
    for column, values in dimensions(c, f):
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


def has_duration_terms(f: CallFilter) -> bool:
    return bool(f.duration_buckets) or f.min_duration is not None or f.max_duration is not None
