"""Webhooks: the API, the outbox written with each change, and real deliveries to a real HTTP
receiver on loopback: retries, dead letters, replays, signatures, secret rotation, and a server
killed with SIGKILL between a call's end and its delivery."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dispo.analytics.jobs import Jobs, MemoryQueue
from dispo.api.app import create_app
from dispo.config import Settings
from dispo.store import orgs
from dispo.store import webhooks as webhook_store
from dispo.store.database import Database
from dispo.store.migrate import migrate
from dispo.store.tables import webhook_deliveries
from dispo.webhooks import schedule, verify
from dispo.webhooks.service import Webhooks
from tests.analytics_fakes import BACKEND, FakeEngine, end_call, fake_engine, make_agent, wait_for
from tests.conftest import Org

__all__ = ["fake_engine"]  # the fixture, used by name

API = "/api/v1"
ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------------
# A receiver on loopback


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.body)
        return result


@dataclass
class Receiver:
    """An HTTP server in a thread that records every POST and answers with the next status of
    ``statuses`` (then 200). Not listening until :meth:`start`: connections are refused."""

    port: int = field(default_factory=_free_port)
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received.append(Received(dict(self.headers.items()), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                answer = json.dumps({"ok": status < 300, "n": len(receiver.received)}).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture(autouse=True)
def _no_deliveries_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """The relay serves the whole database, which the tests of one backend share: what a test
    leaves pending would be sent (to its example.com endpoints) by the next test's relay."""
    if "db" not in request.fixturenames:  # a test with a database of its own
        yield
        return
    db: Database = request.getfixturevalue("db")

    def settle() -> None:
        with db.write() as conn:
            conn.execute(
                webhook_deliveries.update()
                .where(webhook_deliveries.c.status.in_(("pending", "queued", "running")))
                .values(status="dead")
            )

    settle()
    yield
    settle()


def fast_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """A short retry schedule: attempts a few tens of milliseconds apart."""
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "webhook_retry_base_seconds": 0.02,
        "webhook_retry_jitter": 0.0,
        "webhook_max_attempts": 6,
        "webhook_timeout_seconds": 5.0,
        "webhook_poll_seconds": 0.05,
        **overrides,
    }
    return Settings(**values)


def pump(hooks: Webhooks, until: Callable[[], bool], *, timeout: float = 30.0, what: str = "it") -> None:
    """Relay and run the memory queue's jobs until ``until()``."""
    queue = hooks.queue
    assert isinstance(queue, MemoryQueue)

    def step() -> bool:
        hooks.sweep()
        queue.run_pending()
        return until()

    wait_for(step, timeout=timeout, what=what)


def subscribe(client: TestClient, agent_id: str, url: str, *events: str) -> dict[str, Any]:
    body = {
        "endpoint": url,
        "description": "CRM",
        "events": [{"agentId": agent_id, "eventType": e} for e in events or ("post-conversation",)],
    }
    response = client.post(f"{API}/webhook", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def deliveries(client: TestClient, webhook_id: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"{API}/webhook/{webhook_id}/deliveries", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()["data"]["deliveries"]
    return result


def delivery_rows(db: Database, webhook_id: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        stmt = select(webhook_deliveries).where(webhook_deliveries.c.webhook_id == webhook_id)
        return [dict(r) for r in conn.execute(stmt.order_by(webhook_deliveries.c.pk)).mappings()]


# ------------------------------------------------------------------------------------------
# The API: CRUD, validation, organizations


def test_create_get_list_update_delete(client: TestClient, db: Database, org: Org) -> None:
    agent = make_agent(db, org.id)
    other = make_agent(db, org.id)
    created = subscribe(
        client, agent, "https://crm.example.com/hook", "post-conversation", "analytics-completed"
    )
    assert created["secret"].startswith("whsec_")
    assert len(created["secret"]) > 40
    assert created["events"] == [
        {"agentId": agent, "eventType": "analytics-completed"},
        {"agentId": agent, "eventType": "post-conversation"},
    ]
    webhook_id = created["_id"]
    got = client.get(f"{API}/webhook/{webhook_id}").json()["data"]
    assert "secret" not in got
    assert got["endpoint"] == "https://crm.example.com/hook"
    assert [w["_id"] for w in client.get(f"{API}/webhook").json()["data"]] == [webhook_id]

    patched = client.patch(
        f"{API}/webhook/{webhook_id}",
        json={"description": "Renamed", "events": [{"agentId": other, "eventType": "pre-conversation"}]},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["description"] == "Renamed"
    assert patched.json()["data"]["events"] == [{"agentId": other, "eventType": "pre-conversation"}]
    assert patched.json()["data"]["endpoint"] == "https://crm.example.com/hook"  # unchanged

    assert client.delete(f"{API}/webhook/{webhook_id}").json()["data"] == {"_id": webhook_id, "deleted": True}
    assert client.get(f"{API}/webhook/{webhook_id}").status_code == 404
    assert client.get(f"{API}/webhook").json()["data"] == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"events": []}, "endpoint is required"),
        ({"endpoint": "ftp://x.example.com/h", "events": "E"}, "is not an http or https URL"),
        ({"endpoint": "not a url", "events": "E"}, "is not an http or https URL"),
        ({"endpoint": "https://x.example.com"}, "events is required"),
        ({"endpoint": "https://x.example.com", "events": []}, "events must be a non-empty list"),
        (
            {"endpoint": "https://x.example.com", "events": [{"agentId": "A", "eventType": "call-ended"}]},
            "eventType 'call-ended' is not an event: use one of pre-conversation",
        ),
        ({"endpoint": "https://x.example.com", "events": "E", "secret": "mine"}, "Unknown field secret"),
    ],
)
def test_bad_bodies_are_400_with_the_fix(
    client: TestClient, db: Database, org: Org, body: dict[str, Any], expected: str
) -> None:
    agent = make_agent(db, org.id)
    if body.get("events") == "E":
        body = {**body, "events": [{"agentId": agent, "eventType": "post-conversation"}]}
    response = client.post(f"{API}/webhook", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["status"] is False
    assert any(expected in e for e in response.json()["errors"]), response.json()


def test_unknown_agents_and_webhooks_are_404(client: TestClient, db: Database, org: Org) -> None:
    missing = "0" * 24
    response = client.post(
        f"{API}/webhook",
        json={
            "endpoint": "https://x.example.com",
            "events": [{"agentId": missing, "eventType": "post-conversation"}],
        },
    )
    assert response.status_code == 404
    assert f"No agent {missing} in this organization" in response.json()["errors"][0]
    for method, path in [
        ("GET", f"/webhook/{missing}"),
        ("DELETE", f"/webhook/{missing}"),
        ("GET", f"/webhook/{missing}/deliveries"),
        ("POST", f"/webhook/{missing}/rotate-secret"),
        ("POST", f"/webhook/nonsense/deliveries/{missing}/replay"),
    ]:
        answer = client.request(method, f"{API}{path}")
        assert answer.status_code == 404, (method, path, answer.text)
        assert "GET /webhook" in answer.json()["errors"][0]
    assert client.patch(f"{API}/webhook/{missing}", json={"description": "x"}).status_code == 404
    webhook = subscribe(client, make_agent(db, org.id), "https://x.example.com")
    bad_status = client.get(f"{API}/webhook/{webhook['_id']}/deliveries", params={"status": "lost"})
    assert bad_status.status_code == 400
    assert "not a delivery status" in bad_status.json()["errors"][0]


def test_another_organization_sees_and_replays_nothing(
    client: TestClient, db: Database, settings: Settings, org: Org, other_org: Org
) -> None:
    agent = make_agent(db, org.id)
    webhook = subscribe(client, agent, "https://x.example.com")
    end_call(db, org.id, agent)
    delivery = delivery_rows(db, webhook["_id"])[0]
    with TestClient(create_app(settings, db), headers=other_org.headers) as theirs:
        assert theirs.get(f"{API}/webhook").json()["data"] == []
        wid = webhook["_id"]
        for method, path in [
            ("GET", f"/webhook/{wid}"),
            ("DELETE", f"/webhook/{wid}"),
            ("GET", f"/webhook/{wid}/deliveries"),
            ("POST", f"/webhook/{wid}/rotate-secret"),
            ("POST", f"/webhook/{wid}/deliveries/{delivery['id']}/replay"),
        ]:
            assert theirs.request(method, f"{API}{path}").status_code == 404, (method, path)
        assert theirs.post(f"{API}/webhook/{wid}/replay", json={}).status_code == 404
        # Nor can they subscribe to our agent.
        response = theirs.post(
            f"{API}/webhook",
            json={
                "endpoint": "https://evil.example.com",
                "events": [{"agentId": agent, "eventType": "post-conversation"}],
            },
        )
        assert response.status_code == 404
    assert client.get(f"{API}/webhook/{webhook['_id']}").status_code == 200


# ------------------------------------------------------------------------------------------
# The outbox: written in the transaction of the change


def test_a_call_that_ends_writes_one_delivery_per_subscribed_webhook(
    client: TestClient, db: Database, org: Org
) -> None:
    agent, other_agent = make_agent(db, org.id), make_agent(db, org.id)
    first = subscribe(client, agent, "https://a.example.com")
    second = subscribe(client, agent, "https://b.example.com", "post-conversation", "pre-conversation")
    unrelated = subscribe(client, other_agent, "https://c.example.com")
    end_call(db, org.id, agent)
    a, b = delivery_rows(db, first["_id"]), delivery_rows(db, second["_id"])
    assert len(a) == len(b) == 1
    assert delivery_rows(db, unrelated["_id"]) == []
    assert a[0]["status"] == "pending"
    assert a[0]["event_type"] == "post-conversation"
    assert a[0]["event_id"] == b[0]["event_id"]
    assert a[0]["id"] != b[0]["id"]


def test_a_rolled_back_change_leaves_no_delivery(client: TestClient, db: Database, org: Org) -> None:
    agent = make_agent(db, org.id)
    webhook = subscribe(client, agent, "https://a.example.com")
    written: list[int] = []

    def change_that_fails() -> None:
        with db.write() as conn:
            written.append(webhook_store.emit(conn, org.id, agent, "post-conversation"))
            raise RuntimeError("the change fails after the event was written")

    with pytest.raises(RuntimeError):
        change_that_fails()
    assert written == [1]
    assert delivery_rows(db, webhook["_id"]) == []


def test_a_chat_emits_pre_and_post_conversation(db: Database, org: Org, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, agent_brain="scripted")
    with TestClient(create_app(settings, db), headers=org.headers) as client:
        agent = client.post(f"{API}/agent", json={"name": "Chatty"}).json()["data"]
        webhook = subscribe(client, agent, "https://a.example.com", "pre-conversation", "post-conversation")
        chat = client.post(f"{API}/conversation/chat", json={"agentId": agent}).json()["data"]
        assert [r["event_type"] for r in delivery_rows(db, webhook["_id"])] == ["pre-conversation"]
        client.post(f"{API}/conversation/chat/{chat['conversationId']}/end")
    rows = delivery_rows(db, webhook["_id"])
    assert [r["event_type"] for r in rows] == ["pre-conversation", "post-conversation"]
    assert rows[0]["call_pk"] == rows[1]["call_pk"]


def test_an_outbound_call_emits_pre_and_post_conversation(
    db: Database, org: Org, settings: Settings, receiver: Receiver, tmp_path: Path
) -> None:
    from dispo.runtime.dialogue import ScriptedBrain
    from dispo.runtime.runner import CallRunner
    from dispo.telephony.simulated import SimulatedProvider

    runner = CallRunner(
        db,
        settings,
        brain_factory=lambda _p: ScriptedBrain(latency_ms=5),
        providers={"test": SimulatedProvider()},
    )
    receiver.start()
    with TestClient(create_app(settings, db, runner=runner), headers=org.headers) as client:
        agent = client.post(f"{API}/agent", json={"name": "Caller", "globalPrompt": "Sell."}).json()["data"]
        webhook = subscribe(client, agent, receiver.url, "pre-conversation", "post-conversation")
        body = {"agentId": agent, "phoneNumber": "+15005550006"}
        call_id = client.post(f"{API}/conversation/outbound", json=body).json()["data"]["conversationId"]
        wait_for(lambda: len(delivery_rows(db, webhook["_id"])) == 2, what="the call to end")
    assert [r["event_type"] for r in delivery_rows(db, webhook["_id"])] == [
        "pre-conversation",
        "post-conversation",
    ]
    pump(Webhooks(fast_settings(tmp_path), db, queue=MemoryQueue()), lambda: len(receiver.received) == 2)
    by_type = {r.payload["eventType"]: r.payload for r in receiver.received}
    assert by_type["pre-conversation"]["data"]["callId"] == call_id
    assert by_type["post-conversation"]["data"]["status"] == "completed"


def test_a_stopped_campaign_emits_campaign_completed(
    client: TestClient, db: Database, org: Org, tmp_path: Path, receiver: Receiver
) -> None:
    from dispo.store import phone_numbers as number_store
    from tests.test_audiences_api import create as create_audience

    with db.write() as conn:
        number, _ = number_store.add_number(conn, org.id, "+14155550100")
    agent = client.post(f"{API}/agent", json={"name": "Caller"}).json()["data"]
    webhook = subscribe(client, agent, receiver.url, "campaign-completed")
    body = {
        "name": "Spring",
        "agentId": agent,
        "audienceId": create_audience(client),
        "phoneNumberIds": [number["id"]],
    }
    campaign_id = client.post(f"{API}/campaign", json=body).json()["data"]["_id"]
    assert client.post(f"{API}/campaign/{campaign_id}/start").status_code == 202
    assert delivery_rows(db, webhook["_id"]) == []
    assert client.post(f"{API}/campaign/{campaign_id}/stop").status_code == 200
    [row] = delivery_rows(db, webhook["_id"])
    assert row["campaign_id"] == campaign_id
    receiver.start()
    pump(Webhooks(fast_settings(tmp_path), db, queue=MemoryQueue()), lambda: len(receiver.received) == 1)
    data = receiver.received[0].payload["data"]
    assert data["campaign"]["_id"] == campaign_id
    assert data["campaign"]["status"] == "completed"
    assert set(data["metrics"]) == {"total_participants", "contacts_called", "contacts_connected"}


def test_a_delivery_whose_worker_died_is_sent_again_after_its_lease(
    client: TestClient, db: Database, org: Org, tmp_path: Path, receiver: Receiver
) -> None:
    from dispo.store import webhook_deliveries as delivery_store
    from dispo.timeutil import now_ms

    receiver.start()
    agent = make_agent(db, org.id)
    webhook = subscribe(client, agent, receiver.url)
    queue = MemoryQueue()
    hooks = Webhooks(fast_settings(tmp_path, webhook_lease_seconds=0.3), db, queue=queue)
    end_call(db, org.id, agent)
    assert hooks.relay() == 1
    [pk] = queue.pending()
    with db.write() as conn:  # a worker takes it, then dies before it records anything
        assert delivery_store.claim(conn, pk, now_ms()) is not None
    queue.run_pending()  # the queue's copy of the job finds it taken: nothing happens
    assert receiver.received == []
    assert delivery_rows(db, webhook["_id"])[0]["status"] == "running"
    pump(hooks, lambda: delivery_rows(db, webhook["_id"])[0]["status"] == "delivered", what="the re-delivery")
    assert len(receiver.received) == 1
    assert delivery_rows(db, webhook["_id"])[0]["attempts"] == 2


# ------------------------------------------------------------------------------------------
# Real deliveries


def test_a_receiver_that_fails_three_times_gets_the_fourth_through_huey(
    client: TestClient, db: Database, org: Org, tmp_path: Path, receiver: Receiver
) -> None:
    """Through the real queue (Huey on SQLite, worker threads, the relay thread)."""
    receiver.statuses = [500, 502, 503]
    receiver.start()
    agent = make_agent(db, org.id)
    webhook = subscribe(client, agent, receiver.url)
    hooks = Webhooks(fast_settings(tmp_path), db)
    hooks.start(2)
    try:
        end_call(db, org.id, agent)
        wait_for(lambda: delivery_rows(db, webhook["_id"])[0]["status"] == "delivered", what="the delivery")
    finally:
        hooks.stop()
    assert len(receiver.received) == 4
    keys = {r.headers["Idempotency-Key"] for r in receiver.received}
    assert keys == {receiver.received[0].payload["idempotencyKey"]}  # stable across retries
    assert len({r.body for r in receiver.received}) == 1  # the same bytes every time
    for r in receiver.received:
        assert verify(webhook["secret"], r.body, r.headers["X-Dispo-Timestamp"], r.headers["X-Signature"])
    payload = receiver.received[0].payload
    assert payload["eventType"] == "post-conversation"
    assert payload["webhookId"] == webhook["_id"]
    assert payload["data"]["agentId"] == agent
    assert payload["data"]["status"] == "completed"
    assert [t["role"] for t in payload["data"]["transcript"]] == ["agent", "user"]
    [logged] = deliveries(client, webhook["_id"])
    assert logged["status"] == "delivered"
    assert logged["attempts"] == 4
    assert [a["statusCode"] for a in logged["attemptLog"]] == [500, 502, 503, 200]
    assert [a["outcome"] for a in logged["attemptLog"]] == ["failed"] * 3 + ["delivered"]
    assert all(a["latencyMs"] is not None and a["latencyMs"] >= 0 for a in logged["attemptLog"])
    assert '"ok": false' in logged["attemptLog"][0]["responseExcerpt"]
    assert logged["attemptLog"][0]["error"] == "The endpoint answered HTTP 500."


def test_an_endpoint_that_stays_down_is_dead_lettered_then_replayed(
    client: TestClient, db: Database, org: Org, tmp_path: Path, receiver: Receiver
) -> None:
    agent = make_agent(db, org.id)
    webhook = subscribe(client, agent, receiver.url)  # nothing listens there yet
    hooks = Webhooks(fast_settings(tmp_path, webhook_max_attempts=3), db, queue=MemoryQueue())
    end_call(db, org.id, agent)
    end_call(db, org.id, agent)
    pump(
        hooks,
        lambda: all(r["status"] == "dead" for r in delivery_rows(db, webhook["_id"])),
        what="dead letters",
    )
    dead = deliveries(client, webhook["_id"], status="dead")
    assert len(dead) == 2
    assert deliveries(client, webhook["_id"], status="delivered") == []
    assert [a["outcome"] for a in dead[0]["attemptLog"]] == ["failed"] * 3
    assert all("ConnectError" in a["error"] and a["statusCode"] is None for a in dead[0]["attemptLog"])

    receiver.start()  # the endpoint comes back; one dead letter is replayed by hand...
    replay = client.post(f"{API}/webhook/{webhook['_id']}/deliveries/{dead[0]['_id']}/replay")
    assert replay.status_code == 200
    assert replay.json()["data"] == {"replayed": 1}
    again = client.post(f"{API}/webhook/{webhook['_id']}/deliveries/{dead[0]['_id']}/replay")
    assert again.status_code == 409
    assert "only delivered or dead deliveries" in again.json()["errors"][0]
    pump(hooks, lambda: len(receiver.received) == 1, what="the replay")
    assert receiver.received[0].headers["Idempotency-Key"] == dead[0]["idempotencyKey"]
    # ... and the rest in bulk.
    bulk = client.post(f"{API}/webhook/{webhook['_id']}/replay", json={"status": ["dead"]})
    assert bulk.json()["data"] == {"replayed": 1}
    pump(hooks, lambda: len(receiver.received) == 2, what="the bulk replay")
    assert {r.headers["Idempotency-Key"] for r in receiver.received} == {d["_id"] for d in dead}
    assert all(r["status"] == "delivered" for r in delivery_rows(db, webhook["_id"]))
    replayed = next(d for d in deliveries(client, webhook["_id"]) if d["_id"] == dead[0]["_id"])
    assert [a["attempt"] for a in replayed["attemptLog"]] == [1, 2, 3, 4]  # the log keeps the first round


def test_a_bulk_replay_takes_a_date_range(client: TestClient, db: Database, org: Org, tmp_path: Path) -> None:
    agent = make_agent(db, org.id)
    webhook = subscribe(client, agent, f"http://127.0.0.1:{_free_port()}/down")
    hooks = Webhooks(fast_settings(tmp_path, webhook_max_attempts=1), db, queue=MemoryQueue())
    end_call(db, org.id, agent)
    pump(hooks, lambda: delivery_rows(db, webhook["_id"])[0]["status"] == "dead", what="a dead letter")
    url = f"{API}/webhook/{webhook['_id']}/replay"
    assert client.post(url, json={"dateTo": "2020-01-01"}).json()["data"] == {"replayed": 0}
    bad = client.post(url, json={"dateFrom": "2026-02-01", "dateTo": "2026-01-01"})
    assert bad.status_code == 400
    assert "swap them" in bad.json()["errors"][0]
    assert client.post(url, json={"status": ["pending"]}).status_code == 400
    assert client.post(url, json={"dateFrom": "2020-01-01"}).json()["data"] == {"replayed": 1}


def test_the_documented_recipe_verifies_real_deliveries(
    client: TestClient, db: Database, org: Org, tmp_path: Path, receiver: Receiver
) -> None:
    text = (ROOT / "docs" / "webhooks.md").read_text()
    recipe = re.search(r"<!-- verify-recipe -->\n```python\n(.*?)```", text, re.S)
    assert recipe, "docs/webhooks.md lost its verification recipe"
    namespace: dict[str, Any] = {}
    exec(recipe.group(1), namespace)
    check = namespace["verify_dispo_webhook"]

    receiver.start()
    agent = make_agent(db, org.id)
    webhook = subscribe(client, agent, receiver.url)
    hooks = Webhooks(fast_settings(tmp_path), db, queue=MemoryQueue())
    end_call(db, org.id, agent)
    pump(hooks, lambda: len(receiver.received) == 1, what="a delivery")
    got = receiver.received[0]
    assert check(webhook["secret"], got.headers, got.body)
    assert not check(webhook["secret"], got.headers, got.body.replace(b"completed", b"failed"))
    assert not check("whsec_wrong", got.headers, got.body)
    stale = {**got.headers, "X-Dispo-Timestamp": str(int(got.headers["X-Dispo-Timestamp"]) - 3600)}
    assert not check(webhook["secret"], stale, got.body)
    # Atoms' signature, for receivers written for Atoms: the body alone.
    import hashlib
    import hmac

    atoms = hmac.new(webhook["secret"].encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["X-Signature-Body"] == atoms


def test_a_rotated_secret_signs_with_both_during_the_grace_period(
    client: TestClient, db: Database, org: Org, tmp_path: Path, receiver: Receiver
) -> None:
    receiver.start()
    agent = make_agent(db, org.id)
    webhook = subscribe(client, agent, receiver.url)
    rotated = client.post(f"{API}/webhook/{webhook['_id']}/rotate-secret")
    assert rotated.status_code == 200
    new = rotated.json()["data"]
    assert new["secret"] != webhook["secret"]
    assert new["previousSecretValidUntil"]
    hooks = Webhooks(fast_settings(tmp_path), db, queue=MemoryQueue())
    end_call(db, org.id, agent)
    pump(hooks, lambda: len(receiver.received) == 1, what="a delivery")
    got = receiver.received[0]
    ts = got.headers["X-Dispo-Timestamp"]
    assert verify(new["secret"], got.body, ts, got.headers["X-Signature"])
    assert verify(webhook["secret"], got.body, ts, got.headers["X-Signature-Previous"])
    assert not verify(webhook["secret"], got.body, ts, got.headers["X-Signature"])


def test_analytics_completed_carries_the_summary_and_metrics(
    client: TestClient,
    db: Database,
    org: Org,
    tmp_path: Path,
    receiver: Receiver,
    fake_engine: FakeEngine,
) -> None:
    receiver.start()
    agent = make_agent(db, org.id)
    webhook = subscribe(client, agent, receiver.url, "analytics-completed")
    settings = fast_settings(tmp_path)
    jobs = Jobs(settings, db, backend=BACKEND, queue=MemoryQueue())
    pk = end_call(db, org.id, agent)
    assert delivery_rows(db, webhook["_id"]) == []  # only post-conversation so far, not subscribed
    jobs.enqueue(pk)
    jobs.queue.run_pending()  # type: ignore[attr-defined]
    [row] = delivery_rows(db, webhook["_id"])
    assert row["event_type"] == "analytics-completed"
    assert row["call_pk"] == pk
    pump(Webhooks(settings, db, queue=MemoryQueue()), lambda: len(receiver.received) == 1, what="a delivery")
    data = receiver.received[0].payload["data"]
    assert data["summary"].startswith("2 turns")
    assert data["dispositionMetrics"][0]["identifier"] == "user_interested"
    assert data["call"]["postCallAnalytics"]["status"] == "completed"


def test_the_default_schedule_is_six_or_more_attempts_over_an_hour_or_more() -> None:
    settings = Settings()
    delays = schedule.nominal_schedule(settings)
    assert settings.webhook_max_attempts >= 6
    assert len(delays) == settings.webhook_max_attempts - 1
    assert sum(delays) >= 3600
    assert delays == sorted(delays)
    import random

    rng = random.Random(1)
    jittered = [schedule.retry_delay(settings, n, rng) for n in range(1, settings.webhook_max_attempts)]
    assert all(d <= j <= d * 1.25 for d, j in zip(delays, jittered, strict=True))
    assert jittered != delays


# ------------------------------------------------------------------------------------------
# A real server, killed with SIGKILL between a call's end and the delivery

SERVE = "from dispo.cli import app; app(['serve'], prog_name='dispo')"


def _serve(tmp_path: Path, port: int, name: str, **env: str) -> subprocess.Popen[bytes]:
    full = {
        **os.environ,
        "DISPO_DATA_DIR": str(tmp_path),
        "DISPO_PORT": str(port),
        "DISPO_LLM_BACKEND": "scripted",
        "DISPO_LLM_ISOLATION": "none",
        "DISPO_AGENT_BRAIN": "scripted",
        "DISPO_QUEUE_URL": "",
        "DISPO_LOG_LEVEL": "info",
        "DISPO_WEBHOOK_RETRY_BASE_SECONDS": "0.1",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        **env,
    }
    full.pop("DISPO_DATABASE_URL", None)
    with (tmp_path / f"{name}.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE], env=full, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )

    def up() -> bool:
        assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=60, what=f"`dispo serve` ({name}) to answer")
    return proc


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)


def test_a_server_killed_after_a_call_ends_delivers_after_restart(tmp_path: Path, receiver: Receiver) -> None:
    """SQLite only: the server is a separate process with its own data directory."""
    db = Database(f"sqlite:///{tmp_path / 'dispo.db'}")
    migrate(db)
    with db.write() as conn:
        org_id = orgs.create_org(conn, "Crash test")
        key = orgs.create_key(conn, org_id, name="test").secret
    receiver.start()
    port = _free_port()
    api = f"http://127.0.0.1:{port}{API}"
    headers = {"Authorization": f"Bearer {key}"}
    # The first server relays only at start and then every 10 minutes: nothing is delivered
    # before it is killed.
    first = _serve(tmp_path, port, "first", DISPO_WEBHOOK_POLL_SECONDS="600")
    try:
        agent = httpx.post(f"{api}/agent", json={"name": "Sales", "globalPrompt": "Sell."}, headers=headers)
        agent_id = agent.json()["data"]  # POST /agent answers with the new id, as Atoms does
        body = {"endpoint": receiver.url, "events": [{"agentId": agent_id, "eventType": "post-conversation"}]}
        webhook = httpx.post(f"{api}/webhook", json=body, headers=headers).json()["data"]
        chat = httpx.post(f"{api}/conversation/chat", json={"agentId": agent_id}, headers=headers, timeout=30)
        call_id = chat.json()["data"]["conversationId"]
        ended = httpx.post(f"{api}/conversation/chat/{call_id}/end", headers=headers, timeout=30)
        assert ended.status_code == 200, ended.text
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        _kill(first)
    [row] = delivery_rows(db, webhook["_id"])
    assert row["status"] == "pending"
    assert receiver.received == []
    second = _serve(tmp_path, port, "second", DISPO_WEBHOOK_POLL_SECONDS="0.2")
    try:
        wait_for(
            lambda: delivery_rows(db, webhook["_id"])[0]["status"] == "delivered",
            timeout=60,
            what=f"the delivery after restart; log:\n{(tmp_path / 'second.log').read_text()[-3000:]}",
        )
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(timeout=15)
        except subprocess.TimeoutExpired:
            _kill(second)
    [got] = receiver.received
    assert got.payload["data"]["callId"] == call_id
    assert got.headers["Idempotency-Key"] == row["id"]
    assert verify(webhook["secret"], got.body, got.headers["X-Dispo-Timestamp"], got.headers["X-Signature"])
    db.dispose()
