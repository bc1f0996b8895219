"""Call recordings at signed, expiring links: ``GET /recordings/{key}?expires=…&signature=…``.

No API key: the link is the credential (an audio player cannot send one), made by
:mod:`dispo.voice.links` when a call log is read, and refused (403) once it has expired or when
any part of it was changed. The file is served with range requests (``Accept-Ranges: bytes``; a
``Range`` header gets 206 and those bytes), so a player can seek.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import FileResponse, Response

from dispo.api.contract import ContractRoute
from dispo.api.schemas import errors
from dispo.config import Settings
from dispo.errors import NotFound
from dispo.voice.links import RecordingLinks
from dispo.voice.storage import RecordingStore, is_key

router = APIRouter(tags=["recordings"], route_class=ContractRoute)


def signed_base(request: Request) -> str:
    """The base of recording links for this request: the public URL (or the request's own) and
    the API prefix the request came in under."""
    settings: Settings = request.app.state.settings
    prefix = "/atoms/v1" if request.url.path.startswith("/atoms/v1") else "/api/v1"
    return (settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")) + prefix


def with_links(request: Request, logs: list[dict[str, Any]]) -> None:
    """Replace the recordings' keys in ``logs`` (rendered calls) with fresh signed links. Other
    values are left as they are: an imported call's link to its own stack's recording, or the
    API path of a recording uploaded to Dispo (``POST /conversation/{callId}/recording``)."""
    links: RecordingLinks = request.app.state.recording_links
    base = signed_base(request)
    for log in logs:
        for field in ("recordingUrl", "recordingDualUrl"):
            if log.get(field) and is_key(log[field]):
                log[field] = links.url(base, log[field])


@router.get(
    "/recordings/{key}",
    summary="A call's recording (WAV), at the signed link its call log gives",
    description="`recordingUrl` is the mono mix, `recordingDualUrl` the stereo file (agent left, caller "
    "right). The link expires (DISPO_RECORDING_LINK_SECONDS); take a fresh one from GET /conversation/"
    "{callId}. Range requests are answered with 206.",
    responses={
        200: {"description": "The WAV file", "content": {"audio/wav": {}}},
        **errors(400, 403, 404, 429),
    },
)
def get_recording(
    request: Request,
    key: str,
    expires: Annotated[str | None, Query(description="Expiry, epoch seconds (part of the link)")] = None,
    signature: Annotated[str | None, Query(description="The link's HMAC signature")] = None,
) -> Response:
    links: RecordingLinks = request.app.state.recording_links
    links.check(key, expires, signature)
    store: RecordingStore = request.app.state.runner.recordings
    path = store.path(key)
    if path is None:
        raise NotFound(
            f"Recording {key} is no longer kept (its call was deleted): list the call's recordings with "
            "GET /conversation/{callId}."
        )
    return FileResponse(path, media_type="audio/wav", headers={"Cache-Control": "private, max-age=60"})
