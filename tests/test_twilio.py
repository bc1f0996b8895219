"""An inbound phone call over the Twilio Media Streams protocol, driven exactly as Twilio drives
it: the voice webhook's TwiML, then ``connected``, ``start``, 20 ms ``media`` frames of μ-law
audio (the caller's speech synthesised, then silence), ``mark`` echoes and ``stop``; with a
barge-in (the caller speaks while the agent's audio has not been played yet)."""

from __future__ import annotations

import base64
import io
import random
import wave
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect
from twilio.request_validator import RequestValidator

from dispo.api.app import create_app
from dispo.config import Settings
from dispo.runtime.dialogue import ScriptedBrain
from dispo.runtime.runner import CallRunner
from dispo.store import phone_numbers as phone_store
from dispo.store.database import Database
from dispo.voice.audio import Audio
from dispo.voice.voices import Voices
from tests.conftest import Org

API = "/api/v1"


@pytest.fixture(scope="module")
def voices() -> Voices:
    return Voices.from_settings(Settings())


@pytest.fixture
def live(db: Database, settings: Settings, org: Org) -> Iterator[TestClient]:
    runner = CallRunner(db, settings, brain_factory=lambda _p: ScriptedBrain(latency_ms=40))
    with TestClient(create_app(settings, db, runner=runner), headers=org.headers) as c:
        yield c


def _number_with_agent(live: TestClient, db: Database, org: Org) -> tuple[str, str]:
    agent = live.post(f"{API}/agent", json={"name": "Front desk", "globalPrompt": "You answer calls."})
    agent_id = str(agent.json()["data"])
    number = f"+1415{random.randrange(10**6, 10**7)}"
    with db.write() as conn:
        phone_store.add_number(conn, org.id, number, provider="twilio", agent_id=agent_id)
    return number, agent_id


def _frames(audio: Audio, start_ms: int) -> list[dict[str, Any]]:
    """``media`` messages as Twilio sends them: 160 bytes of μ-law (20 ms) each, timestamped."""
    payload = audio.to_mulaw()
    out = []
    for n, i in enumerate(range(0, len(payload), 160)):
        chunk = payload[i : i + 160].ljust(160, b"\xff")  # μ-law silence pads the last frame
        out.append(
            {
                "event": "media",
                "sequenceNumber": str(n + 3),
                "media": {
                    "track": "inbound",
                    "chunk": str(n + 1),
                    "timestamp": str(start_ms + 20 * n),
                    "payload": base64.b64encode(chunk).decode(),
                },
                "streamSid": "MZ0001",
            }
        )
    return out


def _until_mark(ws: WebSocketTestSession) -> tuple[bytes, list[str]]:
    """The agent's audio (μ-law) up to its next mark, and the events seen on the way."""
    audio, events = bytearray(), []
    while True:
        message = ws.receive_json()
        events.append(message["event"])
        assert message["streamSid"] == "MZ0001"
        if message["event"] == "media":
            audio.extend(base64.b64decode(message["media"]["payload"]))
        elif message["event"] == "mark":
            events.append(message["mark"]["name"])
            return bytes(audio), events


def test_the_voice_webhook_answers_with_a_media_stream(live: TestClient, db: Database, org: Org) -> None:
    number, _ = _number_with_agent(live, db, org)
    answer = live.post(
        "/telephony/twilio/voice", data={"To": number, "From": "+15551230000", "CallSid": "CA1"}
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/xml")
    twiml = ElementTree.fromstring(answer.text)
    stream = twiml.find("./Connect/Stream")
    assert stream is not None
    assert stream.get("url") == "ws://testserver/telephony/twilio/media"
    assert {p.get("name"): p.get("value") for p in stream.findall("Parameter")} == {
        "to": number,
        "from": "+15551230000",
    }
    nobody = live.post("/telephony/twilio/voice", data={"To": "+15550009999"})
    assert "<Say>" in nobody.text
    assert "<Hangup />" in nobody.text
    bad = live.post("/telephony/twilio/voice", data={"To": "<script>"})
    assert bad.status_code == 400
    assert "E.164" in bad.json()["errors"][0]


def test_an_inbound_call_with_barge_in_and_hang_up(
    live: TestClient, db: Database, org: Org, voices: Voices
) -> None:
    number, agent_id = _number_with_agent(live, db, org)
    caller = voices.synthesizer.synthesize("Yes, I am interested. Tell me more.", "en-us+f3").audio
    with live.websocket_connect("/telephony/twilio/media") as ws:
        ws.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        ws.send_json(
            {
                "event": "start",
                "sequenceNumber": "1",
                "start": {
                    "streamSid": "MZ0001",
                    "callSid": "CA0001",
                    "accountSid": "AC0001",
                    "tracks": ["inbound"],
                    "customParameters": {"to": number, "from": "+15551230000"},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
                "streamSid": "MZ0001",
            }
        )
        opening, events = _until_mark(ws)
        assert len(opening) > 8000  # more than a second of the agent's greeting
        assert Audio.from_mulaw(opening).rms() > 300
        # The greeting's mark is not echoed: Twilio is still playing it when the caller speaks.
        for message in _frames(Audio.silence(0.4, 8000), 0) + _frames(caller, 400):
            ws.send_json(message)
        assert ws.receive_json()["event"] == "clear"  # barge-in: the agent's audio is dropped
        end = 400 + round(caller.duration_s * 1000)
        for message in _frames(Audio.silence(1.0, 8000), end):
            ws.send_json(message)
        reply, events = _until_mark(ws)
        assert len(reply) > 4000
        assert Audio.from_mulaw(reply).rms() > 300
        ws.send_json({"event": "mark", "streamSid": "MZ0001", "mark": {"name": events[-1]}})
        ws.send_json(
            {"event": "stop", "sequenceNumber": "99", "streamSid": "MZ0001", "stop": {"callSid": "CA0001"}}
        )
    calls = live.get(f"{API}/conversation", params={"agentIds": agent_id}).json()["data"]["logs"]
    assert len(calls) == 1
    call = live.get(f"{API}/conversation/{calls[0]['callId']}").json()["data"]
    assert (call["type"], call["status"], call["disconnectionReason"]) == (
        "telephony_inbound",
        "completed",
        "user_hangup",
    )
    assert (call["to"], call["from"]) == (number, "+15551230000")
    roles = [m["role"] for m in call["transcript"]]
    assert roles[:2] == ["agent", "user"]
    # What the STT made of the caller on the general model (8 kHz phone audio: errors are expected).
    assert call["transcript"][1]["content"].strip()
    assert call["average_transcriber_latency"] > 0
    assert call["average_synthesizer_latency"] is not None
    stereo = live.get(call["recordingDualUrl"].split("testserver", 1)[1])
    with wave.open(io.BytesIO(stereo.content)) as w:
        assert w.getnchannels() == 2
        assert abs(w.getnframes() / w.getframerate() - call["duration"]) <= 1.0


def test_with_an_auth_token_only_signed_requests_get_through(db: Database, tmp_path: Any, org: Org) -> None:
    settings = Settings(
        data_dir=tmp_path, twilio_auth_token="secret-token", public_url="https://dispo.example"
    )
    runner = CallRunner(db, settings, brain_factory=lambda _p: ScriptedBrain())
    form = {"To": "+15550001111", "From": "+15551230000", "CallSid": "CA9"}
    signer = RequestValidator("secret-token")
    with TestClient(create_app(settings, db, runner=runner)) as client:
        unsigned = client.post("/telephony/twilio/voice", data=form)
        assert unsigned.status_code == 403
        assert "X-Twilio-Signature" in unsigned.json()["errors"][0]
        forged = client.post("/telephony/twilio/voice", data=form, headers={"X-Twilio-Signature": "AAAA"})
        assert forged.status_code == 403
        signature = signer.compute_signature("https://dispo.example/telephony/twilio/voice", form)
        signed = client.post("/telephony/twilio/voice", data=form, headers={"X-Twilio-Signature": signature})
        assert signed.status_code == 200
        assert "<Response>" in signed.text
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            client.websocket_connect("/telephony/twilio/media") as ws,
        ):
            ws.receive_json()
        assert closed.value.code == 4403
        good = signer.compute_signature("wss://dispo.example/telephony/twilio/media", {})
        with client.websocket_connect("/telephony/twilio/media", headers={"X-Twilio-Signature": good}) as ws:
            ws.send_json({"event": "stop", "streamSid": "MZ9"})  # accepted: it reads the protocol


class _BrokenBrain:
    def reply(self, history: Any) -> Any:
        raise RuntimeError("the model fell over")


def test_a_failing_agent_ends_the_phone_call_as_a_system_error(
    db: Database, settings: Settings, org: Org
) -> None:
    runner = CallRunner(db, settings, brain_factory=lambda _p: _BrokenBrain())
    with TestClient(create_app(settings, db, runner=runner), headers=org.headers) as live:
        number, agent_id = _number_with_agent(live, db, org)
        with live.websocket_connect("/telephony/twilio/media") as ws:
            ws.send_json(
                {"event": "start", "start": {"streamSid": "MZ0001", "customParameters": {"to": number}}}
            )
            with pytest.raises(WebSocketDisconnect):
                ws.receive_json()  # the server ends the call: nothing to say
        logs = live.get(f"{API}/conversation", params={"agentIds": agent_id}).json()["data"]["logs"]
    assert [(c["status"], c["disconnectionReason"]) for c in logs] == [("completed", "system_error")]
