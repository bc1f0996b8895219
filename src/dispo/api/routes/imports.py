"""``POST /conversation/import`` (and ``/batch``): finished calls from another voice stack into the
call log; ``/conversation/{callId}/recording``: their recordings, uploaded and downloaded."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from starlette.responses import FileResponse, Response

from dispo import imports, recordings
from dispo.api.bodies import JsonBody
from dispo.api.contract import ContractRoute, json_body
from dispo.api.deps import DbDep, JobsDep, OrgDep, SettingsDep
from dispo.api.responses import ok
from dispo.api.schemas import (
    AUTHED,
    WITH_BODY,
    Envelope,
    ImportBatch,
    ImportCall,
    ImportPublic,
    RecordingPublic,
    errors,
    import_problems,
    parse,
)
from dispo.errors import NotFound, ValidationFailed
from dispo.store import calls as call_store
from dispo.store.database import Database
from dispo.timeutil import now_ms
from dispo.types import Row

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


def _channels(value: str | None) -> str:
    if value not in recordings.CHANNELS:
        raise ValidationFailed(
            f"channels is {value!r}: give mono (one channel) or stereo (caller and agent on their own channels)."
        )
    return value


def _call_of(db: Database, org_id: str, call_id: str) -> Row:
    with db.read() as conn:
        row = call_store.get_call(conn, org_id, call_id)
    if row is None:
        raise NotFound(
            f"No call {call_id} in this organization: check the id, or list calls with GET /conversation."
        )
    return row


@router.post(
    "/conversation/{call_id}/recording",
    summary="Upload a call's recording (multipart/form-data)",
    description=(
        "A file part named file (WAV, MP3, Ogg or FLAC, up to DISPO_MAX_UPLOAD_BYTES) and channels "
        "(mono, or stereo with caller and agent on their own channels). The call's recordingUrl "
        "(mono) or recordingDualUrl (stereo) then points at GET /conversation/{callId}/recording. "
        "Nothing transcribes it yet."
    ),
    response_model=Envelope[RecordingPublic],
    responses=errors(*WITH_BODY, 404),
)
def upload_recording(
    call_id: str,
    request: Request,
    db: DbDep,
    org_id: OrgDep,
    settings: SettingsDep,
    file: UploadFile | None = File(None, description="The recording: WAV, MP3, Ogg or FLAC."),
    channels: str | None = Form(None, description="mono or stereo."),
) -> Response:
    row = _call_of(db, org_id, call_id)
    if not request.headers.get("content-type", "").startswith("multipart/form-data") or file is None:
        raise ValidationFailed(
            "Send multipart/form-data with the recording as a part named file and channels=mono or stereo."
        )
    chosen = _channels(channels)
    data = file.file.read()
    audio = recordings.recognise(data, chosen)
    recordings.save(settings.data_dir, org_id, row["call_id"], chosen, data, audio)
    url = f"/api/v1/conversation/{row['call_id']}/recording?channels={chosen}"
    column = "recording_url" if chosen == "mono" else "recording_dual_url"
    with db.write() as conn:
        call_store.update_call(conn, row["pk"], {column: url, "updated_at": now_ms()})
    return ok({"callId": row["call_id"], "channels": chosen, "url": url, "bytes": len(data)})


@router.get(
    "/conversation/{call_id}/recording",
    summary="Download a call's uploaded recording",
    response_class=Response,
    responses={
        200: {
            "description": "The audio, as uploaded.",
            "content": {t: {} for t in recordings.FORMATS.values()},
        },
        **errors(*AUTHED, 404),
    },
)
def download_recording(
    call_id: str,
    db: DbDep,
    org_id: OrgDep,
    settings: SettingsDep,
    channels: Literal["mono", "stereo"] = Query("mono", description="mono or stereo."),
) -> Response:
    row = _call_of(db, org_id, call_id)
    found = recordings.stored(settings.data_dir, org_id, row["call_id"], _channels(channels))
    if found is None:
        raise NotFound(
            f"Call {row['call_id']} has no {channels} recording: upload one with POST /conversation/{{callId}}/recording."
        )
    path, media_type = found
    return FileResponse(path, media_type=media_type, filename=path.name)
