"""The call log as clients see it: list parameters in, Atoms-shaped call records out.

Shared by the REST API and the CLI so that both accept the same filters with the same errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from sqlalchemy import Connection

from dispo.api.snippets import snippet
from dispo.calls import CallStatus, CallType, DisconnectReason
from dispo.errors import BadRequest, ValidationFailed
from dispo.ids import is_object_id
from dispo.store import calls as store
from dispo.store.filters import MetricTerm, search_words
from dispo.timeutil import ms_to_iso, parse_instant

CALL_STATUSES = tuple(s.value for s in CallStatus)
CALL_TYPES = tuple(t.value for t in CallType)
DISCONNECT_REASONS = tuple(r.value for r in DisconnectReason)
# Where a total counted call by call (a search, a duration range) stops: DISPO_LIST_TOTAL_CAP.
DEFAULT_TOTAL_CAP = 10_000
LIST_PARAMETERS = (
    "page",
    "limit",
    "cursor",
    "agentIds",
    "campaignIds",
    "statusFilter",
    "callTypes",
    "disconnectReasonFilter",
    "search",
    "dateFrom",
    "dateTo",
    "durationFilter",
    "minDuration",
    "maxDuration",
    "sortBy",
    "sortOrder",
)


RELEVANCE = "relevance"  # sortBy for a search: the best transcript match first
METRIC_PREFIX = "metric."
METRIC_OPERATORS = ("eq", "ne", "in", "gt", "gte", "lt", "lte", "between", "is")
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True)
class ListQuery:
    filter: store.CallFilter
    page: int
    limit: int
    sort_by: store.SortKey | Literal["relevance"]
    order: store.SortOrder
    cursor: store.Cursor | None
    total_cap: int = DEFAULT_TOTAL_CAP


def parse_list_query(
    org_id: str,
    params: Mapping[str, str],
    *,
    default_limit: int = 10,
    max_limit: int = 1000,
    total_cap: int = DEFAULT_TOTAL_CAP,
    extra: tuple[str, ...] = (),
) -> ListQuery:
    """Validate ``GET /conversation`` parameters (and the route's ``extra`` ones, which the caller
    reads); every problem is reported at once."""
    errors: list[str] = []
    nul = sorted(name for name, value in params.items() if "\x00" in value or "\x00" in name)
    if nul:
        raise ValidationFailed(f"Parameter {', '.join(nul)} contains a NUL character (%00): remove it.")
    _unknown_parameters(params, errors, extra)
    metrics = metric_terms(params, errors)
    page = _int(params, "page", 1, errors, low=1, high=1_000_000)
    limit = _int(params, "limit", default_limit, errors, low=1, high=max_limit)
    agent_ids = _ids(params, "agentIds", errors)
    campaign_ids = _ids(params, "campaignIds", errors)
    statuses = _choices(params, "statusFilter", CALL_STATUSES, errors)
    types = _choices(params, "callTypes", CALL_TYPES, errors)
    reasons = _choices(params, "disconnectReasonFilter", DISCONNECT_REASONS, errors)
    buckets = _choices(params, "durationFilter", tuple(store.DURATION_BUCKETS), errors)
    min_duration, max_duration = _duration_range(params, errors)
    date_from, date_to = _date_range(params, errors)
    search = _search(params, errors)
    sort_by, order = _sorting(params, errors)
    cursor = _cursor(params, page, sort_by, order, errors)
    if errors:
        raise ValidationFailed(errors[0], errors=errors)
    return ListQuery(
        filter=store.CallFilter(
            org_id=org_id,
            agent_ids=agent_ids,
            campaign_ids=campaign_ids,
            statuses=statuses,
            types=types,
            disconnect_reasons=reasons,
            duration_buckets=buckets,
            min_duration=min_duration,
            max_duration=max_duration,
            date_from=date_from,
            date_to=date_to,
            search=search,
            metrics=metrics,
        ),
        page=page,
        limit=limit,
        sort_by=cast(store.SortKey, sort_by),  # or "relevance"
        order=cast(store.SortOrder, order),
        cursor=cursor,
        total_cap=total_cap,
    )


def list_calls(conn: Connection, q: ListQuery) -> dict[str, Any]:
    """``data`` of ``GET /conversation``: ``{logs, pagination}``."""
    offset = 0 if q.cursor is not None else (q.page - 1) * q.limit
    if q.sort_by == RELEVANCE:
        page = store.ranked_calls(conn, q.filter, limit=q.limit, offset=offset, total_cap=q.total_cap)
    else:
        page = store.list_calls(
            conn,
            q.filter,
            sort_by=cast(store.SortKey, q.sort_by),
            order=q.order,
            limit=q.limit,
            offset=offset,
            cursor=q.cursor,
            total_cap=q.total_cap,
        )
    total_pages = -(-page.total // q.limit) if page.total else 0
    pagination: dict[str, Any] = {
        "total": page.total,
        "page": None if q.cursor is not None else q.page,
        "limit": q.limit,
        "hasMore": page.has_more,
        "totalPages": total_pages,
        "nextCursor": page.next_cursor,
    }
    if page.total_is_lower_bound:  # only then: every other answer keeps Atoms' keys
        pagination["totalIsLowerBound"] = True
    logs = render_calls(page)
    words = search_words(q.filter.search)
    if words:  # only then: every other answer keeps Atoms' keys
        for log, row in zip(logs, page.rows, strict=True):
            log["snippet"] = snippet(page.transcripts.get(row[0], ()), words)
    return {"logs": logs, "pagination": pagination}


def get_call(conn: Connection, org_id: str, call_id: str) -> dict[str, Any] | None:
    log = store.call_log_entry(conn, org_id, call_id)
    return None if log is None else render_calls(log)[0]


def search_calls(conn: Connection, org_id: str, call_ids: Sequence[str]) -> dict[str, Any]:
    logs = render_calls(store.call_log_entries(conn, org_id, call_ids))
    return {"logs": logs, "total": len(logs), "requestedCount": len(call_ids)}


def render_calls(log: store.CallLog) -> list[dict[str, Any]]:
    """The calls of ``log`` in the Atoms wire format, in its order."""
    transcripts, analytics = log.transcripts, log.analytics
    return [render_call(row, transcripts.get(row[0], ()), analytics.get(row[0])) for row in log.rows]


def render_call(
    row: store.CallRow,
    transcript: Sequence[store.MessageRow],
    analytics: store.AnalyticsRow | None,
) -> dict[str, Any]:
    """One call (``store.CALL_LOG_COLUMNS``) in the Atoms wire format (``CallLogItem``/``CallDetail``)."""
    (
        _pk,
        object_id,
        call_id,
        status,
        duration,
        from_number,
        to_number,
        call_type,
        agent_id,
        campaign_id,
        created_at,
        updated_at,
        started_at,
        ended_at,
        recording_url,
        recording_dual_url,
        call_cost,
        disconnection_reason,
        call_failure_reason,
        retry_count,
        transcriber_latency,
        agent_latency,
        synthesizer_latency,
        *job,
        _avg_latency,
        variables,
    ) = row
    return {
        "_id": object_id,
        "callId": call_id,
        "status": status,
        "duration": duration,
        "from": from_number,
        "to": to_number,
        "type": call_type,
        "agentId": agent_id,
        "campaignId": campaign_id,
        "createdAt": ms_to_iso(created_at),
        "updatedAt": ms_to_iso(updated_at),
        "startedAt": ms_to_iso(started_at),
        "endedAt": ms_to_iso(ended_at),
        "transcript": render_transcript(transcript),
        "recordingUrl": recording_url,
        "recordingDualUrl": recording_dual_url,
        "callCost": call_cost,
        "disconnectionReason": disconnection_reason,
        "callFailureReason": call_failure_reason,
        "retryCount": retry_count,
        "variables": variables or {},
        "postCallAnalytics": render_analytics(job, analytics),
        "average_transcriber_latency": transcriber_latency,
        "average_agent_latency": agent_latency,
        "average_synthesizer_latency": synthesizer_latency,
    }


def render_transcript(messages: Sequence[store.MessageRow]) -> list[dict[str, Any]]:
    """Messages (``store.MessageRow``): ``latencyMs`` only on turns that have one (agent turns of
    calls Dispo placed itself)."""
    iso = ms_to_iso
    return [
        {"role": role, "content": content, "timestamp": iso(timestamp)}
        if latency is None
        else {"role": role, "content": content, "timestamp": iso(timestamp), "latencyMs": latency}
        for _pk, role, content, timestamp, latency in messages
    ]


def render_analytics(job: Sequence[Any], result: store.AnalyticsRow | None) -> dict[str, Any]:
    """Always an object, so ``data["postCallAnalytics"].get("summary")`` never fails on a new call.

    ``job`` is the call's analytics status, queued, started and finished times, attempts and
    error. ``status`` follows the job (``pending``, ``running``, ``completed``, ``failed``; null for
    a call that has not ended); ``summary`` and ``dispositionMetrics`` are the newest result's
    (kept while a re-analysis is pending or running).
    """
    status, queued_at, started_at, finished_at, attempts, error = job
    if status is None and result is None:  # a call that has not ended (or predates analytics jobs)
        return {"status": None, "summary": None, "dispositionMetrics": []}
    out: dict[str, Any] = {
        "status": status or ("completed" if result is not None else None),
        "summary": None,
        "dispositionMetrics": [],
        "queuedAt": ms_to_iso(queued_at),
        "startedAt": None if status == "pending" else ms_to_iso(started_at),
        "completedAt": ms_to_iso(finished_at) if status == "completed" else None,
        "failedAt": ms_to_iso(finished_at) if status == "failed" else None,
        "attempts": attempts or 0,
        "error": error,
    }
    if result is not None:
        summary, config_id, config_version, model, created_at, metrics = result
        out.update(
            summary=summary,
            dispositionMetrics=metrics,
            configId=config_id,
            configVersion=config_version,
            model=model,
            createdAt=ms_to_iso(created_at),
        )
        if out["completedAt"] is None and status in (None, "completed"):
            out["completedAt"] = out["createdAt"]
    return out


# ---------------------------------------------------------------------------------------------
# Parameter parsers: each appends a message naming the parameter and the fix, and returns a default.


def _int(
    params: Mapping[str, str], name: str, default: int, errors: list[str], *, low: int, high: int
) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        errors.append(f"{name}={raw!r} is not a whole number: give an integer from {low} to {high}.")
        return default
    if not low <= value <= high:
        errors.append(f"{name}={value} is out of range: give an integer from {low} to {high}.")
        return default
    return value


def _float(params: Mapping[str, str], name: str, errors: list[str]) -> float | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        errors.append(f"{name}={raw!r} is not a number of seconds, e.g. {name}=30.")
        return None
    if not 0 <= value < 1e9:
        errors.append(f"{name}={raw} must be a number of seconds, zero or more.")
        return None
    return value


def _split(raw: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in raw.split(",") if v.strip()))


def _choices(
    params: Mapping[str, str], name: str, allowed: tuple[str, ...], errors: list[str]
) -> tuple[str, ...]:
    raw = params.get(name)
    if not raw:
        return ()
    values = _split(raw)
    bad = [v for v in values if v not in allowed]
    if bad:
        errors.append(
            f"{name} has unknown value{'s' if len(bad) > 1 else ''} {', '.join(bad)}: use {', '.join(allowed)}."
        )
        return ()
    return values


def _ids(params: Mapping[str, str], name: str, errors: list[str]) -> tuple[str, ...]:
    raw = params.get(name)
    if not raw:
        return ()
    values = _split(raw)
    bad = [v for v in values if not is_object_id(v)]
    if bad:
        errors.append(
            f"{name} has malformed id{'s' if len(bad) > 1 else ''} {', '.join(bad[:5])}: ids are 24 hex characters."
        )
        return ()
    if len(values) > 100:
        errors.append(f"{name} lists {len(values)} ids; at most 100 are allowed.")
        return ()
    return values


def _instant(params: Mapping[str, str], name: str, errors: list[str], *, end_of_day: bool) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_instant(raw, field=name, end_of_day=end_of_day)
    except ValidationFailed as exc:
        errors.append(exc.message)
        return None


def _unknown_parameters(params: Mapping[str, str], errors: list[str], extra: tuple[str, ...] = ()) -> None:
    known = (*LIST_PARAMETERS, *extra)
    unknown = sorted(p for p in set(params) - set(known) if not p.startswith(METRIC_PREFIX))
    if unknown:
        errors.append(
            f"Unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
            f"the call list takes {', '.join(known)} and {METRIC_PREFIX}<identifier>."
        )


def _duration_range(params: Mapping[str, str], errors: list[str]) -> tuple[float | None, float | None]:
    """``minDuration`` and ``maxDuration``, in seconds, in that order."""
    low = _float(params, "minDuration", errors)
    high = _float(params, "maxDuration", errors)
    if low is not None and high is not None and low > high:
        errors.append(f"minDuration ({low:g}) is above maxDuration ({high:g}): swap them.")
    return low, high


def date_range(params: Mapping[str, str]) -> tuple[int | None, int | None]:
    """``dateFrom`` and ``dateTo`` of a query, in epoch ms; ValidationFailed lists what is wrong."""
    errors: list[str] = []
    out = _date_range(params, errors)
    if errors:
        raise ValidationFailed(errors[0], errors=errors)
    return out


def _date_range(params: Mapping[str, str], errors: list[str]) -> tuple[int | None, int | None]:
    """``dateFrom`` and ``dateTo`` (a bare date ends at the end of its day), in that order."""
    date_from = _instant(params, "dateFrom", errors, end_of_day=False)
    date_to = _instant(params, "dateTo", errors, end_of_day=True)
    if date_from is not None and date_to is not None and date_from > date_to:
        errors.append(f"dateFrom ({ms_to_iso(date_from)}) is after dateTo ({ms_to_iso(date_to)}): swap them.")
    return date_from, date_to


def _search(params: Mapping[str, str], errors: list[str]) -> str | None:
    search = params.get("search")
    if search is not None:
        search = search.strip() or None
        if search is not None and len(search) > 64:
            errors.append(
                "search is longer than 64 characters: give a call id, (part of) a phone number, or a "
                "few words said in the call."
            )
    return search


def _sorting(params: Mapping[str, str], errors: list[str]) -> tuple[str, str]:
    """``(sortBy, sortOrder)``, ``createdAt desc`` by default."""
    sort_by = params.get("sortBy", "createdAt")
    if sort_by == RELEVANCE:
        if not search_words(params.get("search")):
            errors.append(
                "sortBy=relevance ranks calls by how well their transcript matches search: give "
                "search words too, e.g. search=refund."
            )
        if params.get("cursor"):
            errors.append("sortBy=relevance pages with page and limit, not cursor: drop the cursor.")
    elif sort_by not in store.SORT_COLUMNS:
        errors.append(
            f"sortBy={sort_by!r} is not a sort key: use one of {', '.join(store.SORT_COLUMNS)} or {RELEVANCE}."
        )
    order = params.get("sortOrder", "desc").lower()
    if order not in ("asc", "desc"):
        errors.append(f"sortOrder={params.get('sortOrder')!r} must be asc or desc.")
    return sort_by, order


def _cursor(
    params: Mapping[str, str], page: int, sort_by: str, order: str, errors: list[str]
) -> store.Cursor | None:
    """The decoded ``cursor``, which must continue a list in the same order and excludes ``page``."""
    if not params.get("cursor") or sort_by == RELEVANCE:
        return None
    if "page" in params and page != 1:
        errors.append("Give either page or cursor, not both: a cursor already says where the page starts.")
    cursor = None
    try:
        cursor = store.Cursor.decode(params["cursor"])
    except BadRequest as exc:
        errors.append(exc.message)
    if cursor is not None and (cursor.sort_by != sort_by or cursor.order != order):
        errors.append(
            f"This cursor continues a list sorted by {cursor.sort_by} {cursor.order}; pass the same "
            "sortBy and sortOrder with it, or drop the cursor."
        )
    return cursor


# ---------------------------------------------------------------------------------------------
# metric.<identifier>=[op:]value — filters on the values post-call analytics extracted


def metric_terms(params: Mapping[str, str], errors: list[str]) -> tuple[MetricTerm, ...]:
    """The ``metric.<identifier>`` parameters, as :class:`MetricTerm`, in the order given.

    ``metric.x=yes`` (equal), ``metric.x=in:yes,unclear``, ``metric.x=ne:no``,
    ``metric.x=gte:5000`` (also gt, lt, lte; a number, or an instant for DATETIME metrics),
    ``metric.x=between:2026-11-01,2026-11-30``, ``metric.x=is:null`` / ``is:notnull``."""
    terms = []
    for name, raw in params.items():
        if not name.startswith(METRIC_PREFIX):
            continue
        identifier = name[len(METRIC_PREFIX) :]
        if not _IDENTIFIER.match(identifier):
            errors.append(
                f"{name}: metric identifiers are letters, digits and _ (e.g. metric.user_interested=yes)."
            )
            continue
        term = _metric_term(name, identifier, raw, errors)
        if term is not None:
            terms.append(term)
    if len(terms) > 10:
        errors.append(f"{len(terms)} metric filters given; at most 10 are allowed per request.")
        return ()
    return tuple(terms)


def _metric_term(name: str, identifier: str, raw: str, errors: list[str]) -> MetricTerm | None:
    op, sep, value = raw.partition(":")
    if not sep or op not in METRIC_OPERATORS:
        op, value = "eq", raw  # a plain value (which may itself contain a colon: a time)
    if len(value) > 200:
        errors.append(f"{name}: the value is longer than 200 characters.")
        return None
    if op == "is":
        if value not in ("null", "notnull"):
            errors.append(f"{name}={raw!r}: use is:null (no value found) or is:notnull (a value found).")
            return None
        return MetricTerm(identifier, value)
    if op in ("eq", "ne"):
        return MetricTerm(identifier, op, value)
    if op == "in":
        values = _split(value)
        if not values:
            errors.append(f"{name}={raw!r}: list the values after in:, e.g. in:yes,unclear.")
            return None
        return MetricTerm(identifier, "in", values)
    if op == "between":
        low_raw, comma, high_raw = value.partition(",")
        low = _metric_number(name, low_raw, errors, end_of_day=False)
        high = _metric_number(name, high_raw, errors, end_of_day=True) if comma else None
        if not comma:
            errors.append(
                f"{name}={raw!r}: give two bounds, e.g. between:1000,5000 or between:2026-11-01,2026-11-30."
            )
        if low is None or high is None:
            return None
        return MetricTerm(identifier, "between", (low, high))
    number = _metric_number(name, value, errors, end_of_day=op in ("lte", "gt"))
    return None if number is None else MetricTerm(identifier, op, number)


def _metric_number(name: str, raw: str, errors: list[str], *, end_of_day: bool) -> float | None:
    """A bound: a number (INTEGER and BOOLEAN metrics), else an instant in epoch ms (DATETIME)."""
    raw = raw.strip()
    try:
        value = float(raw)
        if value == value and abs(value) < 1e15:  # not NaN, not huge
            return value
    except ValueError:
        pass
    try:
        if not re.match(r"^\d{4}-\d{2}-\d{2}", raw):  # ISO only: a phrase here is more likely a typo
            raise ValidationFailed(raw)
        return float(parse_instant(raw, field=name, end_of_day=end_of_day))
    except ValidationFailed:
        errors.append(
            f"{name}: {raw!r} is neither a number nor a date: compare with a number (gte:5000) or, "
            "for a DATETIME metric, a date (gte:2026-11-01)."
        )
        return None
