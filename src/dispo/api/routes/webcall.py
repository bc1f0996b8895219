"""Web calls: a person talks to an agent from the browser (``GET /webcall``, microphone and
speakers), logged as ``webcall``.

The page speaks the same Media Streams protocol as a phone line, over
``/webcall/ws?agentId=…&apiKey=…``: it sends ``start``, then the microphone as 20 ms ``media``
frames of base64 μ-law at 8 kHz, echoes each ``mark`` once it has played the audio before it,
and stops playback on ``clear``; so a web call is the same conversation as a phone call
(:mod:`dispo.runtime.voicecall`: turn detection, STT, agent, TTS, barge-in, recordings), with the
browser for a carrier. The key is the organization's API key (the page keeps it in the URL's
fragment, which browsers do not send to the server).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import anyio
from fastapi import APIRouter, WebSocket
from starlette.responses import HTMLResponse, Response

from dispo.api.auth import authenticate
from dispo.api.contract import ContractRoute
from dispo.api.routes.live_calls import _agent
from dispo.api.routes.twilio import serve_stream, voice_context
from dispo.api.schemas import errors
from dispo.calls import CallType
from dispo.errors import DispoError
from dispo.runtime.voicecall import VoiceCall

router = APIRouter(tags=["web calls"], route_class=ContractRoute)


@router.get(
    "/webcall",
    summary="The web call page: talk to an agent with the microphone",
    description="Open /webcall#agentId=<agent id>&apiKey=<API key>, or fill both in on the page.",
    responses={200: {"description": "HTML", "content": {"text/html": {}}}, **errors(400, 429)},
)
def webcall_page() -> Response:
    page = resources.files("dispo.api").joinpath("static/webcall.html").read_text(encoding="utf-8")
    return HTMLResponse(page)


@router.websocket("/webcall/ws")
async def webcall_socket(websocket: WebSocket) -> None:
    app = websocket.app
    await websocket.accept()
    try:
        key = websocket.query_params.get("apiKey")
        org_id = await authenticate(f"Bearer {key}" if key else None, app.state.db, app.state.key_cache)
        agent_id = websocket.query_params.get("agentId")

        def agent() -> Any:
            with app.state.db.read() as conn:
                return _agent(conn, org_id, agent_id)

        row = await anyio.to_thread.run_sync(agent)
    except DispoError as exc:
        await websocket.send_json({"event": "error", "errors": exc.errors})
        await websocket.close(code=4000 + min(exc.status_code, 999) % 1000)
        return

    async def opener(message: dict[str, Any]) -> VoiceCall:
        ctx = await anyio.to_thread.run_sync(voice_context, app, row, CallType.WEBCALL, None, None)
        await websocket.send_json({"event": "started", "conversationId": ctx.call_id})
        return VoiceCall(ctx, str(message.get("streamSid") or "web"), websocket.send_json, websocket.close)

    await serve_stream(websocket, opener)
