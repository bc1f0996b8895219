"""``POST /conversation/reanalyze``: queue the post-call analytics of ended calls again."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from dispo.analytics import jobs, reanalysis
from dispo.api.bodies import JsonBody
from dispo.api.contract import ContractRoute, json_body
from dispo.api.deps import DbDep, JobsDep, OrgDep, SettingsDep
from dispo.api.responses import ok
from dispo.api.schemas import WITH_BODY, Envelope, ReanalyzePublic, ReanalyzeRequest, errors, parse
from dispo.errors import ValidationFailed

router = APIRouter(tags=["post-call analytics"], route_class=ContractRoute)

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
    response_model=Envelope[ReanalyzePublic],
    responses=errors(*WITH_BODY, 404),
    openapi_extra=json_body(
        ReanalyzeRequest,
        {"callIds": ["CALL-1768807723178-4561d0"]},
        {"filters": {"agentIds": ["6b018a82b38fd67804d54c9f"], "dateFrom": "7 days ago"}, "configVersion": 2},
    ),
)
def reanalyze_conversations(
    db: DbDep, org_id: OrgDep, settings: SettingsDep, analytics_jobs: JobsDep, body: JsonBody
) -> Response:
    request = parse(ReanalyzeRequest, body)
    call_ids, filters, version = request.call_ids, request.filters, request.config_version
    if (call_ids is None) == (filters is None):
        raise ValidationFailed(
            'Give either callIds (a list of call ids) or filters (the call list\'s filters, e.g. {"filters": '
            '{"agentIds": ["…"], "dateFrom": "7 days ago"}}), not both and not neither.'
        )
    most = min(reanalysis.REANALYZE_MAX, settings.reanalyze_max)
    if call_ids is not None and len(call_ids) > most:
        raise ValidationFailed(
            f"callIds lists {len(call_ids)} ids; at most {most} are allowed per request (DISPO_REANALYZE_MAX): "
            "send them in batches, or run `dispo analytics rerun` on the server."
        )
    call_filter = reanalysis.parse_filters(org_id, filters.query()) if filters is not None else None
    with db.write() as conn:
        if call_filter is not None:
            rows = reanalysis.select_by_filter(conn, call_filter, limit=most)
        else:
            assert call_ids is not None
            rows = reanalysis.select_by_ids(conn, org_id, call_ids)
        reanalysis.mark_for_reanalysis(conn, rows, config_version=version)
    # After the commit: the rows are the durable record, the queue only carries them to workers.
    analytics_jobs.enqueue_many([r["pk"] for r in rows], priority=jobs.PRIORITY_RERUN)
    return ok(
        {
            "queued": len(rows),
            "callIds": [r["call_id"] for r in rows[:_SHOWN_IDS]],
            "configVersion": version,
        },
        status_code=202,
    )
