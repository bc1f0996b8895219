"""Campaigns: create, read, list, start (queues the audience), pause, resume, stop, delete."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from smallestai.atoms.models import AgentIdDelete200Response, CampaignGet200Response, CampaignPost201Response
from sqlalchemy import func, select, update

from dispo.store import campaigns as store
from dispo.store import phone_numbers as number_store
from dispo.store.database import Database
from dispo.store.tables import campaign_members, campaigns
from dispo.timeutil import now_ms
from tests.conftest import Org
from tests.test_audiences_api import create as create_audience


@dataclass
class Setup:
    agent_id: str
    audience_id: str
    phone_id: str

    def body(self, **overrides: Any) -> dict[str, Any]:
        """What the official Campaign.create sends."""
        return {
            "name": "Spring outreach",
            "agentId": self.agent_id,
            "audienceId": self.audience_id,
            "phoneNumberIds": [self.phone_id],
            "description": "",
            "maxRetries": 3,
            "retryDelay": 15,
            **overrides,
        }


@pytest.fixture
def setup(client: TestClient, db: Database, org: Org) -> Setup:
    with db.write() as conn:
        row, _ = number_store.add_number(conn, org.id, "+14155550100")
    agent_id = client.post("/api/v1/agent", json={"name": "Caller"}).json()["data"]
    return Setup(agent_id, create_audience(client), row["id"])


def _create(client: TestClient, setup: Setup, **overrides: Any) -> str:
    r = client.post("/api/v1/campaign", json=setup.body(**overrides))
    assert r.status_code == 201, r.text
    campaign_id = r.json()["data"]["_id"]
    assert isinstance(campaign_id, str)
    return campaign_id


def _members(db: Database, campaign_id: str) -> list[dict[str, Any]]:
    m = campaign_members.c
    with db.read() as conn:
        rows = conn.execute(
            select(campaign_members).where(m.campaign_id == campaign_id).order_by(m.phone_number)
        )
        return [dict(r) for r in rows.mappings()]


def _count_campaigns(db: Database, org: Org) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).where(campaigns.c.org_id == org.id)).scalar_one())


def _detail(client: TestClient, campaign_id: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/campaign/{campaign_id}")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert isinstance(data, dict)
    return data


def _events(client: TestClient, campaign_id: str) -> list[str]:
    return [e["type"] for e in _detail(client, campaign_id)["events"]]


def test_create_and_get(client: TestClient, setup: Setup, org: Org) -> None:
    r = client.post(
        "/api/v1/campaign", json=setup.body(description="Solar leads", maxRetries=0, retryDelay=60)
    )
    assert r.status_code == 201
    assert CampaignPost201Response.from_dict(r.json()) is not None
    created = r.json()["data"]
    assert created["status"] == "draft"
    assert (created["name"], created["description"], created["maxRetries"], created["retryDelay"]) == (
        "Spring outreach",
        "Solar leads",
        0,
        60,
    )
    assert created["agent"] == {"_id": setup.agent_id, "name": "Caller"}
    assert created["audience"] == {"_id": setup.audience_id, "name": "Spring leads"}
    assert created["phoneNumberIds"] == [setup.phone_id]
    assert created["organization"] == org.id

    detail = _detail(client, created["_id"])
    assert detail["campaign"] == created
    assert detail["metrics"] == {"total_participants": 2, "contacts_called": 0, "contacts_connected": 0}
    assert [e["type"] for e in detail["events"]] == ["created"]
    assert detail["events"][0]["createdAt"] == created["createdAt"]
    assert client.get(f"/atoms/v1/campaign/{created['_id']}").json()["data"] == detail


def test_phone_numbers_default_to_all_active_ones(
    client: TestClient, setup: Setup, db: Database, org: Org
) -> None:
    # smallestai's generated CampaignPostRequest has no phoneNumberIds: AtomsClient.new_campaign drops them.
    with db.write() as conn:
        second, _ = number_store.add_number(conn, org.id, "+14155550101")
    body = setup.body()
    del body["phoneNumberIds"]
    r = client.post("/api/v1/campaign", json=body)
    assert r.status_code == 201
    assert r.json()["data"]["phoneNumberIds"] == [setup.phone_id, second["id"]]


@pytest.mark.parametrize(
    ("overrides", "status", "message"),
    [
        (
            {"agentId": "f" * 24},
            404,
            f"No agent {'f' * 24} in this organization: agentId must be an id from GET /agent.",
        ),
        ({"agentId": "nope"}, 404, "No agent nope in this organization"),
        (
            {"audienceId": "f" * 24},
            404,
            f"No audience {'f' * 24} in this organization: audienceId must be an id from GET /audience.",
        ),
        (
            {"phoneNumberIds": ["f" * 24, "x"]},
            404,
            f"No phone number {'f' * 24}, x in this organization: phoneNumberIds must be _id values from "
            "GET /product/phone-numbers.",
        ),
        (
            {"phoneNumberIds": []},
            400,
            "phoneNumberIds is empty: give at least one id from GET /product/phone-numbers",
        ),
        ({"phoneNumberIds": "abc"}, 400, "phoneNumberIds must be a list of phone number ids"),
        ({"maxRetries": 11}, 400, "maxRetries must be a whole number of retries from 0 to 10 (got 11)."),
        ({"maxRetries": -1}, 400, "maxRetries must be a whole number of retries from 0 to 10 (got -1)."),
        ({"maxRetries": True}, 400, "maxRetries must be a whole number of retries from 0 to 10 (got True)."),
        ({"retryDelay": 0}, 400, "retryDelay must be a whole number of minutes from 1 to 1440 (got 0)."),
        (
            {"retryDelay": 1441},
            400,
            "retryDelay must be a whole number of minutes from 1 to 1440 (got 1441).",
        ),
        ({"name": ""}, 400, "name is required"),
        ({"name": 5}, 400, "name must be a string."),
        ({"agentId": None}, 400, "agentId is required: the id of the agent that makes the calls"),
        ({"maxRetry": 3}, 400, "Unknown field maxRetry: a campaign takes name, description, agentId"),
        ({"scheduledAt": "2020-01-01T00:00:00Z"}, 400, "scheduledAt is in the past"),
        ({"scheduledAt": "whenever"}, 400, "scheduledAt='whenever' is not a date Dispo understands"),
    ],
)
def test_bad_bodies_are_refused_and_create_nothing(
    client: TestClient,
    setup: Setup,
    db: Database,
    org: Org,
    overrides: dict[str, Any],
    status: int,
    message: str,
) -> None:
    r = client.post("/api/v1/campaign", json=setup.body(**overrides))
    assert r.status_code == status, r.text
    assert r.json()["errors"][0].startswith(message), r.json()
    assert _count_campaigns(db, org) == 0


def test_every_problem_in_a_body_is_listed(client: TestClient) -> None:
    r = client.post("/api/v1/campaign", json={"maxRetries": 20, "retryDelay": 0})
    assert r.status_code == 400
    assert [e.split(" ")[0] for e in r.json()["errors"]] == [
        "name",
        "agentId",
        "audienceId",
        "maxRetries",
        "retryDelay",
    ]


def test_references_of_another_organization_are_not_found(
    client: TestClient, setup: Setup, other_org: Org, db: Database, org: Org
) -> None:
    r = client.post("/api/v1/campaign", json=setup.body(), headers=other_org.headers)
    assert r.status_code == 404
    assert r.json()["errors"][0].startswith(f"No agent {setup.agent_id} in this organization")
    campaign_id = _create(client, setup)
    for method, path in (
        ("GET", f"/api/v1/campaign/{campaign_id}"),
        ("POST", f"/api/v1/campaign/{campaign_id}/start"),
        ("POST", f"/api/v1/campaign/{campaign_id}/pause"),
        ("POST", f"/api/v1/campaign/{campaign_id}/stop"),
        ("DELETE", f"/api/v1/campaign/{campaign_id}"),
    ):
        r = client.request(method, path, headers=other_org.headers)
        assert r.status_code == 404
        assert r.json()["errors"] == [
            f"No campaign {campaign_id} in this organization: list campaigns with GET /campaign."
        ]
    assert _detail(client, campaign_id)["campaign"]["status"] == "draft"


def test_archived_agent_and_organization_without_numbers(client: TestClient, db: Database, org: Org) -> None:
    agent_id = client.post("/api/v1/agent", json={"name": "Caller"}).json()["data"]
    audience_id = create_audience(client)
    body = {"name": "S", "agentId": agent_id, "audienceId": audience_id}
    r = client.post("/api/v1/campaign", json=body)
    assert r.status_code == 400
    assert r.json()["errors"][0].startswith(
        "This organization has no phone numbers to call from: add one with `dispo numbers add +14155550123`"
    )
    with db.write() as conn:
        number_store.add_number(conn, org.id, "+14155550100")
    client.delete(f"/api/v1/agent/{agent_id}/archive")
    r = client.post("/api/v1/campaign", json=body)
    assert r.status_code == 400
    assert r.json()["errors"] == [
        f"Agent {agent_id} is archived: restore it with DELETE /agent/{agent_id}/archive?on=false, or choose "
        "another agent."
    ]
    assert _count_campaigns(db, org) == 0


# ---------------------------------------------------------------------------------------------
# Lifecycle


def test_start_queues_every_member_in_the_same_transaction(
    client: TestClient, setup: Setup, db: Database
) -> None:
    campaign_id = _create(client, setup)
    assert _members(db, campaign_id) == []
    before = now_ms()
    r = client.post(f"/api/v1/campaign/{campaign_id}/start")
    assert r.status_code == 202
    assert r.json() == {
        "status": True,
        "data": {"message": "Campaign started", "campaignId": campaign_id, "status": "running"},
    }
    members = _members(db, campaign_id)
    assert [m["phone_number"] for m in members] == ["+14155550123", "+916366821717"]
    for m in members:
        assert (m["status"], m["attempts"], m["lease_until"], m["last_call_id"]) == ("queued", 0, None, None)
        assert before <= m["next_attempt_at"] <= now_ms()
    detail = _detail(client, campaign_id)
    assert detail["campaign"]["status"] == "running"
    assert detail["campaign"]["isCampaignInProgress"] is True
    assert detail["campaign"]["startedAt"] is not None
    assert detail["metrics"] == {"total_participants": 2, "contacts_called": 0, "contacts_connected": 0}

    r = client.post(f"/api/v1/campaign/{campaign_id}/start")
    assert r.status_code == 409
    assert r.json()["errors"] == [
        f"Campaign {campaign_id} cannot be started: it is already running; pause it with "
        f"POST /campaign/{campaign_id}/pause."
    ]


def test_pause_and_resume_keep_existing_members(client: TestClient, setup: Setup, db: Database) -> None:
    campaign_id = _create(client, setup)
    r = client.post(f"/api/v1/campaign/{campaign_id}/pause")
    assert r.status_code == 409
    assert r.json()["errors"] == [
        f"Campaign {campaign_id} cannot be paused: it has not started; start it with "
        f"POST /campaign/{campaign_id}/start."
    ]
    client.post(f"/api/v1/campaign/{campaign_id}/start")
    r = client.post(f"/api/v1/campaign/{campaign_id}/pause")
    assert r.status_code == 200
    assert AgentIdDelete200Response.from_dict(r.json()) is not None
    assert r.json()["data"]["status"] == "paused"
    assert client.post(f"/api/v1/campaign/{campaign_id}/pause").status_code == 409

    # While paused, the dialer settled one member and the audience grew by one.
    with db.write() as conn:
        conn.execute(
            update(campaign_members)
            .where(
                campaign_members.c.campaign_id == campaign_id,
                campaign_members.c.phone_number == "+916366821717",
            )
            .values(status="completed", attempts=1, last_outcome="completed")
        )
    client.post(
        f"/api/v1/audience/{setup.audience_id}/members", json={"members": [{"phoneNumber": "+14155550199"}]}
    )

    r = client.post(f"/api/v1/campaign/{campaign_id}/start")
    assert r.status_code == 202
    assert r.json()["data"]["message"] == "Campaign resumed"
    statuses = {m["phone_number"]: (m["status"], m["attempts"]) for m in _members(db, campaign_id)}
    assert statuses == {
        "+14155550123": ("queued", 0),
        "+916366821717": ("completed", 1),  # kept, not queued again
        "+14155550199": ("queued", 0),  # joined since: queued on resume
    }
    assert _events(client, campaign_id) == ["created", "started", "paused", "resumed"]
    assert _detail(client, campaign_id)["metrics"] == {
        "total_participants": 3,
        "contacts_called": 1,
        "contacts_connected": 1,
    }


def test_stop_cancels_queued_members_and_completes(client: TestClient, setup: Setup, db: Database) -> None:
    campaign_id = _create(client, setup)
    r = client.post(f"/api/v1/campaign/{campaign_id}/stop")
    assert r.status_code == 409
    assert r.json()["errors"] == [
        f"Campaign {campaign_id} cannot be stopped: it has not started; delete it with "
        f"DELETE /campaign/{campaign_id} instead."
    ]
    client.post(f"/api/v1/campaign/{campaign_id}/start")
    with db.write() as conn:  # one call in flight
        conn.execute(
            update(campaign_members)
            .where(
                campaign_members.c.campaign_id == campaign_id,
                campaign_members.c.phone_number == "+916366821717",
            )
            .values(status="dialing", attempts=1)
        )
    r = client.post(f"/api/v1/campaign/{campaign_id}/stop")
    assert r.status_code == 200
    assert r.json()["data"] == {
        "message": "Campaign stopped",
        "campaignId": campaign_id,
        "status": "completed",
    }
    statuses = {m["phone_number"]: m["status"] for m in _members(db, campaign_id)}
    assert statuses == {
        "+14155550123": "cancelled",
        "+916366821717": "dialing",
    }  # the call in flight finishes
    detail = _detail(client, campaign_id)
    assert detail["campaign"]["status"] == "completed"
    assert detail["campaign"]["isCampaignCompleted"] is True
    assert detail["campaign"]["completedAt"] is not None
    assert [e["type"] for e in detail["events"]] == ["created", "started", "stopped"]

    for action, verb in (("start", "started"), ("pause", "paused"), ("stop", "stopped")):
        r = client.post(f"/api/v1/campaign/{campaign_id}/{action}")
        assert r.status_code == 409
        assert r.json()["errors"] == [
            f"Campaign {campaign_id} is completed: it cannot be {verb}; create a new campaign with the same "
            "agent and audience to call them again."
        ]


def test_delete_keeps_history_and_refuses_everything_after(
    client: TestClient, setup: Setup, db: Database
) -> None:
    campaign_id = _create(client, setup)
    client.post(f"/api/v1/campaign/{campaign_id}/start")
    r = client.delete(f"/api/v1/campaign/{campaign_id}")
    assert r.status_code == 200
    assert AgentIdDelete200Response.from_dict(r.json()) is not None
    assert r.json() == {"status": True, "data": {"message": "Campaign deleted", "campaignId": campaign_id}}
    assert {m["status"] for m in _members(db, campaign_id)} == {"cancelled"}
    detail = _detail(client, campaign_id)
    assert detail["campaign"]["status"] == "deleted"
    assert [e["type"] for e in detail["events"]] == ["created", "started", "deleted"]
    for action, verb in (("start", "started"), ("pause", "paused"), ("stop", "stopped")):
        r = client.post(f"/api/v1/campaign/{campaign_id}/{action}")
        assert r.status_code == 409
        assert r.json()["errors"] == [
            f"Campaign {campaign_id} was deleted: it cannot be {verb}; create a new campaign."
        ]
    r = client.delete(f"/api/v1/campaign/{campaign_id}")
    assert r.status_code == 409
    assert r.json()["errors"] == [f"Campaign {campaign_id} is already deleted."]
    assert client.get("/api/v1/campaign").json()["data"]["campaigns"] == []
    listed = client.get("/api/v1/campaign", params={"status": "deleted"}).json()["data"]["campaigns"]
    assert [c["_id"] for c in listed] == [campaign_id]


def test_start_refuses_an_empty_audience_and_an_archived_agent(
    client: TestClient, setup: Setup, db: Database
) -> None:
    campaign_id = _create(client, setup)
    # A draft does not hold its agent: archiving is allowed, but starting then says what to do.
    assert client.delete(f"/api/v1/agent/{setup.agent_id}/archive").status_code == 200
    r = client.post(f"/api/v1/campaign/{campaign_id}/start")
    assert r.status_code == 409
    assert r.json()["errors"] == [
        f"Agent {setup.agent_id} of campaign {campaign_id} is archived: restore it with "
        f"DELETE /agent/{setup.agent_id}/archive?on=false, then start again."
    ]
    client.delete(f"/api/v1/agent/{setup.agent_id}/archive", params={"on": "false"})
    ids = [
        m["_id"]
        for m in client.get(f"/api/v1/audience/{setup.audience_id}/members").json()["data"]["members"]
    ]
    client.request("DELETE", f"/api/v1/audience/{setup.audience_id}/members", json={"memberIds": ids})
    r = client.post(f"/api/v1/campaign/{campaign_id}/start")
    assert r.status_code == 400
    assert r.json()["errors"] == [
        f"Audience {setup.audience_id} has no members: add contacts with "
        f"POST /audience/{setup.audience_id}/members, then start again."
    ]
    assert _detail(client, campaign_id)["campaign"]["status"] == "draft"
    assert _members(db, campaign_id) == []


def test_agent_archive_agrees_with_campaign_statuses(client: TestClient, setup: Setup) -> None:
    campaign_id = _create(client, setup)
    client.post(f"/api/v1/campaign/{campaign_id}/start")
    for step in ("running", "paused"):
        if step == "paused":
            client.post(f"/api/v1/campaign/{campaign_id}/pause")
        r = client.delete(f"/api/v1/agent/{setup.agent_id}/archive")
        assert r.status_code == 409, step
        assert "Spring outreach" in r.json()["errors"][0]
    client.post(f"/api/v1/campaign/{campaign_id}/stop")
    assert client.delete(f"/api/v1/agent/{setup.agent_id}/archive").status_code == 200


def test_complete_if_done(client: TestClient, setup: Setup, db: Database) -> None:
    campaign_id = _create(client, setup)
    client.post(f"/api/v1/campaign/{campaign_id}/start")
    m = campaign_members.c
    with db.write() as conn:
        conn.execute(
            update(campaign_members)
            .where(m.campaign_id == campaign_id, m.phone_number == "+916366821717")
            .values(status="no_answer", attempts=4)
        )
        assert store.complete_if_done(conn, campaign_id) is False  # one still queued
        conn.execute(
            update(campaign_members)
            .where(m.campaign_id == campaign_id, m.phone_number == "+14155550123")
            .values(status="dialing", attempts=1)
        )
        assert store.complete_if_done(conn, campaign_id) is False  # one still being dialled
        conn.execute(
            update(campaign_members)
            .where(m.campaign_id == campaign_id, m.phone_number == "+14155550123")
            .values(status="completed")
        )
        assert store.complete_if_done(conn, campaign_id) is True
        assert store.complete_if_done(conn, campaign_id) is False  # only once
    detail = _detail(client, campaign_id)
    assert detail["campaign"]["status"] == "completed"
    assert [e["type"] for e in detail["events"]] == ["created", "started", "completed"]
    assert detail["metrics"] == {"total_participants": 2, "contacts_called": 2, "contacts_connected": 1}


def test_complete_if_done_leaves_paused_campaigns_and_resume_completes_them(
    client: TestClient, setup: Setup, db: Database
) -> None:
    campaign_id = _create(client, setup)
    client.post(f"/api/v1/campaign/{campaign_id}/start")
    client.post(f"/api/v1/campaign/{campaign_id}/pause")
    with db.write() as conn:
        conn.execute(
            update(campaign_members)
            .where(campaign_members.c.campaign_id == campaign_id)
            .values(status="completed", attempts=1)
        )
        assert store.complete_if_done(conn, campaign_id) is False
    r = client.post(f"/api/v1/campaign/{campaign_id}/start")
    assert r.status_code == 202
    assert r.json()["data"]["status"] == "completed"  # nothing left to call
    assert _events(client, campaign_id) == ["created", "started", "paused", "resumed", "completed"]


def test_scheduled_campaigns_start_when_due(client: TestClient, setup: Setup, db: Database) -> None:
    campaign_id = _create(client, setup, scheduledAt="2099-01-01T09:00:00Z")
    detail = _detail(client, campaign_id)
    assert detail["campaign"]["status"] == "scheduled"
    assert detail["campaign"]["scheduledAt"] == "2099-01-01T09:00:00.000Z"
    with db.write() as conn:
        assert store.start_due(conn) == []
        assert store.start_due(conn, now=4_070_941_200_000) == [campaign_id]  # 2099-01-01T09:00Z
    assert _detail(client, campaign_id)["campaign"]["status"] == "running"
    assert len(_members(db, campaign_id)) == 2
    assert _events(client, campaign_id) == ["created", "scheduled", "started"]


# ---------------------------------------------------------------------------------------------
# Listing


def test_list_pages_filters_and_searches(client: TestClient, setup: Setup) -> None:
    ids = [_create(client, setup, name=f"Campaign {i}") for i in range(5)]
    client.post(f"/api/v1/campaign/{ids[1]}/start")
    body = client.get("/api/v1/campaign").json()
    assert CampaignGet200Response.from_dict(body) is not None
    data = body["data"]
    assert [c["_id"] for c in data["campaigns"]] == ids[::-1]
    assert data["pagination"] == {"total": 5, "page": 1, "limit": 10, "hasMore": False, "totalPages": 1}
    assert data["campaigns"][0]["agent"] == {"_id": setup.agent_id, "name": "Caller"}

    page = client.get("/api/v1/campaign", params={"page": 2, "limit": 2}).json()["data"]
    assert [c["name"] for c in page["campaigns"]] == ["Campaign 2", "Campaign 1"]
    assert page["pagination"] == {"total": 5, "page": 2, "limit": 2, "hasMore": True, "totalPages": 3}
    by_offset = client.get("/api/v1/campaign", params={"page": 2, "offset": 2}).json()["data"]
    assert by_offset["campaigns"] == page["campaigns"]

    running = client.get("/api/v1/campaign", params={"status": "running"}).json()["data"]
    assert [c["_id"] for c in running["campaigns"]] == [ids[1]]
    drafts = client.get("/api/v1/campaign", params={"status": "draft,paused"}).json()["data"]
    assert drafts["pagination"]["total"] == 4
    found = client.get("/api/v1/campaign", params={"search": "PAIGN 3"}).json()["data"]
    assert [c["name"] for c in found["campaigns"]] == ["Campaign 3"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "active"}, "status 'active' is not a campaign status: use draft, scheduled"),
        ({"limit": 5, "offset": 3}, "limit=5 and offset=3 disagree: both set the page size; send one."),
        ({"limit": 0}, "limit: Input should be greater than or equal to 1."),
        ({"page": 0}, "page: Input should be greater than or equal to 1."),
    ],
)
def test_list_refuses_bad_options(client: TestClient, params: dict[str, Any], message: str) -> None:
    r = client.get("/api/v1/campaign", params=params)
    assert r.status_code == 400
    assert r.json()["errors"][0].startswith(message), r.json()
