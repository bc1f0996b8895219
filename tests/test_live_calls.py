"""POST /conversation/outbound and chat calls over HTTP and a WebSocket (scripted agent)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dispo.analytics.jobs import Jobs, MemoryQueue
from dispo.api.app import create_app
from dispo.config import Settings
from dispo.llm.testing import Script, ScriptedBackend
from dispo.runtime.dialogue import ScriptedBrain
from dispo.runtime.runner import CallRunner
from dispo.store.database import Database
from dispo.store.tables import calls
from dispo.telephony.simulated import SimulatedProvider
from tests.conftest import Org

API = "/api/v1"


@pytest.fixture
def provider() -> SimulatedProvider:
    return SimulatedProvider()


@pytest.fixture
def live(db: Database, settings: Settings, org: Org, provider: SimulatedProvider) -> Iterator[TestClient]:
    runner = CallRunner(
        db, settings, brain_factory=lambda _p: ScriptedBrain(latency_ms=5), providers={"test": provider}
    )
    with TestClient(create_app(settings, db, runner=runner), headers=org.headers) as c:
        yield c


def _agent(client: TestClient, **extra: Any) -> str:
    body = {"name": "Caller", "globalPrompt": "You sell solar panels.", **extra}
    response = client.post(f"{API}/agent", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["data"])


def _wait_call(client: TestClient, call_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        data: dict[str, Any] = client.get(f"{API}/conversation/{call_id}").json()["data"]
        if data["status"] not in ("in_queue", "in_progress"):
            return data
        assert time.monotonic() < deadline, data
        time.sleep(0.02)


def _count_calls(db: Database, org: Org) -> int:
    with db.read() as conn:
        return int(
            conn.execute(select(func.count()).select_from(calls).where(calls.c.org_id == org.id)).scalar_one()
        )


def test_outbound_places_a_call_and_logs_it(live: TestClient, provider: SimulatedProvider) -> None:
    agent_id = _agent(live)
    response = live.post(
        f"{API}/conversation/outbound",
        json={"agentId": agent_id, "phoneNumber": "+1 (500) 555-0006", "variables": {"firstName": "Asha"}},
    )
    assert response.status_code == 200, response.text
    call_id = response.json()["data"]["conversationId"]
    assert call_id.startswith("CALL-")
    data = _wait_call(live, call_id)
    assert (data["status"], data["type"], data["to"]) == ("completed", "telephony_outbound", "+15005550006")
    assert data["agentId"] == agent_id
    assert data["variables"] == {"firstName": "Asha"}
    assert data["duration"] > 0
    assert data["callCost"] == pytest.approx(data["duration"] / 60 * 1.5, abs=1e-3)
    assert data["average_agent_latency"] == 5
    lines = [f"{m['role']}: {m['content']}" for m in data["transcript"]]
    assert lines[0].startswith("agent: ")
    assert any("Asha" in line for line in lines)
    assert all("latencyMs" in m for m in data["transcript"] if m["role"] == "agent")
    assert data["postCallAnalytics"]["status"] == "pending"
    assert provider.dials["+15005550006"] == 1


@pytest.mark.parametrize(
    ("number", "status", "reason"),
    [
        ("+15005550002", "busy", "dial_no_answer"),
        ("+15005550003", "no_answer", "dial_no_answer"),
        ("+15005550001", "failed", "connection_error"),
    ],
)
def test_outbound_calls_nobody_answers(live: TestClient, number: str, status: str, reason: str) -> None:
    agent_id = _agent(live)
    call_id = live.post(
        f"{API}/conversation/outbound", json={"agentId": agent_id, "phoneNumber": number}
    ).json()["data"]["conversationId"]
    data = _wait_call(live, call_id)
    assert (data["status"], data["disconnectionReason"], data["duration"], data["transcript"]) == (
        status,
        reason,
        0,
        [],
    )


def test_outbound_refuses_bad_input_and_creates_nothing(
    live: TestClient, db: Database, org: Org, other_org: Org
) -> None:
    agent_id = _agent(live)
    before = _count_calls(db, org)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"agentId": agent_id, "phoneNumber": "12345"}, 400, "E.164"),
        ({"agentId": agent_id}, 400, "phoneNumber is required"),
        ({"agentId": agent_id, "phoneNumber": "+15005550006", "variables": ["x"]}, 400, "variables"),
        ({"agentId": agent_id, "phoneNumber": "+15005550006", "from": "x"}, 400, "Unknown field from"),
        ({"agentId": "f" * 24, "phoneNumber": "+15005550006"}, 404, "No agent"),
        ({"agentId": "nope", "phoneNumber": "+15005550006"}, 404, "No agent"),
        ({"phoneNumber": "+15005550006"}, 400, "agentId is required"),
    ]
    for body, status, words in cases:
        response = live.post(f"{API}/conversation/outbound", json=body)
        assert response.status_code == status, (body, response.text)
        assert words in " ".join(response.json()["errors"]), response.text
    foreign = live.post(f"{API}/agent", json={"name": "x"}, headers=other_org.headers).json()["data"]
    response = live.post(
        f"{API}/conversation/outbound", json={"agentId": foreign, "phoneNumber": "+15005550006"}
    )
    assert response.status_code == 404
    live.delete(f"{API}/agent/{agent_id}/archive")
    response = live.post(
        f"{API}/conversation/outbound", json={"agentId": agent_id, "phoneNumber": "+15005550006"}
    )
    assert response.status_code == 400
    assert "archived" in response.text
    assert _count_calls(db, org) == before


def test_chat_over_http(live: TestClient) -> None:
    agent_id = _agent(live, firstMessage="Hi {{name}}! Interested in solar?")
    start = live.post(f"{API}/conversation/chat", json={"agentId": agent_id, "variables": {"name": "Asha"}})
    assert start.status_code == 200, start.text
    data = start.json()["data"]
    call_id = data["conversationId"]
    assert data["messages"][0]["content"] == "Hi Asha! Interested in solar?"
    assert not data["ended"]
    reply = live.post(f"{API}/conversation/chat/{call_id}", json={"message": "Yes, I am interested."}).json()[
        "data"
    ]
    assert [m["role"] for m in reply["messages"]] == ["user", "agent"]
    assert reply["messages"][1]["latencyMs"] == 5
    mid = live.get(f"{API}/conversation/{call_id}").json()["data"]
    assert (mid["status"], mid["type"], len(mid["transcript"])) == ("in_progress", "chat", 3)
    ended = live.post(f"{API}/conversation/chat/{call_id}/end").json()["data"]
    assert (ended["ended"], ended["disconnectionReason"]) == (True, "user_hangup")
    after = live.post(f"{API}/conversation/chat/{call_id}", json={"message": "hello?"})
    assert after.status_code == 409
    assert "has ended" in after.text
    log = live.get(f"{API}/conversation/{call_id}").json()["data"]
    assert (log["status"], log["disconnectionReason"], log["from"], log["to"]) == (
        "completed",
        "user_hangup",
        None,
        None,
    )
    assert log["postCallAnalytics"]["status"] == "pending"
    listed = live.get(f"{API}/conversation", params={"callTypes": "chat", "agentIds": agent_id}).json()[
        "data"
    ]
    assert [c["callId"] for c in listed["logs"]] == [call_id]


def test_chat_ends_when_the_agent_says_goodbye(live: TestClient) -> None:
    agent_id = _agent(live)
    call_id = live.post(f"{API}/conversation/chat", json={"agentId": agent_id}).json()["data"][
        "conversationId"
    ]
    data: dict[str, Any] = {}
    for message in ("Hi", "Yes", "Asha", "Sure"):
        data = live.post(f"{API}/conversation/chat/{call_id}", json={"message": message}).json()["data"]
        if data["ended"]:
            break
    assert (data["ended"], data["disconnectionReason"]) == (True, "agent_hangup")


def test_chat_refuses_bad_input(live: TestClient) -> None:
    assert live.post(f"{API}/conversation/chat", json={"agentId": "f" * 24}).status_code == 404
    agent_id = _agent(live)
    call_id = live.post(f"{API}/conversation/chat", json={"agentId": agent_id}).json()["data"][
        "conversationId"
    ]
    assert live.post(f"{API}/conversation/chat/{call_id}", json={"message": ""}).status_code == 400
    assert live.post(f"{API}/conversation/chat/CALL-1-abcdef", json={"message": "x"}).status_code == 404
    assert (
        live.post(f"{API}/conversation/chat/CALL-1768807723178-4561d0", json={"message": "x"}).status_code
        == 404
    )


def test_an_idle_chat_times_out(
    db: Database, org: Org, provider: SimulatedProvider, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dispo.runtime import chat

    # Without the app's periodic sweep: its next message ends the chat, and sweep_idle the other.
    monkeypatch.setattr(chat.IdleSweeper, "start", lambda _self: None)
    settings = Settings(data_dir=tmp_path, call_silence_timeout_seconds=0.2)
    runner = CallRunner(db, settings, brain_factory=lambda _p: ScriptedBrain(), providers={"test": provider})
    with TestClient(create_app(settings, db, runner=runner), headers=org.headers) as live:
        agent_id = _agent(live)
        first = live.post(f"{API}/conversation/chat", json={"agentId": agent_id}).json()["data"][
            "conversationId"
        ]
        second = live.post(f"{API}/conversation/chat", json={"agentId": agent_id}).json()["data"][
            "conversationId"
        ]
        time.sleep(0.3)
        late = live.post(f"{API}/conversation/chat/{first}", json={"message": "still there?"})
        assert late.status_code == 409
        assert "timeout" in late.text
        assert chat.sweep_idle(db, settings, runner.jobs) >= 1
        for call_id in (first, second):
            data = live.get(f"{API}/conversation/{call_id}").json()["data"]
            assert (data["status"], data["disconnectionReason"]) == ("completed", "timeout")
            assert data["duration"] < 1


def test_the_running_app_ends_an_idle_chat_by_itself(
    db: Database, org: Org, provider: SimulatedProvider, tmp_path: Any
) -> None:
    """Nobody writes to the chat again, nor asks about it: the app's periodic sweep ends it."""
    settings = Settings(data_dir=tmp_path, call_silence_timeout_seconds=0.3)
    runner = CallRunner(db, settings, brain_factory=lambda _p: ScriptedBrain(), providers={"test": provider})
    with TestClient(create_app(settings, db, runner=runner), headers=org.headers) as live:
        call_id = live.post(f"{API}/conversation/chat", json={"agentId": _agent(live)}).json()["data"][
            "conversationId"
        ]

        def status() -> tuple[str, str | None]:
            with db.read() as conn:
                row = conn.execute(
                    select(calls.c.status, calls.c.disconnection_reason).where(calls.c.call_id == call_id)
                ).one()
            return str(row[0]), row[1]

        assert status() == ("in_progress", None)
        deadline = time.monotonic() + 5
        while status()[0] == "in_progress":
            assert time.monotonic() < deadline, "the idle chat was not ended by the app"
            time.sleep(0.05)
        assert status() == ("completed", "timeout")
        data = live.get(f"{API}/conversation/{call_id}").json()["data"]
        assert (data["status"], data["disconnectionReason"]) == ("completed", "timeout")
        assert 0.3 <= data["duration"] < 1  # ended when it went silent too long, not when swept


def test_chat_over_a_websocket(live: TestClient, org: Org) -> None:
    agent_id = _agent(live, firstMessage="Hello {{name}}!")
    with live.websocket_connect(f"{API}/conversation/chat/ws?agentId={agent_id}&var.name=Asha") as ws:
        started = ws.receive_json()
        assert started["type"] == "started"
        call_id = started["conversationId"]
        assert ws.receive_json() == {**ws_message("Hello Asha!"), "timestamp": ws_any()}
        ws.send_json({"type": "message", "content": "Yes, I'm interested."})
        reply = ws.receive_json()
        assert (reply["type"], reply["role"], reply["latencyMs"]) == ("message", "agent", 5)
        ws.send_json({"type": "bogus"})
        assert ws.receive_json()["type"] == "error"
        ws.send_json({"type": "hangup"})
        ended = ws.receive_json()
        assert ended == {"type": "ended", "conversationId": call_id, "disconnectionReason": "user_hangup"}
    data = live.get(f"{API}/conversation/{call_id}").json()["data"]
    assert (data["type"], data["status"]) == ("chat", "completed")
    assert [m["role"] for m in data["transcript"]] == ["agent", "user", "agent"]


def test_a_websocket_needs_a_key(live: TestClient) -> None:
    with (
        TestClient(live.app) as anonymous,
        anonymous.websocket_connect(f"{API}/conversation/chat/ws?agentId=x") as ws,
    ):
        message = ws.receive_json()
        assert message["type"] == "error"
        assert "API key" in message["errors"][0]


def test_a_websocket_key_may_come_in_the_query(live: TestClient, org: Org) -> None:
    agent_id = _agent(live)
    with (
        TestClient(live.app) as browser,
        browser.websocket_connect(f"{API}/conversation/chat/ws?agentId={agent_id}&apiKey={org.key}") as ws,
    ):
        assert ws.receive_json()["type"] == "started"


class ws_any:  # noqa: N801 - reads as a value in the assertion
    def __eq__(self, other: object) -> bool:
        return True


def ws_message(content: str) -> dict[str, Any]:
    return {"type": "message", "role": "agent", "content": content}


def test_the_app_hands_its_one_backend_and_queue_to_chats_and_their_analytics(
    db: Database, org: Org, tmp_path: Any
) -> None:
    """Injected, not looked up: the chat's turns come from the backend given to create_app, its
    analytics job goes on the Jobs given to it, and the job analyzes with that same backend."""
    backend = ScriptedBackend(Script(replies=("Hello from the script!", "Noted, thank you. Goodbye!")))
    queue = MemoryQueue()
    settings = Settings(data_dir=tmp_path)
    analytics = Jobs(settings, db, backend=backend, queue=queue)
    app = create_app(settings, db, backend=backend, jobs=analytics)
    assert (app.state.runner.backend, app.state.runner.jobs) == (backend, analytics)
    with TestClient(app, headers=org.headers) as live:
        started = live.post(f"{API}/conversation/chat", json={"agentId": _agent(live)}).json()["data"]
        assert started["messages"][0]["content"] == "Hello from the script!"
        call_id = started["conversationId"]
        answer = live.post(f"{API}/conversation/chat/{call_id}", json={"message": "Not interested."})
        assert answer.json()["data"]["messages"][-1]["content"] == "Noted, thank you. Goodbye!"
        assert answer.json()["data"]["disconnectionReason"] == "agent_hangup"
        with db.read() as conn:
            pk = conn.execute(select(calls.c.pk).where(calls.c.call_id == call_id)).scalar_one()
        assert queue.live_calls() == {pk}  # queued on the app's jobs, not run yet
        assert queue.run_pending() == 1
        data = live.get(f"{API}/conversation/{call_id}").json()["data"]
    assert data["postCallAnalytics"]["status"] == "completed"
    assert "Call transcript" in "\n".join(m["content"] for m in backend.requests[-1].messages)
