"""Call logs and post-call analytics configuration: the ``Call`` class.

The methods, argument names, order and defaults match ``smallestai.atoms.call.Call`` (4.3.1), so
the examples on the Atoms "Call Logs" page run unchanged::

    from dispo.sdk import Call

    call = Call()
    calls = call.get_calls(limit=5)
    for log in calls["data"]["logs"]:
        print(f"{log['callId']}: {log['status']} ({log['duration']}s)")

What it adds: date ranges, duration and disconnection-reason filters, sorting and cursors on
``get_calls``; ``iter_calls``, which walks every page; and typed exceptions instead of
``requests.HTTPError``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any, Literal

from dispo.sdk._client import BaseClient, ResponseDict, segment

SortBy = Literal["createdAt", "updatedAt", "callDuration", "avgLatency"]
SortOrder = Literal["asc", "desc"]
Instant = str | date | datetime
"""``"2026-01-19"``, ``"2026-01-19T07:28:43Z"``, ``"7 days ago"``, or a ``date``/``datetime``.

Naive datetimes are read as UTC; a bare date used as ``date_to`` includes that whole day.
"""
OneOrMany = str | Sequence[str]


class Call(BaseClient):
    """Call logs (``/conversation``) and an agent's post-call analytics config.

    ``Call(base_url=None, api_key=None)`` as in the official SDK; see ``BaseClient`` for the
    environment variables read and the keyword-only ``timeout``/``transport``/``http_client``.
    """

    def get_call(self, call_id: str) -> ResponseDict:
        """One call with transcript, recordings, cost, disconnection reason and analytics.

        ``details = call.get_call("CALL-1768807723178-4561d0"); details["data"]["status"]``
        """
        return self._request("GET", f"/conversation/{segment(call_id)}")

    def get_calls(
        self,
        agent_id: OneOrMany | None = None,
        campaign_id: OneOrMany | None = None,
        page: int = 1,
        limit: int = 10,
        status: OneOrMany | None = None,
        call_type: OneOrMany | None = None,
        search: str | None = None,
        *,
        disconnect_reason: OneOrMany | None = None,
        date_from: Instant | None = None,
        date_to: Instant | None = None,
        duration_filter: OneOrMany | None = None,
        min_duration: float | None = None,
        max_duration: float | None = None,
        sort_by: SortBy | None = None,
        sort_order: SortOrder | None = None,
        cursor: str | None = None,
    ) -> ResponseDict:
        """One page of calls, newest first: ``data = {logs: [...], pagination: {...}}``.

        The first seven arguments are the official SDK's. The keyword-only rest are Dispo's:

        - ``disconnect_reason``: ``user_hangup``, ``agent_hangup``, ``dial_no_answer``, ``timeout``, ...
        - ``date_from`` / ``date_to``: on ``createdAt``, both inclusive (see ``Instant``).
        - ``duration_filter``: Atoms buckets ``0-30``, ``30-60`` (seconds), ``1-5``, ``5+`` (minutes);
          ``min_duration`` / ``max_duration``: any bounds, in seconds.
        - ``sort_by``: ``createdAt`` (default), ``updatedAt``, ``callDuration``, ``avgLatency``;
          ``sort_order``: ``desc`` (default) or ``asc``.
        - ``cursor``: ``pagination.nextCursor`` of the previous page; replaces ``page``.

        Ids, statuses, call types, reasons and buckets may be lists (any of them matches)::

            call.get_calls(status=["failed", "no_answer"], date_from="2026-01-01", limit=50)
        """
        params: dict[str, str | int | float] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor  # a cursor says where the page starts: page would conflict
        else:
            params["page"] = page
        _put(params, "agentIds", agent_id)
        _put(params, "campaignIds", campaign_id)
        _put(params, "statusFilter", status)
        _put(params, "callTypes", call_type)
        _put(params, "disconnectReasonFilter", disconnect_reason)
        _put(params, "search", search)
        _put(params, "dateFrom", date_from)
        _put(params, "dateTo", date_to)
        _put(params, "durationFilter", duration_filter)
        _put(params, "minDuration", min_duration)
        _put(params, "maxDuration", max_duration)
        _put(params, "sortBy", sort_by)
        _put(params, "sortOrder", sort_order)
        return self._request("GET", "/conversation", params=params)

    def iter_calls(
        self,
        agent_id: OneOrMany | None = None,
        campaign_id: OneOrMany | None = None,
        status: OneOrMany | None = None,
        call_type: OneOrMany | None = None,
        search: str | None = None,
        *,
        disconnect_reason: OneOrMany | None = None,
        date_from: Instant | None = None,
        date_to: Instant | None = None,
        duration_filter: OneOrMany | None = None,
        min_duration: float | None = None,
        max_duration: float | None = None,
        sort_by: SortBy | None = None,
        sort_order: SortOrder | None = None,
        page_size: int = 100,
    ) -> Iterator[dict[str, Any]]:
        """Every call matching the filters, one at a time, fetching ``page_size`` per request.

        Follows ``pagination.nextCursor``, so calls arriving meanwhile neither repeat nor shift
        the pages; against a server without cursors it falls back to page numbers::

            durations = [log["duration"] for log in call.iter_calls(status="completed")]
        """
        filters: dict[str, Any] = {
            "agent_id": agent_id,
            "campaign_id": campaign_id,
            "status": status,
            "call_type": call_type,
            "search": search,
            "disconnect_reason": disconnect_reason,
            "date_from": date_from,
            "date_to": date_to,
            "duration_filter": duration_filter,
            "min_duration": min_duration,
            "max_duration": max_duration,
            "sort_by": sort_by,
            "sort_order": sort_order,
        }
        page, cursor = 1, None
        while True:
            data = self.get_calls(page=page, limit=page_size, cursor=cursor, **filters)["data"]
            yield from data["logs"]
            pagination = data.get("pagination") or {}
            if not pagination.get("hasMore") or not data["logs"]:
                return
            cursor = pagination.get("nextCursor")
            if cursor is None:
                page += 1

    def search_calls(self, call_ids: list[str]) -> ResponseDict:
        """Up to 100 calls by id: ``data = {logs, total, requestedCount}``; unknown ids are left out.

        ``result = call.search_calls(["CALL-1768807723178-4561d0"]); result["data"]["total"]``
        """
        return self._request("POST", "/conversation/search", json={"callIds": list(call_ids)})

    def get_post_call_config(self, agent_id: str) -> ResponseDict:
        """An agent's analytics config: ``data = {summaryPrompt, dispositionMetrics: [...]}``.

        Each metric carries ``dispositionMetricType`` (``STRING``, ``BOOLEAN``, ``INTEGER``,
        ``ENUM``, ``DATETIME``) and, for ``ENUM``, ``choices``.
        """
        return self._request("GET", f"/agent/{segment(agent_id)}/post-call-analytics")

    def set_post_call_config(
        self,
        agent_id: str,
        summary_prompt: str | None = None,
        disposition_metrics: list[dict[str, Any]] | None = None,
    ) -> ResponseDict:
        """Set the summary prompt and/or disposition metrics; what is not given stays as it was.

        ::

            call.set_post_call_config(
                agent_id=agent_id,
                summary_prompt="Summarize this sales call briefly.",
                disposition_metrics=[
                    {
                        "identifier": "user_interested",
                        "dispositionMetricPrompt": "Was the user interested? yes, no, or unclear",
                        "dispositionValues": {"type": "ENUM"},
                        "choices": ["yes", "no", "unclear"],
                    }
                ],
            )
        """
        payload: dict[str, Any] = {}
        if summary_prompt is not None:
            payload["summaryPrompt"] = summary_prompt
        if disposition_metrics is not None:
            payload["dispositionMetrics"] = disposition_metrics
        return self._request("POST", f"/agent/{segment(agent_id)}/post-call-analytics", json=payload)


def _put(params: dict[str, str | int | float], name: str, value: object) -> None:
    """Add a query parameter in its wire form; ``None`` and empty values are left out."""
    if value is None or value == "":
        return
    if isinstance(value, datetime | date):
        params[name] = value.isoformat()
    elif isinstance(value, str | int | float):
        params[name] = value
    elif isinstance(value, Sequence):
        joined = ",".join(str(v) for v in value)
        if joined:
            params[name] = joined
    else:
        raise TypeError(f"{name}: cannot send {type(value).__name__} {value!r} as a query parameter.")
