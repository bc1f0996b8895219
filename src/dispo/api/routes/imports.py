"""``POST /conversation/import``: finished calls from another voice stack into the call log."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from dispo import imports
from dispo.api.bodies import JsonBody
from dispo.api.contract import ContractRoute, json_body
from dispo.api.deps import DbDep, JobsDep, OrgDep
from dispo.api.responses import ok
from dispo.errors import ValidationFailed
from dispo.api.schemas import WITH_BODY, Envelope, ImportBatch, ImportCall, ImportPublic, errors, import_problems, parse

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
        {"role": "agent", "content": "Hi, this is Maya from Brightline Solar.", "timestamp": "2026-11-30T09:00:01Z"},
        {"role": "user", "content": "Hi, I asked for a quote.", "timestamp": "2026-11-30T09:00:05Z"},
    ],
}
_BODY = json_body(ImportBatch, {"calls": [_EXAMPLE_CALL]})
json_body(ImportCall)  # declared too: the body may be one call
_BODY["requestBody"]["content"]["application/json"]["schema"] = {
    "oneOf": [{"$ref": "#/components/schemas/ImportCall"}, {"$ref": "#/components/schemas/ImportBatch"}]
}
_BODY["requestBody"]["content"]["application/json"]["examples"]["example2"] = {"value": _EXAMPLE_CALL}


@router.post(
    "/conversation/import",
    summary="Import finished calls from another voice stack",
    description=(
        "The body is one call (ImportCall) or {\"calls\": [up to 1000 calls]}. Each call is validated "
        "and imported on its own: the answer lists, per call, imported (with its new callId), "
        "duplicate (a call with this externalId exists already in this organization: it is left as "
        "it is) or invalid (with every problem). One call sent alone and invalid answers 400 with "
        "every problem. Imported calls are analysed like Dispo's own (postCallAnalytics follows the "
        "job); recordings are not uploaded yet (recordingUrl keeps a link)."
    ),
    response_model=Envelope[ImportPublic],
    responses=errors(*WITH_BODY),
    openapi_extra=_BODY,
)
def import_conversations(db: DbDep, org_id: OrgDep, analytics_jobs: JobsDep, body: JsonBody) -> Response:
    if isinstance(body, dict) and "calls" in body:
        items = list(parse(ImportBatch, body).calls)
        outcome = imports.import_calls(db, org_id, items)
    else:
        _, problems = import_problems(body, "")  # one call: its problems are the request's (400)
        if problems:
            raise ValidationFailed(problems[0], errors=problems)
        outcome = imports.import_calls(db, org_id, [body], where="")
        if outcome.results[0].status == "invalid":
            errs = outcome.results[0].errors
            raise ValidationFailed(errs[0], errors=errs)
    # After the commit: the rows are the durable record, the queue only carries them to workers.
    analytics_jobs.enqueue_many(outcome.pks)
    return ok(outcome.summary())
