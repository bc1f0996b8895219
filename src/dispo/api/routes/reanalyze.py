"""``POST /conversation/reanalyze``: queue the post-call analytics of ended calls again."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body
from starlette.responses import Response

from dispo.analytics import jobs, reanalysis
from dispo.api.bodies import json_object
from dispo.api.deps import DbDep, OrgDep, SettingsDep
from dispo.api.responses import ok
from dispo.errors import ValidationFailed

router = APIRouter(tags=["post-call analytics"])

_SHOWN_IDS = 100


@router.post(
    "/conversation/reanalyze",
    status_code=202,
    summary="Run post-call analytics again for calls given by id or by the call-list filters",
    description=(
        'Body: {"callIds": ["CALL-…", …]} or {"filters": {agentIds, campaignIds, dateFrom, dateTo, '
        "statusFilter, callTypes, disconnectReasonFilter, search, durationFilter, minDuration, "
        'maxDuration}}, and optionally "configVersion" (default: each agent\'s newest config). Only '
        "calls that have ended, at most DISPO_REANALYZE_MAX (default 1000) per request. Answers 202 with "
        "the number of calls queued; each call's postCallAnalytics.status follows the job. Earlier "
        "results are kept; the newest is shown."
    ),
)
def reanalyze_conversations(
    db: DbDep,
    org_id: OrgDep,
    settings: SettingsDep,
    body: Any = Body(
        ...,
        examples=[
            {"callIds": ["CALL-1768807723178-4561d0"]},
            {
                "filters": {"agentIds": ["6b018a82b38fd67804d54c9f"], "dateFrom": "7 days ago"},
                "configVersion": 2,
            },
        ],
    ),
) -> Response:
    body = json_object(body)
    unknown = sorted(set(body) - {"callIds", "filters", "configVersion"})
    if unknown:
        raise ValidationFailed(
            f"Unknown field {', '.join(unknown)}: this endpoint takes callIds or filters, and configVersion."
        )
    call_ids = body.get("callIds")
    filters = body.get("filters")
    version = body.get("configVersion")
    if (call_ids is None) == (filters is None):
        raise ValidationFailed(
            'Give either callIds (a list of call ids) or filters (the call list\'s filters, e.g. {"filters": '
            '{"agentIds": ["…"], "dateFrom": "7 days ago"}}), not both and not neither.'
        )
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise ValidationFailed(
            "configVersion must be a version number (1, 2, …) of the agents' post-call analytics config, "
            "or left out for each agent's newest."
        )
    most = min(reanalysis.REANALYZE_MAX, settings.reanalyze_max)
    if call_ids is not None:
        if not isinstance(call_ids, list) or not all(isinstance(c, str) for c in call_ids):
            raise ValidationFailed('callIds must be a list of call id strings, e.g. {"callIds": ["CALL-…"]}.')
        if not call_ids:
            raise ValidationFailed(f"callIds is empty: give 1 to {most} call ids.")
        if len(call_ids) > most:
            raise ValidationFailed(
                f"callIds lists {len(call_ids)} ids; at most {most} are allowed per request: send them in batches."
            )
    elif not isinstance(filters, dict):
        raise ValidationFailed('filters must be an object, e.g. {"filters": {"dateFrom": "7 days ago"}}.')
    call_filter = reanalysis.parse_filters(org_id, filters) if filters is not None else None
    with db.write() as conn:
        if call_filter is not None:
            rows = reanalysis.select_by_filter(conn, call_filter, limit=most)
        else:
            rows = reanalysis.select_by_ids(conn, org_id, call_ids)
        reanalysis.mark_for_reanalysis(conn, rows, config_version=version)
    # After the commit: the rows are the durable record, the queue only carries them to workers.
    jobs.enqueue_many(settings, [r["pk"] for r in rows], priority=jobs.PRIORITY_RERUN)
    return ok(
        {
            "queued": len(rows),
            "callIds": [r["call_id"] for r in rows[:_SHOWN_IDS]],
            "configVersion": version,
        },
        status_code=202,
    )
