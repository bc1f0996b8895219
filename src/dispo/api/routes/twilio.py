"""Inbound phone calls from Twilio (or any carrier speaking its Media Streams protocol).

Point a Twilio number's voice webhook at ``POST {public URL}/telephony/twilio/voice``: Dispo
answers with TwiML that connects the call to a media stream,
``<Connect><Stream url="wss://…/telephony/twilio/media">``, naming the number called and the
caller as stream parameters. The WebSocket then carries Twilio's ``connected``, ``start``,
``media`` (base64 μ-law 8 kHz, 20 ms frames), ``mark`` and ``stop`` events in, and ``media``,
``mark`` and ``clear`` out; :mod:`dispo.runtime.voicecall` holds the conversation. The call is
logged as ``telephony_inbound`` on the agent of the number called (a Dispo phone number of any
organization, with an agent assigned).

These paths sit outside ``/api/v1``: the carrier sends no API key.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

import anyio
from fastapi import APIRouter, Form, Request, WebSocket, WebSocketDisconnect
from starlette.responses import Response
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, VoiceResponse

from dispo.api.contract import ContractRoute
from dispo.api.schemas import errors
from dispo.calls import CallType, DisconnectReason
from dispo.config import Settings
from dispo.errors import DispoError, Forbidden, ValidationFailed
from dispo.runtime.dialogue import AgentProfile
from dispo.runtime.runner import CallRunner, new_call_values
from dispo.runtime.voicecall import CallContext, VoiceCall
from dispo.store import agents as agent_store
from dispo.store import calls as call_store
from dispo.store import phone_numbers as phone_store
from dispo.types import Row
from dispo.voice.voices import Voices

router = APIRouter(tags=["telephony"], route_class=ContractRoute)
log = logging.getLogger("dispo.calls")

MEDIA_PATH = "/telephony/twilio/media"
_NUMBER = re.compile(r"^\+?[0-9]{3,18}$")


def twiml_stream(stream_url: str, parameters: dict[str, str]) -> str:
    """TwiML that connects the call to a bidirectional media stream (the ``twilio`` package's builder)."""
    response, connect = VoiceResponse(), Connect()
    stream = connect.stream(url=stream_url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)


def twiml_refusal(text: str) -> str:
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return str(response)


def check_signature(settings: Settings, url: str, params: dict[str, str], signature: str | None) -> None:
    """With ``DISPO_TWILIO_AUTH_TOKEN`` set, refuse a request Twilio did not sign (X-Twilio-Signature:
    an HMAC of the URL and the form's fields under the account's auth token)."""
    if not settings.twilio_auth_token:
        return
    if not signature or not RequestValidator(settings.twilio_auth_token).validate(url, params, signature):
        raise Forbidden(
            "This request does not carry a valid X-Twilio-Signature: point the number's webhook at "
            "DISPO_PUBLIC_URL (the URL Twilio signs) and check DISPO_TWILIO_AUTH_TOKEN."
        )


def _public(settings: Settings, url: str) -> str:
    """``url`` as the carrier sees it: on DISPO_PUBLIC_URL when that is set."""
    if not settings.public_url:
        return url
    parts = urlsplit(url)
    return settings.public_url.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")


@router.post(
    "/telephony/twilio/voice",
    summary="Twilio voice webhook: answers an inbound call with a media stream to its agent",
    description="Form body as Twilio posts it (To, From, CallSid…; other fields are ignored). Answers "
    "TwiML: <Connect><Stream> to this server's media WebSocket, or <Say>+<Hangup> when the number has "
    "no agent.",
    responses={200: {"description": "TwiML", "content": {"application/xml": {}}}, **errors(400, 403, 429)},
)
async def twilio_voice(
    request: Request,
    to: Annotated[str, Form(alias="To", max_length=32, description="The number called (E.164).")],
    caller: Annotated[
        str | None, Form(alias="From", max_length=32, description="The caller's number.")
    ] = None,
) -> Response:
    settings: Settings = request.app.state.settings
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    check_signature(
        settings, _public(settings, str(request.url)), fields, request.headers.get("x-twilio-signature")
    )
    to = to.strip()
    if not _NUMBER.match(to):
        raise ValidationFailed("To must be the number called in E.164, as Twilio posts it (To=+14155550100).")
    base = (settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")).replace("http", "ws", 1)

    def lookup() -> Row | None:
        with request.app.state.db.read() as conn:
            return phone_store.find_number(conn, to)

    number = await anyio.to_thread.run_sync(lookup)
    if number is None or number["agent_id"] is None:
        body = twiml_refusal("This number is not connected to an agent. Goodbye.")
    else:
        body = twiml_stream(base + MEDIA_PATH, {"to": to, "from": caller or ""})
    return Response(body, media_type="application/xml")


@router.websocket(MEDIA_PATH)
async def twilio_media(websocket: WebSocket) -> None:
    await websocket.accept()
    settings: Settings = websocket.app.state.settings
    try:
        url = _public(settings, str(websocket.url).replace("http", "ws", 1))
        check_signature(settings, url, {}, websocket.headers.get("x-twilio-signature"))
    except DispoError as exc:
        await websocket.close(code=4403, reason=exc.message[:120])
        return
    await serve_stream(websocket, lambda message: _start(websocket, message))


Opener = Callable[[dict[str, Any]], Awaitable[VoiceCall | None]]


async def serve_stream(websocket: WebSocket, opener: Opener) -> None:
    """Run one call over an accepted WebSocket speaking the Media Streams protocol; ``opener``
    makes the call from the ``start`` event (None: nobody to answer, close)."""
    call: VoiceCall | None = None
    try:
        while call is None or not call.ended:
            message = json.loads(await websocket.receive_text())
            event = message.get("event")
            if event == "start" and call is None:
                call = await opener(message)
                if call is None:
                    break
                await call.open()
            elif event == "media" and call is not None:
                media = message.get("media") or {}
                if media.get("track", "inbound") == "inbound":
                    stamp = media.get("timestamp")
                    await call.media(str(media.get("payload", "")), int(stamp) if stamp is not None else None)
            elif event == "mark" and call is not None:
                await call.mark(str((message.get("mark") or {}).get("name", "")))
            elif event == "stop":
                break
    except (WebSocketDisconnect, ValueError, TypeError, RuntimeError):
        pass  # the far end hung up, Dispo closed the stream, or the far end broke the protocol
    if call is not None and not call.ended:
        await call.finish(DisconnectReason.USER_HANGUP)
    with contextlib.suppress(RuntimeError):  # already closed by the far end
        await websocket.close()


async def _start(websocket: WebSocket, message: dict[str, Any]) -> VoiceCall | None:
    """The call for a stream's ``start`` event: on the agent of the number called (None: none)."""
    app = websocket.app
    start = message.get("start") or {}
    params = start.get("customParameters") or {}
    to, caller = str(params.get("to", "")), str(params.get("from", "")) or None

    def open_call() -> CallContext | None:
        with app.state.db.read() as conn:
            number = phone_store.find_number(conn, to)
            if number is None or number["agent_id"] is None:
                return None
            agent = agent_store.agent_by_id(conn, number["agent_id"])
        return voice_context(app, agent, CallType.TELEPHONY_INBOUND, to, caller)

    ctx = await anyio.to_thread.run_sync(open_call)
    if ctx is None:
        log.warning("A media stream for %s, which has no agent: closing it", to or "an unknown number")
        return None
    sid = str(message.get("streamSid") or start.get("streamSid") or "")
    return VoiceCall(ctx, sid, websocket.send_json, websocket.close)


def voice_context(
    app: Any, agent: Row, call_type: CallType, to_number: str | None, from_number: str | None
) -> CallContext:
    """A new call of ``agent`` (its row inserted, in progress) and what its conversation needs."""
    runner: CallRunner = app.state.runner
    values = new_call_values(
        org_id=agent["org_id"],
        agent_id=agent["id"],
        to_number=to_number,
        from_number=from_number,
        call_type=call_type,
    )
    values["started_at"] = values["created_at"]
    with app.state.db.write() as conn:
        pk = call_store.insert_call(conn, values)
    profile = AgentProfile.from_row(agent, {})
    return CallContext(
        app.state.db,
        app.state.settings,
        runner.jobs,
        runner.recordings,
        Voices.from_settings(app.state.settings),
        runner.brain_factory(profile),
        profile,
        pk,
        values["call_id"],
    )
