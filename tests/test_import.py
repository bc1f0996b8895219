"""POST /conversation/import: finished calls from another stack, idempotent, validated, analysed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dispo.analytics.jobs import Jobs
from dispo.analytics.queue import MemoryQueue
from dispo.api.app import create_app
from dispo.config import Settings
from dispo.store.database import Database
from tests.analytics_fakes import BACKEND, FakeEngine, fake_engine, make_agent  # noqa: F401
from tests.conftest import Org
from tests.importing import import_call, no_pending_jobs_left  # noqa: F401

pytestmark = pytest.mark.usefixtures("no_pending_jobs_left")

URL = "/api/v1/conversation/import"
BATCH = URL + "/batch"


@pytest.fixture
def queue() -> MemoryQueue:
    return MemoryQueue()


@pytest.fixture
def jobs_client(db: Database, tmp_path: Path, org: Org, queue: MemoryQueue) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path)
    app = create_app(settings, db, jobs=Jobs(settings, db, backend=BACKEND, queue=queue))
    with TestClient(app, headers=org.headers) as c:
        yield c


def test_one_call_is_imported_with_its_transcript_times_and_numbers(client: TestClient) -> None:
    body = client.post(URL, json=import_call(0, variables={"crm": "42"})).json()
    assert body["status"] is True
    assert body["data"]["imported"] == 1
    call_id = body["data"]["results"][0]["callId"]
    call = client.get(f"/api/v1/conversation/{call_id}").json()["data"]
    assert call["status"] == "completed"
    assert call["type"] == "telephony_inbound"
    assert (call["from"], call["to"]) == ("+14155550123", "+14155550199")
    assert call["createdAt"] == call["startedAt"] == "2026-11-30T09:00:00.000Z"
    assert call["endedAt"] == "2026-11-30T09:01:30.000Z"
    assert call["duration"] == 90
    assert call["callCost"] == 0.25
    assert call["disconnectionReason"] == "user_hangup"
    assert call["variables"] == {"crm": "42"}
    assert [t["role"] for t in call["transcript"]] == ["agent", "user", "agent"]
    assert call["transcript"][2]["latencyMs"] == 420
    assert call["transcript"][1]["timestamp"] == "2026-11-30T09:00:05.000Z"
    assert call["average_agent_latency"] == 420
    assert call["postCallAnalytics"]["status"] == "pending"


def test_the_same_call_imported_twice_exists_once(client: TestClient) -> None:
    first = client.post(URL, json=import_call(1)).json()["data"]
    again = client.post(URL, json=import_call(1)).json()["data"]
    batch = client.post(BATCH, json={"calls": [import_call(1), import_call(2), import_call(2)]}).json()[
        "data"
    ]
    assert first["results"][0]["status"] == "imported"
    assert again == {
        "imported": 0,
        "duplicates": 1,
        "invalid": 0,
        "results": [
            {
                "index": 0,
                "externalId": "ext-1",
                "status": "duplicate",
                "callId": first["results"][0]["callId"],
                "errors": [],
            }
        ],
    }
    assert [r["status"] for r in batch["results"]] == ["duplicate", "imported", "duplicate"]
    assert batch["results"][2]["callId"] == batch["results"][1]["callId"]
    logs = client.get("/api/v1/conversation", params={"limit": 100}).json()["data"]
    assert logs["pagination"]["total"] == 2
    assert sorted(log["callId"] for log in logs["logs"]) == sorted(
        {first["results"][0]["callId"], batch["results"][1]["callId"]}
    )


def test_external_ids_are_per_organization(
    client: TestClient, anon_client: TestClient, other_org: Org
) -> None:
    assert client.post(URL, json=import_call(3)).json()["data"]["imported"] == 1
    theirs = anon_client.post(URL, json=import_call(3), headers=other_org.headers).json()["data"]
    assert theirs["imported"] == 1


def test_one_call_with_an_unknown_agent_is_refused(client: TestClient) -> None:
    r = client.post(URL, json=import_call(9, agentId="b" * 24))
    assert r.status_code == 400
    assert "is not an agent of this organization: list them with GET /agent" in r.json()["errors"][0]


def test_an_invalid_call_lists_every_problem(client: TestClient) -> None:
    bad = {
        "externalId": "",
        "type": "pigeon",
        "callCost": -1,
        "startedAt": "not a date",
        "transcript": [{"role": "bot", "content": "hi"}, {"role": "user"}],
        "colour": "blue",
    }
    r = client.post(URL, json=bad)
    assert r.status_code == 400
    errors = r.json()["errors"]
    text = "\n".join(errors)
    for expected in (
        "colour is not a field",
        "externalId must not be empty",
        "type is 'pigeon': use one of",
        "callCost must be a number of credits, zero or more",
        "startedAt",
        "transcript[0].role is 'bot': use one of user, agent",
        "transcript[1].content is required: what was said",
    ):
        assert expected in text, (expected, errors)
    assert len(errors) == 7
    assert client.get("/api/v1/conversation").json()["data"]["pagination"]["total"] == 0


def test_a_batch_reports_each_call_and_imports_the_valid_ones(client: TestClient) -> None:
    r = client.post(
        BATCH,
        json={
            "calls": [import_call(4), {"transcript": []}, {"externalId": 5}, import_call(5, agentId="a" * 24)]
        },
    )
    assert r.status_code == 200
    data = r.json()["data"]
    assert (data["imported"], data["duplicates"], data["invalid"]) == (1, 0, 3)
    results = data["results"]
    assert results[0]["status"] == "imported"
    assert results[1]["errors"] == [
        "calls[1].externalId is required: the call's id on the stack it comes from (importing it again "
        "with the same externalId does not duplicate it)."
    ]
    assert results[2]["errors"] == ["calls[2].externalId must be a string."]
    assert "is not an agent of this organization" in results[3]["errors"][0]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"calls": []}, "calls must be a list of 1 to 1000 calls"),
        (
            {"calls": [import_call(i) for i in range(1001)]},
            "calls lists 1001 calls; at most 1000 per request",
        ),
        ([import_call(0)], "The request body must be a JSON object"),
        (import_call(0), "Unknown field externalId"),
        ({"calls": [import_call(0), "nonsense"]}, "calls[1] is not an object: each call is a JSON object"),
    ],
)
def test_batches_of_the_wrong_size_are_refused(client: TestClient, body: object, message: str) -> None:
    r = client.post(BATCH, json=body)
    assert r.status_code == 400
    assert message in r.json()["errors"][0]


def test_times_default_from_the_transcript_and_the_duration(client: TestClient) -> None:
    call = import_call(6)
    del call["startedAt"], call["endedAt"]
    call["duration"] = 30
    data = client.post(URL, json=call).json()["data"]
    shown = client.get(f"/api/v1/conversation/{data['results'][0]['callId']}").json()["data"]
    assert shown["startedAt"] == "2026-11-30T09:06:01.000Z"  # the first turn
    assert shown["endedAt"] == "2026-11-30T09:06:31.000Z"
    assert shown["duration"] == 30


def test_imported_calls_are_analysed_like_native_ones(
    db: Database,
    org: Org,
    jobs_client: TestClient,
    queue: MemoryQueue,
    fake_engine: FakeEngine,  # noqa: F811
) -> None:
    agent_id = make_agent(db, org.id)
    data = jobs_client.post(BATCH, json={"calls": [import_call(7, agentId=agent_id), import_call(8)]}).json()[
        "data"
    ]
    assert data["imported"] == 2
    assert len(queue.pending()) == 2  # enqueued after the commit, like a call that ends
    assert queue.run_pending() == 2
    first = jobs_client.get(f"/api/v1/conversation/{data['results'][0]['callId']}").json()["data"]
    analytics = first["postCallAnalytics"]
    assert analytics["status"] == "completed"
    assert analytics["dispositionMetrics"][0]["identifier"] == "user_interested"
    assert analytics["dispositionMetrics"][0]["value"] == "yes"  # the fake engine's first choice
    found = jobs_client.get("/api/v1/conversation", params={"metric.user_interested": "yes"}).json()["data"]
    assert [log["callId"] for log in found["logs"]] == [first["callId"]]


def test_an_end_before_the_start_is_refused_and_whole_float_times_are_accepted(client: TestClient) -> None:
    backwards = import_call(10, startedAt="2026-11-30T10:00:00Z", endedAt="2026-11-30T09:00:00Z")
    r = client.post(URL, json=backwards)
    assert r.status_code == 400
    assert r.json()["errors"] == ["endedAt is before startedAt: swap them, or check their time zones."]
    batch = client.post(BATCH, json={"calls": [backwards]}).json()["data"]
    assert batch["results"][0]["errors"] == [
        "calls[0]: endedAt is before startedAt: swap them, or check their time zones."
    ]
    floats = import_call(11, startedAt=1796029200000.0, endedAt=1796029290000.0)
    assert client.post(URL, json=floats).json()["data"]["imported"] == 1


def test_imported_calls_emit_the_post_conversation_webhook(
    client: TestClient, db: Database, org: Org
) -> None:
    from sqlalchemy import select

    from dispo.store.tables import webhook_deliveries

    agent_id = make_agent(db, org.id)
    hook = client.post(
        "/api/v1/webhook",
        json={
            "endpoint": "https://crm.example.com/hook",
            "events": [{"agentId": agent_id, "eventType": "post-conversation"}],
        },
    )
    assert hook.status_code == 201, hook.text
    webhook_id = hook.json()["data"]["_id"]
    try:
        data = client.post(
            BATCH, json={"calls": [import_call(12, agentId=agent_id), import_call(13)]}
        ).json()["data"]
        assert data["imported"] == 2
        with db.read() as conn:
            rows = conn.execute(
                select(webhook_deliveries.c.event_type).where(webhook_deliveries.c.webhook_id == webhook_id)
            ).all()
        assert [r.event_type for r in rows] == ["post-conversation"]  # the call with the agent only
    finally:
        with db.write() as conn:  # the relay of the webhook tests serves the shared database
            conn.execute(
                webhook_deliveries.update()
                .where(webhook_deliveries.c.webhook_id == webhook_id)
                .values(status="dead")
            )
