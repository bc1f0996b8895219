"""Shared by the dashboard's tests: logging in through the page, reading a form's CSRF token, and a
small organization with calls, an agent with a config and a campaign ready to start."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert

from dispo.store import phone_numbers as number_store
from dispo.store import synthetic
from dispo.store.database import Database
from dispo.store.tables import analytics_configs
from dispo.timeutil import now_ms
from tests.test_audiences_api import create as create_audience

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')

ENUM_CONFIG = [
    {
        "identifier": "user_interested",
        "dispositionMetricPrompt": "Was the user interested? yes, no or unclear",
        "dispositionMetricType": "ENUM",
        "dispositionValues": {"type": "ENUM"},
        "choices": ["yes", "no", "unclear"],
    },
    {
        "identifier": "user_name",
        "dispositionMetricPrompt": "The user's name",
        "dispositionMetricType": "STRING",
        "dispositionValues": {"type": "STRING"},
    },
]


def csrf_token(html: str) -> str:
    match = _TOKEN.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def login(client: TestClient, key: str) -> str:
    """Log ``client`` in with ``key`` through the login form; the session's CSRF token."""
    token = csrf_token(client.get("/dashboard/login").text)
    r = client.post("/dashboard/login", data={"api_key": key, "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return csrf_token(client.get("/dashboard/calls").text)


@dataclass
class World:
    fleet: synthetic.Fleet
    agent_id: str  # the fleet's first agent, with ENUM_CONFIG as its analytics config
    campaign_id: str  # a draft campaign of two members, ready to start
    call_ids: list[str]


def build_world(db: Database, api: TestClient, org_id: str, n: int = 60) -> World:
    """Synthetic calls over the last 5 days, a config on the first agent, a draft campaign."""
    with db.write() as conn:
        fleet = synthetic.create_fleet(conn, org_id, n_agents=2, n_campaigns=2, seed=5)
        items = list(synthetic.generate(org_id, fleet, n, days=5, seed=5))
        synthetic.insert_calls(conn, items)
        conn.execute(
            insert(analytics_configs).values(
                org_id=org_id,
                agent_id=fleet.agent_ids[0],
                version=1,
                summary_prompt="Summarize the call.",
                disposition_metrics=ENUM_CONFIG,
                created_at=now_ms(),
            )
        )
        phone, _ = number_store.add_number(conn, org_id, "+14155550100")
    audience_id = create_audience(api)
    body: dict[str, Any] = {
        "name": "Dashboard test campaign",
        "agentId": fleet.agent_ids[0],
        "audienceId": audience_id,
        "phoneNumberIds": [phone["id"]],
        "maxRetries": 0,
        "retryDelay": 15,
    }
    r = api.post("/api/v1/campaign", json=body)
    assert r.status_code == 201, r.text
    call_ids = [row["call_id"] for row, _, _ in items]
    return World(fleet, fleet.agent_ids[0], r.json()["data"]["_id"], call_ids)
