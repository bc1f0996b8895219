"""Realistic synthetic call logs, for benchmarks, tests and demos.

Calls spread over a window of days (busier in business hours), across agents and campaigns; the
mix of statuses, disconnection reasons, durations, latencies and costs resembles a real outbound
sales operation. Connected calls carry a 10-40 turn transcript; completed ones an analytics result
(marked ``model: "synthetic"``: no model wrote it). Every value comes from a ``random.Random``
seeded with the organization and a seed, so the same pair always yields the same calls.

``load_calls`` inserts through the bulk path (fast, then rebuilds the count rollups); small sets
for tests go through ``store.calls.insert_call`` one by one via ``insert_calls``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, insert, select

from dispo.ids import new_object_id
from dispo.store import agents as agent_store
from dispo.store import calls as call_store
from dispo.store.metric_values import insert_metric_values, metric_rows
from dispo.store.tables import (
    analytics_results,
    audiences,
    calls,
    campaigns,
    transcript_messages,
)
from dispo.timeutil import now_ms

DAY_MS = 86_400_000
STATUS_WEIGHTS = {
    "completed": 64,
    "no_answer": 15,
    "busy": 6,
    "failed": 8,
    "in_progress": 2,
    "cancelled": 3,
    "pending": 2,
}
COUNTRY_PREFIXES = ("+1415", "+1212", "+1646", "+91636", "+91987", "+4420", "+4930")
AGENT_LINES = (
    "Hi, this is Maya from Brightline Solar. Is this a good time to talk?",
    "I'm calling about the quote you requested for rooftop panels.",
    "Could I get your full name for our records?",
    "Would you be interested in a free site survey next week?",
    "Great. Does Tuesday at 3 PM work for you?",
    "I understand. May I ask what's holding you back?",
    "Our panels come with a 25-year warranty and financing from 0% APR.",
    "What's the best email to send the proposal to?",
    "Thanks for your time. Have a wonderful day!",
    "Just to confirm, you'd like a follow-up call on Friday?",
    "How many people live in the household?",
    "Is your monthly electricity bill above 150 dollars?",
)
USER_LINES = (
    "Hello? Yes, speaking.",
    "Sure, I have a couple of minutes.",
    "My name is Jordan Lee.",
    "I'm not really interested right now.",
    "Yes, that sounds interesting actually.",
    "Tuesday works, but can we make it 4 instead?",
    "How much would the installation cost?",
    "Please send it to jordan.lee@example.com.",
    "We're renting, so I'm not sure the landlord would agree.",
    "Can you call me back next month?",
    "It's usually around 200 dollars in summer.",
    "Okay, thanks. Bye.",
)
SUMMARIES = (
    "The agent offered a solar site survey; the user was interested and booked a follow-up.",
    "The user said they were not interested and asked not to be called again.",
    "The agent answered questions about cost; the user asked for a proposal by email.",
    "The user was unsure and asked to be called back next month.",
)


@dataclass
class Fleet:
    """The agents and campaigns calls are spread across (campaign id -> its agent id)."""

    agent_ids: list[str]
    campaigns: dict[str, str] = field(default_factory=dict)
    org_numbers: list[str] = field(default_factory=lambda: ["+14155550100", "+14155550101"])


def create_fleet(
    conn: Connection,
    org_id: str,
    n_agents: int = 5,
    n_campaigns: int = 12,
    seed: int = 7,
) -> Fleet:
    """Create real agents, an audience and completed campaigns for synthetic calls to belong to."""
    rng = random.Random(seed)
    now = now_ms()
    agent_ids = [
        agent_store.create_agent(
            conn,
            org_id,
            {
                "name": f"Agent {i + 1}",
                "description": "Synthetic",
                "global_prompt": "You are a friendly solar sales agent.",
            },
        )
        for i in range(n_agents)
    ]
    audience_id = new_object_id()
    conn.execute(
        insert(audiences).values(
            id=audience_id,
            org_id=org_id,
            name="Synthetic audience",
            created_at=now,
            updated_at=now,
        )
    )
    campaign_map: dict[str, str] = {}
    for i in range(n_campaigns):
        campaign_id = new_object_id()
        agent_id = rng.choice(agent_ids)
        conn.execute(
            insert(campaigns).values(
                id=campaign_id,
                org_id=org_id,
                name=f"Campaign {i + 1}",
                agent_id=agent_id,
                audience_id=audience_id,
                phone_number_ids=[],
                status="completed",
                created_at=now,
                updated_at=now,
            )
        )
        campaign_map[campaign_id] = agent_id
    return Fleet(agent_ids, campaign_map)


def generate(
    org_id: str,
    fleet: Fleet,
    n: int,
    *,
    days: int = 90,
    end_ms: int | None = None,
    seed: int = 1,
    with_transcripts: bool = True,
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]]:
    """Yield ``(call row, transcript, analytics result or None)`` in creation order.

    The same organization and seed always give the same calls; other organizations get other ids.
    """
    rng = random.Random(f"{org_id}:{seed}")
    end = end_ms if end_ms is not None else now_ms()
    start = end - days * DAY_MS
    statuses = list(STATUS_WEIGHTS)
    weights = list(STATUS_WEIGHTS.values())
    # Sorted arrival times so that pk order follows time, as in a live system.
    times = sorted(_arrival(rng, start, end) for _ in range(n))
    for created in times:
        # The draws from rng keep their order (status, route, numbers, outcome, ids, latencies,
        # transcript, analytics): a seed gives the same calls as it always has.
        row = _call_row(rng, org_id, fleet, created, rng.choices(statuses, weights)[0])
        connected = row["status"] in ("completed", "in_progress")
        transcript = _transcript(rng, created, row["duration"]) if connected and with_transcripts else []
        analytics = _analytics(rng, row["updated_at"]) if row["status"] == "completed" else None
        yield row, transcript, analytics


def _call_row(rng: random.Random, org_id: str, fleet: Fleet, created: int, status: str) -> dict[str, Any]:
    """A call of ``status`` created at ``created``, as a ``calls`` row."""
    campaign_id, agent_id, call_type = _route(rng, fleet)
    from_number, to_number = _numbers(rng, fleet, call_type)
    connected = status in ("completed", "in_progress")
    duration, reason = _outcome(rng, status)
    call_id = f"CALL-{created}-{rng.getrandbits(24):06x}"
    row: dict[str, Any] = {
        "id": _object_id(rng, created),
        "call_id": call_id,
        "org_id": org_id,
        "agent_id": agent_id,
        "campaign_id": campaign_id,
        "type": call_type,
        "status": status,
        "disconnection_reason": reason,
        "call_failure_reason": "Carrier rejected the call (SIP 503)" if status == "failed" else None,
        "from_number": from_number,
        "to_number": to_number,
        "duration": duration,
        "call_cost": round(duration / 60 * 1.5, 4),
        "recording_url": None,
        "recording_dual_url": None,
        "retry_count": rng.choices((0, 1, 2), (85, 10, 5))[0] if campaign_id else 0,
        "variables": {"customer_name": "Jordan"} if campaign_id else None,
        "avg_transcriber_latency": round(rng.uniform(80, 250), 1) if connected else None,
        "avg_agent_latency": round(rng.uniform(300, 1200), 1) if connected else None,
        "avg_synthesizer_latency": round(rng.uniform(90, 320), 1) if connected else None,
        "analytics_status": "completed" if status == "completed" else None,
        "started_at": created if connected else None,
        "ended_at": created + int(duration * 1000) if status == "completed" else None,
        "created_at": created,
        "updated_at": created + int(duration * 1000) + 1000,
    }
    row["avg_latency"] = call_store.mean_latency(row)
    return row


def _route(rng: random.Random, fleet: Fleet) -> tuple[str | None, str, str]:
    """``(campaign id or None, agent id, call type)``: most calls belong to a campaign (outbound)."""
    campaign_ids = list(fleet.campaigns)
    campaign_id = rng.choice(campaign_ids) if campaign_ids and rng.random() < 0.7 else None
    if campaign_id is not None:
        return campaign_id, fleet.campaigns[campaign_id], "telephony_outbound"
    agent_id = rng.choice(fleet.agent_ids)
    call_type = rng.choices(("telephony_inbound", "telephony_outbound", "chat"), (5, 3, 2))[0]
    return None, agent_id, call_type


def _numbers(rng: random.Random, fleet: Fleet, call_type: str) -> tuple[str | None, str | None]:
    """``(from, to)``: the customer and one of the organization's numbers, by direction."""
    customer = f"{rng.choice(COUNTRY_PREFIXES)}{rng.randrange(10**6, 10**7)}"
    org_number = rng.choice(fleet.org_numbers)
    if call_type == "chat":
        return None, None
    if call_type == "telephony_inbound":
        return customer, org_number
    return org_number, customer


def _outcome(rng: random.Random, status: str) -> tuple[float, str | None]:
    """``(duration in seconds, disconnection reason)`` of a call that ended with ``status``."""
    if status == "completed":
        duration = round(min(1800.0, max(4.0, rng.lognormvariate(math.log(95), 0.9))), 1)
        return duration, rng.choices(("user_hangup", "agent_hangup", "timeout"), (55, 35, 10))[0]
    if status in ("no_answer", "busy"):
        return 0.0, "dial_no_answer"
    if status == "failed":
        return 0.0, rng.choice(("connection_error", "system_error"))
    return 0.0, None


def _transcript(rng: random.Random, created: int, duration: float) -> list[dict[str, Any]]:
    """10 to 40 turns, agent first, spread over the call."""
    turns = rng.randint(10, 40)
    step = max(1000, int(duration * 1000) // turns)
    return [
        {
            "role": "agent" if t % 2 == 0 else "user",
            "content": rng.choice(AGENT_LINES if t % 2 == 0 else USER_LINES),
            "timestamp": created + t * step,
        }
        for t in range(turns)
    ]


def _analytics(rng: random.Random, updated_at: int) -> dict[str, Any]:
    """An analytics result for a completed call: a summary and two disposition metrics."""
    interested = rng.choice(("yes", "no", "unclear"))
    return {
        "summary": rng.choice(SUMMARIES),
        "disposition_metrics": [
            {
                "identifier": "user_interested",
                "value": interested,
                "confidence": 0.9,
                "reasoning": "The user said so.",
            },
            {
                "identifier": "user_name",
                "value": "Jordan Lee",
                "confidence": 0.95,
                "reasoning": "The user said 'My name is Jordan Lee'.",
            },
        ],
        "model": "synthetic",
        "created_at": updated_at + 5000,
    }


def insert_calls(
    conn: Connection,
    items: Sequence[tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]],
) -> list[int]:
    """Insert through the store, one call at a time (keeps ``call_counts`` exact incrementally)."""
    pks = []
    for row, transcript, analytics in items:
        pk = call_store.insert_call(conn, row, transcript)
        if analytics is not None:
            conn.execute(insert(analytics_results).values(call_pk=pk, **analytics))
            insert_metric_values(conn, metric_rows(pk, row["org_id"], analytics["disposition_metrics"]))
        pks.append(pk)
    return pks


def load_calls(
    conn: Connection,
    org_id: str,
    fleet: Fleet,
    n: int,
    *,
    batch: int = 5000,
    seed: int = 1,
    days: int = 90,
    end_ms: int | None = None,
    progress: Any = None,
) -> int:
    """Bulk-insert ``n`` synthetic calls, then rebuild the org's ``call_counts``. Returns ``n``."""
    next_pk = int(conn.execute(select(calls.c.pk).order_by(calls.c.pk.desc()).limit(1)).scalar() or 0) + 1
    call_rows: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    values: list[dict[str, Any]] = []
    done = 0

    def flush() -> None:
        if call_rows:
            conn.execute(insert(calls), call_rows)
        if messages:
            conn.execute(insert(transcript_messages), messages)
        if results:
            conn.execute(insert(analytics_results), results)
        insert_metric_values(conn, values)
        values.clear()
        call_rows.clear()
        messages.clear()
        results.clear()

    for row, transcript, analytics in generate(org_id, fleet, n, seed=seed, days=days, end_ms=end_ms):
        pk = next_pk
        next_pk += 1
        call_rows.append({"pk": pk, **row})
        messages.extend({"call_pk": pk, "seq": s, **m} for s, m in enumerate(transcript))
        if analytics is not None:
            results.append({"call_pk": pk, **analytics})
            values.extend(metric_rows(pk, org_id, analytics["disposition_metrics"]))
        done += 1
        if len(call_rows) >= batch:
            flush()
            if progress is not None:
                progress(done)
    flush()
    call_store.rebuild_counts(conn, org_id)
    if progress is not None:
        progress(done)
    return done


def _arrival(rng: random.Random, start: int, end: int) -> int:
    """A random instant in [start, end), weighted towards 09:00-18:00 UTC."""
    while True:
        t = rng.randrange(start, end)
        hour = (t // 3_600_000) % 24
        if 9 <= hour < 18 or rng.random() < 0.3:
            return t


def _object_id(rng: random.Random, ms: int) -> str:
    return f"{(ms // 1000) & 0xFFFFFFFF:08x}{rng.getrandbits(64):016x}"
