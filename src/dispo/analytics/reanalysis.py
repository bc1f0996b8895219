"""Re-analysis: pick calls (by id or by the call-list filters) and queue their analytics again.

Shared by ``POST /conversation/reanalyze`` and ``dispo analytics rerun``. Only calls that have
ended (:data:`dispo.calls.TERMINAL_STATUSES`) are re-analyzed, at most :data:`REANALYZE_MAX` per request.
Each call is analyzed with its agent's newest config, or with the version asked for; earlier
results are kept (the newest is the one shown).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Connection

from dispo.api import calllog
from dispo.calls import TERMINAL_STATUSES
from dispo.errors import Conflict, NotFound, ValidationFailed
from dispo.store import calls as call_store
from dispo.store.analytics_jobs import config_ids_of_version, latest_config_ids, mark_pending_many
from dispo.store.filters import CallFilter
from dispo.types import Row

__all__ = [
    "FILTER_PARAMETERS",
    "REANALYZE_MAX",
    "config_ids_for",
    "mark_for_reanalysis",
    "parse_filters",
    "select_by_filter",
    "select_by_ids",
]

# Most calls one request re-analyzes: a request answers within seconds and a mistake (a filter
# that matches the whole history) costs at most this much model time. Send several requests
# (e.g. by date range) for more.
REANALYZE_MAX = 10_000

# The call-list filters a re-analysis takes (GET /conversation's, less paging and sorting).
FILTER_PARAMETERS = tuple(
    p for p in calllog.LIST_PARAMETERS if p not in ("page", "limit", "cursor", "sortBy", "sortOrder")
)


def parse_filters(org_id: str, params: Mapping[str, str]) -> CallFilter:
    """The call list's filters, given as ``GET /conversation``'s query parameters (names among
    FILTER_PARAMETERS), checked by its parser with its messages. The CLI's options come here as
    they are; a JSON body's ``filters`` once ``dispo.api.schemas.CallFilters`` has checked its
    names and the type of each value."""
    assert set(params) <= set(FILTER_PARAMETERS), sorted(params)
    return calllog.parse_list_query(org_id, params).filter


def _ended(statuses: tuple[str, ...]) -> tuple[str, ...]:
    if not statuses:
        return TERMINAL_STATUSES
    ended = tuple(s for s in statuses if s in TERMINAL_STATUSES)
    if not ended:
        raise ValidationFailed(
            f"statusFilter {', '.join(statuses)} selects only calls that have not ended; re-analysis "
            f"takes calls that have: {', '.join(TERMINAL_STATUSES)}."
        )
    return ended


def select_by_filter(conn: Connection, f: CallFilter, *, limit: int | None = None) -> list[Row]:
    """Ended calls matching ``f``, oldest first; refuses (400) when more than ``limit`` (default
    :data:`REANALYZE_MAX`) match."""
    limit = REANALYZE_MAX if limit is None else limit
    rows = call_store.calls_matching(conn, f, statuses=_ended(f.statuses), limit=limit + 1)
    if len(rows) > limit:
        more = (
            f", or run `dispo analytics rerun` with the same filters on the server (up to {REANALYZE_MAX} "
            "at once)"
            if limit < REANALYZE_MAX
            else ""
        )
        raise ValidationFailed(
            f"These filters match more than {limit} calls that have ended; re-analyze at most {limit} "
            "per request: narrow the filters (e.g. a shorter dateFrom/dateTo range) and send several "
            f"requests{more}."
        )
    return rows


def select_by_ids(conn: Connection, org_id: str, call_ids: Sequence[str]) -> list[Row]:
    """The calls named (``CALL-…`` ids or ``_id``s), in the order given; 404 for unknown ids and 409
    for calls that have not ended."""
    rows = call_store.get_calls_by_ids(conn, org_id, call_ids)
    known = {r["call_id"] for r in rows} | {r["id"] for r in rows}
    missing = [cid for cid in dict.fromkeys(call_ids) if cid not in known]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise NotFound(
            f"No call {shown} in this organization: check the ids (GET /conversation lists calls). "
            "Nothing was queued."
        )
    running = [r for r in rows if r["status"] not in TERMINAL_STATUSES]
    if running:
        shown = ", ".join(f"{r['call_id']} ({r['status']})" for r in running[:5])
        raise Conflict(
            f"Call {shown} has not ended: only calls that have ({', '.join(TERMINAL_STATUSES)}) can be "
            "re-analyzed. Nothing was queued."
        )
    return [{k: r[k] for k in ("pk", "id", "call_id", "agent_id", "status")} for r in rows]


def config_ids_for(
    conn: Connection, rows: Sequence[Row], version: int | None
) -> dict[str | None, int | None]:
    """The config each call's agent will use: ``version`` (400 when an agent lacks it) or the newest."""
    agent_ids = sorted({r["agent_id"] for r in rows if r["agent_id"]})
    out: dict[str | None, int | None] = {None: None}
    if version is None:
        latest = latest_config_ids(conn, agent_ids)
        out.update({a: latest[a][0] if a in latest else None for a in agent_ids})
        return out
    orphans = [r["call_id"] for r in rows if not r["agent_id"]]
    if orphans:
        raise ValidationFailed(
            f"configVersion={version} needs an agent, and call {', '.join(orphans[:5])} has none: "
            "leave configVersion out to use the default analysis."
        )
    found = config_ids_of_version(conn, agent_ids, version)
    lacking = [a for a in agent_ids if a not in found]
    if lacking:
        raise ValidationFailed(
            f"Agent {', '.join(lacking[:5])} has no post-call analytics config version {version}: "
            "GET /agent/{id}/post-call-analytics/versions lists the versions; leave configVersion out "
            "to use each agent's newest."
        )
    out.update(found)
    return out


def mark_for_reanalysis(
    conn: Connection, rows: Sequence[Row], *, config_version: int | None = None, now_ms: int | None = None
) -> None:
    """Mark ``rows`` (with ``pk`` and ``agent_id``) pending with the config to use; enqueue after commit."""
    if not rows:
        return
    mark_pending_many(conn, rows, config_ids_for(conn, rows, config_version), now_ms)
