"""docs/import.md's examples, run verbatim against a real server; the Vapi and Retell converters on
sample payloads shaped as those stacks document them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dispo.integrations import retell, vapi
from tests.conftest import LiveServer, Org
from tests.importing import no_pending_jobs_left  # noqa: F401

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "import.md"


def _example(name: str) -> str:
    found = re.search(rf"<!-- tested: {name} -->\n```python\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    assert found, f"docs/import.md has no example tagged {name}"
    return found.group(1)


@pytest.fixture
def server_env(
    live_server: LiveServer,
    org: Org,
    monkeypatch: pytest.MonkeyPatch,
    no_pending_jobs_left: None,  # noqa: F811
) -> Iterator[httpx.Client]:
    monkeypatch.setenv("DISPO_URL", live_server.url)
    monkeypatch.setenv("DISPO_API_KEY", org.key)
    with httpx.Client(base_url=live_server.api, headers=org.headers) as client:
        yield client


def test_the_pipecat_style_recorder_posts_the_call(
    server_env: httpx.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    exec(compile(_example("recorder"), "docs/import.md", "exec"), {})
    status, call_id = capsys.readouterr().out.split()
    assert status == "imported"
    call = server_env.get(f"/conversation/{call_id}").json()["data"]
    assert [t["role"] for t in call["transcript"]] == ["agent", "user", "agent"]
    assert call["transcript"][2]["latencyMs"] is not None
    assert call["from"] == "+14155550123"
    assert call["disconnectionReason"] == "user_hangup"


def test_the_vapi_receiver_imports_once(server_env: httpx.Client, capsys: pytest.CaptureFixture[str]) -> None:
    code = compile(_example("vapi-receiver"), "docs/import.md", "exec")
    exec(code, {})
    exec(code, {})  # Vapi delivered the report twice
    assert capsys.readouterr().out.split() == ["imported", "duplicate"]
    logs = server_env.get("/conversation", params={"search": "refund"}).json()["data"]["logs"]
    assert len(logs) == 1
    assert logs[0]["snippet"] == "I need a <mark>refund</mark>."
    assert [t["content"] for t in logs[0]["transcript"]] == ["Hi, this is Maya.", "I need a refund."]


def test_vapi_report_fields() -> None:
    body = vapi.from_end_of_call_report(
        {
            "message": {
                "type": "end-of-call-report",
                "endedReason": "customer-did-not-answer",
                "call": {"id": "x1", "type": "outboundPhoneCall"},
                "customer": {"number": "+14155550123"},
                "phoneNumber": {"number": "+14155550199"},
                "startedAt": "2026-11-30T09:00:00Z",
                "endedAt": "2026-11-30T09:00:30Z",
                "cost": 0.01,
                "artifact": {"messages": [], "recordingUrl": "https://storage.example/rec.wav"},
            }
        }
    )
    assert body == {
        "externalId": "vapi:x1",
        "type": "telephony_outbound",
        "status": "no_answer",
        "from": "+14155550199",
        "to": "+14155550123",
        "startedAt": "2026-11-30T09:00:00Z",
        "endedAt": "2026-11-30T09:00:30Z",
        "disconnectionReason": "dial_no_answer",
        "callCost": 0.01,
        "transcript": [],
        "recordingUrl": "https://storage.example/rec.wav",
        "variables": {"vapiEndedReason": "customer-did-not-answer"},
    }
    with pytest.raises(ValueError, match="not an end-of-call-report"):
        vapi.from_end_of_call_report({"message": {"type": "status-update"}})


RETELL_CALL_ENDED = {
    "event": "call_ended",
    "call": {
        "call_type": "phone_call",
        "from_number": "+12137771234",
        "to_number": "+12137771235",
        "direction": "inbound",
        "call_id": "Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6",
        "agent_id": "oBeDLoLOeuAbiuaMFXRtDOLriTJ5tSxD",
        "call_status": "ended",
        "start_timestamp": 1714608475945,
        "end_timestamp": 1714608491736,
        "disconnection_reason": "user_hangup",
        "transcript": "Agent: hi how are you doing?\nUser: Doing pretty well.",
        "transcript_object": [
            {
                "role": "agent",
                "content": "hi how are you doing?",
                "words": [{"word": "hi", "start": 0.7, "end": 1.3}],
            },
            {
                "role": "user",
                "content": "Doing pretty well.",
                "words": [{"word": "Doing", "start": 3.2, "end": 3.5}],
            },
        ],
        "call_cost": {"combined_cost": 7.5},
        "latency": {"llm": {"p50": 812}, "tts": {"p50": 250}},
        "retell_llm_dynamic_variables": {"customer_name": "John Doe"},
    },
}


def test_retell_call_ended_fields() -> None:
    body = retell.from_call_ended(RETELL_CALL_ENDED)
    assert body == {
        "externalId": "retell:Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6",
        "type": "telephony_inbound",
        "status": "completed",
        "from": "+12137771234",
        "to": "+12137771235",
        "startedAt": 1714608475945,
        "endedAt": 1714608491736,
        "disconnectionReason": "user_hangup",
        "callCost": 0.075,
        "transcript": [
            {"role": "agent", "content": "hi how are you doing?", "timestamp": 1714608476645},
            {"role": "user", "content": "Doing pretty well.", "timestamp": 1714608479145},
        ],
        "averageAgentLatency": 812.0,
        "averageSynthesizerLatency": 250.0,
        "variables": {"customer_name": "John Doe"},
    }
    with pytest.raises(ValueError, match="not a call_ended"):
        retell.from_call_ended({"event": "call_started", "call": {}})


def test_a_retell_call_imports(server_env: httpx.Client) -> None:
    first = server_env.post("/conversation/import", json=retell.from_call_ended(RETELL_CALL_ENDED)).json()
    assert first["data"]["results"][0]["status"] == "imported", first
    call = server_env.get(f"/conversation/{first['data']['results'][0]['callId']}").json()["data"]
    assert call["duration"] == pytest.approx(15.791)
    assert call["average_agent_latency"] == 812
