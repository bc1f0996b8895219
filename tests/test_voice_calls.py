"""Calls with a voice through the API: recordings at signed links (expiry, tampering, ranges),
per-call speech latencies, chats without them, and GET /analytics/latency."""

from __future__ import annotations

import io
import time
import wave
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from dispo.api.app import create_app
from dispo.config import Settings
from dispo.runtime.dialogue import ScriptedBrain
from dispo.runtime.runner import CallRunner
from dispo.store.database import Database
from dispo.telephony.simulated import SimulatedProvider
from dispo.voice.voices import Voices
from tests.conftest import Org

API = "/api/v1"


@pytest.fixture(scope="module")
def voices() -> Voices:
    return Voices.from_settings(Settings())


@pytest.fixture
def live(db: Database, settings: Settings, org: Org, voices: Voices) -> Iterator[TestClient]:
    runner = CallRunner(
        db,
        settings,
        brain_factory=lambda _p: ScriptedBrain(latency_ms=120),
        providers={"test": SimulatedProvider(voices=voices)},
    )
    with TestClient(create_app(settings, db, runner=runner), headers=org.headers) as c:
        yield c


def _agent(client: TestClient) -> str:
    response = client.post(f"{API}/agent", json={"name": "Caller", "globalPrompt": "You sell solar panels."})
    assert response.status_code == 201, response.text
    return str(response.json()["data"])


def _call(client: TestClient, agent_id: str, number: str = "+15005550006") -> dict[str, Any]:
    response = client.post(
        f"{API}/conversation/outbound",
        json={
            "agentId": agent_id,
            "phoneNumber": number,
            "variables": {"firstName": "Test", "lastName": "User"},
        },
    )
    assert response.status_code == 200, response.text
    call_id = response.json()["data"]["conversationId"]
    deadline = time.monotonic() + 60
    while True:
        data: dict[str, Any] = client.get(f"{API}/conversation/{call_id}").json()["data"]
        if data["status"] not in ("in_queue", "in_progress"):
            return data
        assert time.monotonic() < deadline, data
        time.sleep(0.05)


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_a_voice_call_is_recorded_and_its_speech_latencies_measured(live: TestClient) -> None:
    data = _call(live, _agent(live))
    assert data["status"] == "completed"
    assert data["average_transcriber_latency"] > 0
    assert data["average_synthesizer_latency"] >= 0
    assert data["average_agent_latency"] == 120
    mono = live.get(_path(data["recordingUrl"]), headers={"Authorization": ""})
    assert mono.status_code == 200, mono.text
    assert mono.headers["content-type"] == "audio/wav"
    assert mono.headers["accept-ranges"] == "bytes"
    with wave.open(io.BytesIO(mono.content)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (1, 16000, 2)
        assert abs(w.getnframes() / w.getframerate() - data["duration"]) <= 1.0
    stereo = live.get(_path(data["recordingDualUrl"]))
    with wave.open(io.BytesIO(stereo.content)) as w:
        assert (w.getnchannels(), w.getframerate()) == (2, 16000)
        assert abs(w.getnframes() / w.getframerate() - data["duration"]) <= 1.0
    # The transcript's caller turns are what the STT heard (the hints case the callee's name).
    users = [m["content"] for m in data["transcript"] if m["role"] == "user"]
    assert any("Test" in line for line in users), users


def test_recording_links_serve_ranges_and_refuse_tampering_and_expiry(
    live: TestClient, settings: Settings
) -> None:
    data = _call(live, _agent(live))
    url = _path(data["recordingUrl"])
    whole = live.get(url).content
    part = live.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == whole[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole)}"
    query = parse_qs(urlsplit(url).query)
    path = urlsplit(url).path
    tampered = live.get(f"{path}?expires={int(query['expires'][0]) + 10}&signature={query['signature'][0]}")
    assert tampered.status_code == 403
    assert tampered.json()["status"] is False
    assert "altered" in tampered.json()["errors"][0]
    other = live.get(url.replace(".wav?", "-dual.wav?"))
    assert other.status_code == 403
    links = live.app.state.recording_links  # type: ignore[attr-defined]
    key = path.rsplit("/", 1)[1]
    expired = live.get(f"{path}?{links.query(key, now=time.time() - settings.recording_link_seconds - 5)}")
    assert expired.status_code == 403
    assert "expired" in expired.json()["errors"][0]
    assert live.get(path).status_code == 403  # no signature at all
    # Deleting a call's recordings: the link then finds nothing.
    live.app.state.runner.recordings.remove(data["callId"])  # type: ignore[attr-defined]
    gone = live.get(url)
    assert gone.status_code == 404
    assert gone.json()["status"] is False


def test_chats_have_no_recordings_nor_speech_latencies(live: TestClient) -> None:
    agent_id = _agent(live)
    started = live.post(f"{API}/conversation/chat", json={"agentId": agent_id})
    assert started.status_code in (200, 201), started.text
    call_id = started.json()["data"]["conversationId"]
    data = live.get(f"{API}/conversation/{call_id}").json()["data"]
    assert data["recordingUrl"] is None
    assert data["recordingDualUrl"] is None
    assert data["average_transcriber_latency"] is None
    assert data["average_synthesizer_latency"] is None


def test_latency_percentiles_per_stage(live: TestClient) -> None:
    agent_id = _agent(live)
    empty = live.get(f"{API}/analytics/latency", params={"agentId": agent_id})
    assert empty.status_code == 200, empty.text
    assert empty.json()["data"]["stages"]["stt"] == {"count": 0, "p50": None, "p90": None, "p99": None}
    _call(live, agent_id)
    _call(live, agent_id, "+15005550007")
    data = live.get(
        f"{API}/analytics/latency", params={"agentId": agent_id, "dateFrom": "2020-01-01"}
    ).json()["data"]
    stages = data["stages"]
    assert set(stages) == {"stt", "llm", "tts", "voiceToVoice"}
    for stage in stages.values():
        assert stage["count"] > 0
        assert stage["p50"] <= stage["p90"] <= stage["p99"]
    assert stages["llm"]["p50"] == 120
    assert stages["voiceToVoice"]["p50"] >= 120
    assert data["agentId"] == agent_id
    assert data["dateFrom"].startswith("2020-01-01")
    unknown = live.get(f"{API}/analytics/latency", params={"agentId": "6966aaaaaaaaaaaaaaaaaaaa"})
    assert unknown.status_code == 404
    bad = live.get(f"{API}/analytics/latency", params={"dateFrom": "not a date at all"})
    assert bad.status_code == 400
    assert bad.json()["status"] is False
