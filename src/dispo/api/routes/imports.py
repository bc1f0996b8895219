"""``POST /conversation/import``: finished calls from another voice stack into the call log."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from dispo import imports
from dispo.api.bodies import JsonBody
from dispo.api.contract import ContractRoute, json_body
from dispo.api.deps import DbDep, JobsDep, OrgDep
from dispo.api.responses import ok
from dispo.api.schemas import (
    WITH_BODY,
    Envelope,
    ImportBatch,
    ImportCall,
    ImportPublic,
    errors,
    import_problems,
    parse,
)
from dispo.errors import ValidationFailed

router = APIRouter(tags=["call logs"], route_class=ContractRoute)

_EXAMPLE_CALL = {
    "externalId": "vapi-call-7f3a",
    "type": "telephony_inbound",
    "from": "+14155550123",
    "to": "+14155550199",
    "startedAt": "2026-11-30T09:00:00Z",
    "endedAt": "2026-11-30T09:02:10Z",
    "disconnectionReason": "user_hangup",
    "callCost": 0.42,
    "transcript": [
        {
            "role": "agent",
            "content": "Hi, this is Maya from Brightline Solar.",
            "timestamp": "2026-11-30T09:00:01Z",
        },
        {"role": "user", "content": "Hi, I asked for a quote.", "timestamp": "2026-11-30T09:00:05Z"},
    ],
}


@router.post(
    "/conversation/import",
    summary="Import one finished call from another voice stack",
    description=(
        "One call (ImportCall). Answers 200 with the call's result: imported (with its new callId) or "
        "duplicate (a call with this externalId exists already in this organization and is left as "
        "it is); 400 with every problem when the call is invalid. Imported calls are analysed like "
        "Dispo's own (postCallAnalytics follows the job). Recordings are not uploaded yet: "
        "recordingUrl keeps a link. POST /conversation/import/batch takes up to 1000 calls."
    ),
    response_model=Envelope[ImportPublic],
    responses=errors(*WITH_BODY),
    openapi_extra=json_body(ImportCall, _EXAMPLE_CALL),
)
def import_conversation(db: DbDep, org_id: OrgDep, analytics_jobs: JobsDep, body: JsonBody) -> Response:
    _, problems = import_problems(body, "")
    if problems:
        raise ValidationFailed(problems[0], errors=problems)
    outcome = imports.import_calls(db, org_id, [body], where="")
    if outcome.results[0].status == "invalid":  # checked against the database: an unknown agentId
        errs = outcome.results[0].errors
        raise ValidationFailed(errs[0], errors=errs)
    # After the commit: the rows are the durable record, the queue only carries them to workers.
    analytics_jobs.enqueue_many(outcome.pks)
    return ok(outcome.summary())


@router.post(
    "/conversation/import/batch",
    summary="Import up to 1000 finished calls from another voice stack",
    description=(
        '{"calls": [up to 1000 ImportCall]}. Not all-or-nothing: each call is validated and imported '
        "on its own, and the answer lists per call imported (with its callId), duplicate (its "
        "externalId exists already, or came earlier in this batch) or invalid (with every problem, "
        "each naming its place, e.g. calls[3].transcript[0].role). The valid calls are stored in one "
        "transaction."
    ),
    response_model=Envelope[ImportPublic],
    responses=errors(*WITH_BODY),
    openapi_extra=json_body(ImportBatch, {"calls": [_EXAMPLE_CALL]}),
)
def import_conversations(db: DbDep, org_id: OrgDep, analytics_jobs: JobsDep, body: JsonBody) -> Response:
    items = list(parse(ImportBatch, body).calls)
    outcome = imports.import_calls(db, org_id, items)
    analytics_jobs.enqueue_many(outcome.pks)
    return ok(outcome.summary())
