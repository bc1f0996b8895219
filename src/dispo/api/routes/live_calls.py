"""Calls Dispo places or holds itself: ``POST /conversation/outbound`` and chat (HTTP and WebSocket)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import anyio
from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from sqlalchemy import Connection
from starlette.responses import Response

from dispo.analytics.jobs import Jobs
from dispo.api.auth import authenticate
from dispo.api.bodies import JsonBody
from dispo.api.contract import ContractRoute, json_body
from dispo.api.deps import DbDep, OrgDep, SettingsDep
from dispo.api.responses import ok
from dispo.api.routes.agents import agent_or_404
from dispo.api.schemas import (
    AUTHED,
    WITH_BODY,
    ChatCreate,
    ChatMessageCreate,
    ChatPublic,
    Envelope,
    OutboundCallCreate,
    OutboundCallPublic,
    errors,
    parse,
)
from dispo.calls import CallStatus, DisconnectReason
from dispo.config import Settings
from dispo.errors import DispoError, NotFound, ValidationFailed
from dispo.ids import is_call_id
from dispo.phones import EXAMPLE, to_e164
from dispo.runtime import chat
from dispo.runtime.dialogue import Brain, Turn
from dispo.runtime.runner import CallRunner, PlannedCall, new_call_values
from dispo.store import calls as call_store
from dispo.store import phone_numbers as phone_store
from dispo.store.database import Database
from dispo.timeutil import ms_to_iso, now_ms
from dispo.types import Row

router = APIRouter(tags=["live calls"], route_class=ContractRoute)
log = logging.getLogger("dispo.api")


def _agent(conn: Connection, org_id: str, agent_id: Any) -> Row:
    """The agent to call or chat with: one of the organization's, not archived."""
    if not isinstance(agent_id, str) or not agent_id:
        raise ValidationFailed(
            'agentId is required: the id of one of your agents, e.g. {"agentId": "696e…"}.'
        )
    row = agent_or_404(conn, org_id, agent_id)
    if row["archived_at"] is not None:
        raise ValidationFailed(
            f"Agent {agent_id} is archived: restore it with DELETE /agent/{agent_id}/archive?on=false."
        )
    return row


def _from_number(conn: Connection, org_id: str, agent_id: str) -> Row | None:
    """The number to call from: one assigned to the agent, else the organization's first active one."""
    rows = [r for r in phone_store.list_numbers(conn, org_id) if r["is_active"]]
    return next((r for r in rows if r["agent_id"] == agent_id), rows[0] if rows else None)


def _runner(request: Request) -> CallRunner:
    runner: CallRunner = request.app.state.runner
    return runner


@router.post(
    "/conversation/outbound",
    summary="Place an outbound call from an agent; answers at once with the call id",
    description="Body {agentId, phoneNumber (E.164), variables?}. The call is placed asynchronously; "
    "follow it with GET /conversation/{callId}.",
    response_model=Envelope[OutboundCallPublic],
    responses=errors(*WITH_BODY, 404),
    openapi_extra=json_body(
        OutboundCallCreate, {"agentId": "696e655577e1d88ff54b4fbf", "phoneNumber": EXAMPLE}
    ),
)
def start_outbound_call(
    request: Request, db: DbDep, org_id: OrgDep, settings: SettingsDep, body: JsonBody
) -> Response:
    call = parse(OutboundCallCreate, body)
    number = to_e164(call.phone_number)
    assert number is not None
    variables = dict(call.variables or {})
    with db.write() as conn:
        agent = _agent(conn, org_id, call.agent_id)
        source = _from_number(conn, org_id, agent["id"])
        values = new_call_values(
            org_id=org_id,
            agent_id=agent["id"],
            to_number=number,
            from_number=source["phone_number"] if source else None,
            status=CallStatus.IN_QUEUE,
            variables=variables,
        )
        pk = call_store.insert_call(conn, values)
    provider = (source["provider"] if source else None) or settings.telephony_provider
    _runner(request).submit(
        PlannedCall(pk, values["call_id"], agent["id"], number, values["from_number"], provider, variables)
    )
    return ok({"conversationId": values["call_id"]})


# ---------------------------------------------------------------------------------------------
# Chat over HTTP


def _turn(t: Turn) -> dict[str, Any]:
    out: dict[str, Any] = {"role": t.role, "content": t.content, "timestamp": ms_to_iso(t.timestamp_ms)}
    if t.latency_ms is not None:
        out["latencyMs"] = t.latency_ms
    return out


def _chat_answer(state: chat.ChatState, turns: list[Turn]) -> dict[str, Any]:
    return {
        "conversationId": state.call_id,
        "status": state.status,
        "ended": state.ended,
        "disconnectionReason": state.reason if state.ended else None,
        "messages": [_turn(t) for t in turns],
    }


def _chat_id(call_id: str) -> str:
    if not is_call_id(call_id):
        raise NotFound(
            f"No chat {call_id!r}: chat ids look like CALL-1768807723178-4561d0 (from POST /conversation/chat)."
        )
    return call_id


@router.post(
    "/conversation/chat",
    summary="Start a chat with an agent; answers with its id and the agent's opening message",
    response_model=Envelope[ChatPublic],
    responses=errors(*WITH_BODY, 404),
    openapi_extra=json_body(
        ChatCreate, {"agentId": "696e655577e1d88ff54b4fbf", "variables": {"name": "Asha"}}
    ),
)
def start_chat(
    request: Request, db: DbDep, org_id: OrgDep, settings: SettingsDep, body: JsonBody
) -> Response:
    start = parse(ChatCreate, body)
    variables = dict(start.variables or {})
    with db.read() as conn:
        agent = _agent(conn, org_id, start.agent_id)
    runner = _runner(request)
    state = chat.start(db, settings, runner.jobs, org_id, agent, variables, runner.brain_factory)
    return ok(_chat_answer(state, state.turns))


@router.post(
    "/conversation/chat/{call_id}",
    summary="Send the person's message; answers with the agent's reply",
    response_model=Envelope[ChatPublic],
    responses=errors(*WITH_BODY, 404, 409),
    openapi_extra=json_body(ChatMessageCreate, {"message": "Yes, I'm interested. My name is Asha."}),
)
def send_chat_message(
    request: Request, call_id: str, db: DbDep, org_id: OrgDep, settings: SettingsDep, body: JsonBody
) -> Response:
    runner = _runner(request)
    with chat.chat_lock(_chat_id(call_id)):
        state, _ = chat.load(db, org_id, call_id)
        message = parse(ChatMessageCreate, body).message
        turns = chat.user_says(
            db, settings, runner.jobs, state, message.strip(), runner.brain_factory(state.profile)
        )
    return ok(_chat_answer(state, turns))


@router.post(
    "/conversation/chat/{call_id}/end",
    summary="Hang up a chat (the person leaves)",
    response_model=Envelope[ChatPublic],
    responses=errors(*AUTHED, 404, 409),
)
def end_chat(request: Request, call_id: str, db: DbDep, org_id: OrgDep, settings: SettingsDep) -> Response:
    with chat.chat_lock(_chat_id(call_id)):
        state, _ = chat.load(db, org_id, call_id)
        if not state.ended:
            chat.end(db, settings, _runner(request).jobs, state, DisconnectReason.USER_HANGUP)
    return ok(_chat_answer(state, []))


# ---------------------------------------------------------------------------------------------
# Chat over a WebSocket


def _locked_user_says(
    db: Database, settings: Settings, jobs: Jobs, state: chat.ChatState, text: str, brain: Brain
) -> list[Turn]:
    # Under the chat's lock, as over HTTP: the idle sweep (chat.IdleSweeper) takes it too.
    with chat.chat_lock(state.call_id):
        return chat.user_says(db, settings, jobs, state, text, brain)


@router.websocket("/conversation/chat/ws")
async def chat_socket(websocket: WebSocket) -> None:
    """Protocol (JSON text frames): the server sends ``{"type": "started", "conversationId"}``, then
    ``{"type": "message", "role": "agent", "content", "timestamp", "latencyMs"}`` per agent turn,
    and ``{"type": "ended", "disconnectionReason", "conversationId"}`` last; the client sends
    ``{"type": "message", "content"}`` and may send ``{"type": "hangup"}``. Errors arrive as
    ``{"type": "error", "errors": [...]}`` and close the socket."""
    app = websocket.app
    db, settings = app.state.db, app.state.settings
    runner: CallRunner = app.state.runner
    await websocket.accept()
    try:
        header = websocket.headers.get("authorization")
        key = websocket.query_params.get("apiKey")
        org_id = await authenticate(header or (f"Bearer {key}" if key else None), db, app.state.key_cache)
        agent_id = websocket.query_params.get("agentId")
        variables = {k[4:]: v for k, v in websocket.query_params.items() if k.startswith("var.")}

        def open_chat() -> chat.ChatState:
            with db.read() as conn:
                agent = _agent(conn, org_id, agent_id)
            return chat.start(db, settings, runner.jobs, org_id, agent, variables, runner.brain_factory)

        state = await anyio.to_thread.run_sync(open_chat)
    except DispoError as exc:
        await websocket.send_json({"type": "error", "errors": exc.errors})
        await websocket.close(code=4000 + min(exc.status_code, 999) % 1000)
        return
    await websocket.send_json({"type": "started", "conversationId": state.call_id})
    for turn in state.turns:
        await websocket.send_json({"type": "message", **_turn(turn)})
    brain = runner.brain_factory(state.profile)
    reason = DisconnectReason.USER_HANGUP
    try:
        while not state.ended:
            remaining = settings.call_max_duration_seconds - (now_ms() - state.started_ms) / 1000
            try:
                frame = await asyncio.wait_for(
                    websocket.receive_json(),
                    timeout=max(0.0, min(settings.call_silence_timeout_seconds, remaining)),
                )
            except TimeoutError:
                reason = DisconnectReason.TIMEOUT
                break
            kind = frame.get("type") if isinstance(frame, dict) else None
            if kind == "hangup":
                break
            content = frame.get("content") if isinstance(frame, dict) else None
            if kind != "message" or not isinstance(content, str) or not content.strip():
                await websocket.send_json(
                    {
                        "type": "error",
                        "errors": ['Send {"type": "message", "content": "…"} or {"type": "hangup"}.'],
                    }
                )
                continue
            try:
                turns = await anyio.to_thread.run_sync(
                    _locked_user_says, db, settings, runner.jobs, state, content.strip(), brain
                )
            except DispoError as exc:
                # The model failed or its worker died (ModelCrashed): chat.user_says has ended the
                # chat as system_error with its transcript; the person is told why, then "ended".
                await websocket.send_json({"type": "error", "errors": exc.errors})
                break
            for turn in turns[1:]:
                await websocket.send_json({"type": "message", **_turn(turn)})
    except WebSocketDisconnect:
        reason = DisconnectReason.USER_HANGUP
    if not state.ended:
        await anyio.to_thread.run_sync(chat.end, db, settings, runner.jobs, state, reason)
    try:
        await websocket.send_json(
            {"type": "ended", "conversationId": state.call_id, "disconnectionReason": state.reason}
        )
        await websocket.close()
    except (WebSocketDisconnect, RuntimeError):
        pass  # the person already left
