"""Latency across calls: percentiles of each stage of the agents' turns (``GET /analytics/latency``).

Stages, per turn (``transcript_messages``): ``stt`` (the STT's time on a caller turn), ``llm``
(the agent's model time), ``tts`` (the TTS's time to first audio) and ``voiceToVoice`` (the
caller stopped speaking → the agent's first audio). The measured values of an organization's calls
(optionally one agent's, created in a date range) are read sorted, one stage at a time, and the
percentiles taken by the nearest-rank method, the same on SQLite (which has no percentile
function) and PostgreSQL.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from dispo.store.tables import calls, transcript_messages

STAGES = {
    "stt": transcript_messages.c.stt_ms,
    "llm": transcript_messages.c.latency_ms,
    "tts": transcript_messages.c.tts_ms,
    "voiceToVoice": transcript_messages.c.v2v_ms,
}
PERCENTILES = (50, 90, 99)


def nearest_rank(values: Sequence[float], percentile: float) -> float | None:
    """The ``percentile``-th percentile of sorted ``values`` (nearest rank); None when empty."""
    if not values:
        return None
    rank = max(1, math.ceil(percentile / 100 * len(values)))
    return round(values[rank - 1], 1)


def stage_percentiles(
    conn: Connection,
    org_id: str,
    *,
    agent_id: str | None = None,
    date_from: int | None = None,
    date_to: int | None = None,
) -> dict[str, dict[str, Any]]:
    """``{stage: {"count": n, "p50": ms, "p90": ms, "p99": ms}}`` (percentiles None when n is 0)."""
    where = [calls.c.org_id == org_id]
    if agent_id is not None:
        where.append(calls.c.agent_id == agent_id)
    if date_from is not None:
        where.append(calls.c.created_at >= date_from)
    if date_to is not None:
        where.append(calls.c.created_at <= date_to)
    out: dict[str, dict[str, Any]] = {}
    for stage, column in STAGES.items():
        stmt = (
            select(column)
            .select_from(transcript_messages.join(calls, calls.c.pk == transcript_messages.c.call_pk))
            .where(*where, column.is_not(None))
            .order_by(column)
        )
        values = [float(v) for v in conn.execute(stmt).scalars()]
        out[stage] = {"count": len(values), **{f"p{p}": nearest_rank(values, p) for p in PERCENTILES}}
    return out


def recent_stage_percentiles(
    conn: Connection,
    org_id: str,
    ms_from: int,
    ms_to: int,
    *,
    agent_ids: Sequence[str] = (),
    calls_limit: int = 2000,
) -> tuple[int, dict[str, dict[str, Any]]]:
    """The stage percentiles of the turns of the newest ``calls_limit`` calls created in
    ``[ms_from, ms_to]``: a bounded sample for a page that must answer fast at any scale (the
    overview), where :func:`stage_percentiles` reads every turn. Returns (calls sampled, stages)."""
    where = [calls.c.org_id == org_id, calls.c.created_at >= ms_from, calls.c.created_at <= ms_to]
    if agent_ids:
        where.append(calls.c.agent_id.in_(list(agent_ids)))
    newest = select(calls.c.pk).where(*where).order_by(calls.c.created_at.desc()).limit(calls_limit)
    pks = [int(pk) for pk in conn.execute(newest).scalars()]
    columns = list(STAGES.values())
    values: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for i in range(0, len(pks), 500):
        stmt = select(*columns).where(transcript_messages.c.call_pk.in_(pks[i : i + 500]))
        for row in conn.execute(stmt):
            for stage, value in zip(STAGES, row, strict=True):
                if value is not None:
                    values[stage].append(float(value))
    out: dict[str, dict[str, Any]] = {}
    for stage, found in values.items():
        found.sort()
        out[stage] = {"count": len(found), **{f"p{p}": nearest_rank(found, p) for p in PERCENTILES}}
    return len(pks), out
