"""``GET /analytics/latency``: p50/p90/p99 of each stage of the agents' turns (STT, LLM, TTS,
voice-to-voice) across calls, optionally of one agent and in a date range."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from dispo.api import calllog
from dispo.api.contract import ContractRoute, lean
from dispo.api.deps import get_org_id, read
from dispo.api.responses import ok
from dispo.api.routes.agents import agent_or_404
from dispo.api.schemas import AUTHED, LIST_CALLS_SCHEMAS, Envelope, errors, query_parameters
from dispo.store import latency as latency_store
from dispo.timeutil import ms_to_iso

router = APIRouter(tags=["analytics"], route_class=ContractRoute)

_PARAMETERS = {
    "agentId": {"type": "string", "description": "Only this agent's calls."},
    "dateFrom": LIST_CALLS_SCHEMAS["dateFrom"],
    "dateTo": LIST_CALLS_SCHEMAS["dateTo"],
}


class StageLatency(BaseModel):
    count: int
    p50: float | None
    p90: float | None
    p99: float | None


class LatencyStages(BaseModel):
    stt: StageLatency
    llm: StageLatency
    tts: StageLatency
    voiceToVoice: StageLatency  # noqa: N815 - the wire name


class LatencyPublic(BaseModel):
    agentId: str | None  # noqa: N815
    dateFrom: str | None  # noqa: N815
    dateTo: str | None  # noqa: N815
    stages: LatencyStages


@router.get(
    "/analytics/latency",
    summary="Latency percentiles per stage (STT, LLM, TTS, voice-to-voice), in milliseconds",
    description="Over the agent turns (and, for STT, the caller turns) of the organization's calls, "
    "optionally one agent's (agentId) created in [dateFrom, dateTo]. Chat calls have LLM times only.",
    response_model=Envelope[LatencyPublic],
    responses=errors(*AUTHED, 404),
    openapi_extra=lean(parameters=query_parameters(_PARAMETERS)),
)
async def latency(request: Request) -> Response:
    org_id = await get_org_id(request)
    params = request.query_params
    date_from, date_to = calllog.date_range(params)
    agent_id = params.get("agentId") or None

    def run(conn: Any) -> dict[str, Any]:
        if agent_id is not None:
            agent_or_404(conn, org_id, agent_id)
        stages = latency_store.stage_percentiles(
            conn, org_id, agent_id=agent_id, date_from=date_from, date_to=date_to
        )
        return {
            "agentId": agent_id,
            "dateFrom": ms_to_iso(date_from),
            "dateTo": ms_to_iso(date_to),
            "stages": stages,
        }

    return ok(await read(request, run))
