"""The requests the latency benchmark times, one named case each.

A case draws a fresh sample per request from the bench data (another agent, another date window,
other call ids), so that a case measures its kind of query and not one cached result. Cases whose
values are fixed by their name (``statusFilter=completed``) repeat, as a dashboard would.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlencode

from sqlalchemy import Connection, func, select

from dispo.store.tables import agents, calls, campaigns
from dispo.timeutil import ms_to_iso

API = "/api/v1"
DAY_MS = 86_400_000
# Customer-number prefixes of the synthetic data. '+1415' is left out: the org's own numbers start
# with it, so it matches nearly every call and says nothing about prefix search.
PHONE_PREFIXES = ("+91636", "+91987", "+4420", "+4930", "+1212", "+1646")
CURSOR_WALK_PAGES = 50


@dataclass(frozen=True)
class Sample:
    """One request: a list query, a single-call fetch, or a batch search."""

    kind: Literal["list", "get", "search"]
    params: dict[str, str] = field(default_factory=dict)
    call_id: str = ""
    call_ids: tuple[str, ...] = ()

    def http(self) -> tuple[str, str, bytes | None]:
        """Method, path with query string, and body."""
        if self.kind == "list":
            query = urlencode(self.params, safe=",:")  # "+" must travel as %2B: a bare one is a space
            return "GET", f"{API}/conversation" + (f"?{query}" if query else ""), None
        if self.kind == "get":
            return "GET", f"{API}/conversation/{self.call_id}", None
        return "POST", f"{API}/conversation/search", json.dumps({"callIds": list(self.call_ids)}).encode()


@dataclass(frozen=True)
class Fixture:
    """What cases draw from: the bench org's agents, campaigns, time span and some call ids."""

    org_id: str
    agent_ids: tuple[str, ...]
    campaign_ids: tuple[str, ...]
    first_ms: int
    last_ms: int
    call_ids: tuple[str, ...]
    customer_numbers: tuple[str, ...]

    @classmethod
    def from_database(cls, conn: Connection, org_id: str, *, ids: int = 5000, seed: int = 1) -> Fixture:
        """The org's fleet and time span, and ``ids`` call ids picked at random."""
        agent_ids = tuple(conn.execute(select(agents.c.id).where(agents.c.org_id == org_id)).scalars())
        campaign_ids = tuple(
            conn.execute(select(campaigns.c.id).where(campaigns.c.org_id == org_id)).scalars()
        )
        c = calls.c
        low, high, first, last = conn.execute(
            select(func.min(c.pk), func.max(c.pk), func.min(c.created_at), func.max(c.created_at)).where(
                c.org_id == org_id
            )
        ).one()
        rng = random.Random(seed)
        # The loader numbers calls contiguously, so random pks in range are random calls.
        pks = sorted({rng.randint(low, high) for _ in range(ids)})
        picked = conn.execute(
            select(c.call_id, c.type, c.from_number, c.to_number).where(c.pk.in_(pks), c.org_id == org_id)
        ).all()
        call_ids = tuple(row.call_id for row in picked)
        # The customer's side of each phone call: what a person searching for a caller types.
        numbers = tuple(
            row.from_number if row.type == "telephony_inbound" else row.to_number
            for row in picked
            if row.type != "chat"
        )
        return cls(org_id, agent_ids, campaign_ids, int(first), int(last), call_ids, numbers)

    def window(self, rng: random.Random, days: float) -> dict[str, str]:
        """``dateFrom``/``dateTo`` spanning ``days`` at a random instant, not aligned to midnight."""
        span = int(days * DAY_MS)
        start = rng.randrange(self.first_ms, max(self.first_ms + 1, self.last_ms - span))
        return {"dateFrom": _iso(start), "dateTo": _iso(start + span)}


Draw = Callable[[Fixture, random.Random], Sample]


@dataclass(frozen=True)
class Case:
    name: str
    draw: Draw
    # Follow pagination.nextCursor from the drawn first page and time the pages after it.
    cursor_walk: bool = False


def _iso(ms: int) -> str:
    iso = ms_to_iso(ms)
    assert iso is not None
    return iso


def _list(**fixed: str) -> Draw:
    return lambda _fx, _rng: Sample("list", dict(fixed))


def _agent(fx: Fixture, rng: random.Random) -> Sample:
    return Sample("list", {"agentIds": rng.choice(fx.agent_ids)})


def _campaign(fx: Fixture, rng: random.Random) -> Sample:
    return Sample("list", {"campaignIds": rng.choice(fx.campaign_ids)})


def _window(days: float) -> Draw:
    return lambda fx, rng: Sample("list", fx.window(rng, days))


def _phone_prefix(_fx: Fixture, rng: random.Random) -> Sample:
    return Sample("list", {"search": rng.choice(PHONE_PREFIXES)})


def _full_number(fx: Fixture, rng: random.Random) -> Sample:
    return Sample("list", {"search": rng.choice(fx.customer_numbers)})


def _exact_call_id(fx: Fixture, rng: random.Random) -> Sample:
    return Sample("list", {"search": rng.choice(fx.call_ids)})


def _agent_status_week(fx: Fixture, rng: random.Random) -> Sample:
    return Sample(
        "list", {"agentIds": rng.choice(fx.agent_ids), "statusFilter": "completed", **fx.window(rng, 7)}
    )


def _campaign_duration_type(fx: Fixture, rng: random.Random) -> Sample:
    return Sample(
        "list",
        {
            "campaignIds": rng.choice(fx.campaign_ids),
            "durationFilter": rng.choice(("30-60", "1-5", "5+")),
            "callTypes": "telephony_outbound",  # campaign calls are outbound
        },
    )


def _get_one(fx: Fixture, rng: random.Random) -> Sample:
    return Sample("get", call_id=rng.choice(fx.call_ids))


def _search_batch(fx: Fixture, rng: random.Random) -> Sample:
    return Sample("search", call_ids=tuple(rng.sample(fx.call_ids, 100)))


CASES: tuple[Case, ...] = (
    Case("default (limit 10)", _list()),
    Case("agentIds", _agent),
    Case("campaignIds", _campaign),
    Case("statusFilter=completed", _list(statusFilter="completed")),
    Case("statusFilter=failed,busy", _list(statusFilter="failed,busy")),
    Case("callTypes=chat", _list(callTypes="chat")),
    Case("disconnectReasonFilter=agent_hangup", _list(disconnectReasonFilter="agent_hangup")),
    Case("durationFilter=5+", _list(durationFilter="5+")),
    Case("minDuration=60&maxDuration=120", _list(minDuration="60", maxDuration="120")),
    Case("date range 1 day", _window(1)),
    Case("date range 7 days", _window(7)),
    Case("date range 60 days", _window(60)),
    Case("search phone prefix (+91636 …)", _phone_prefix),
    Case("search full phone number", _full_number),
    Case("search exact callId", _exact_call_id),
    Case("agent + completed + 7 days", _agent_status_week),
    Case("campaign + durationFilter + callTypes", _campaign_duration_type),
    Case("sortBy=callDuration", _list(sortBy="callDuration")),
    Case("sortBy=avgLatency", _list(sortBy="avgLatency")),
    Case("page=100 (offset 990)", _list(page="100")),
    Case("page=1000 (offset 9990)", _list(page="1000")),
    Case(f"cursor pages 2-{CURSOR_WALK_PAGES}", _list(), cursor_walk=True),
    Case("limit=100", _list(limit="100")),
    Case("limit=1000", _list(limit="1000")),
    Case("GET /conversation/{id}", _get_one),
    Case("POST /conversation/search (100 ids)", _search_batch),
)
