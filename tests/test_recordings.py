"""POST /conversation/{callId}/recording and its download: recordings of imported calls."""

from __future__ import annotations

import io
import wave

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Org
from tests.importing import import_call, no_pending_jobs_left  # noqa: F401

pytestmark = pytest.mark.usefixtures("no_pending_jobs_left")


def _wav(channels: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x01" * channels * 800)
    return buffer.getvalue()


@pytest.fixture
def call_id(client: TestClient) -> str:
    data = client.post("/api/v1/conversation/import", json=import_call(20)).json()["data"]
    return str(data["results"][0]["callId"])


def test_a_recording_is_uploaded_linked_and_served(client: TestClient, call_id: str) -> None:
    mono, stereo = _wav(1), _wav(2)
    url = f"/api/v1/conversation/{call_id}/recording"
    r = client.post(url, files={"file": ("call.wav", mono, "audio/wav")}, data={"channels": "mono"})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {
        "callId": call_id,
        "channels": "mono",
        "url": f"{url}?channels=mono",
        "bytes": len(mono),
    }
    r = client.post(url, files={"file": ("both.wav", stereo, "audio/wav")}, data={"channels": "stereo"})
    assert r.status_code == 200, r.text
    call = client.get(f"/api/v1/conversation/{call_id}").json()["data"]
    assert call["recordingUrl"] == f"{url}?channels=mono"
    assert call["recordingDualUrl"] == f"{url}?channels=stereo"
    got = client.get(url, params={"channels": "mono"})
    assert got.status_code == 200
    assert got.headers["content-type"] == "audio/wav"
    assert got.content == mono
    assert client.get(url, params={"channels": "stereo"}).content == stereo


def test_bad_uploads_are_refused_with_what_to_send(client: TestClient, call_id: str) -> None:
    url = f"/api/v1/conversation/{call_id}/recording"
    r = client.post(url, files={"file": ("x.txt", b"hello", "text/plain")}, data={"channels": "mono"})
    assert r.status_code == 400
    assert "upload WAV, MP3, Ogg or FLAC" in r.json()["errors"][0]
    r = client.post(url, files={"file": ("x.wav", _wav(2), "audio/wav")}, data={"channels": "mono"})
    assert "has 2 channel(s) but channels=mono" in r.json()["errors"][0]
    r = client.post(url, files={"file": ("x.wav", _wav(1), "audio/wav")}, data={"channels": "quad"})
    assert "give mono (one channel) or stereo" in r.json()["errors"][0]
    r = client.post(url, data={"channels": "mono"})
    assert r.status_code == 400
    r = client.get(url, params={"channels": "quad"})
    assert r.status_code == 400
    assert "channels" in r.json()["errors"][0]
    r = client.get(url, params={"channels": "mono"})
    assert r.status_code == 404
    assert "has no mono recording" in r.json()["errors"][0]


def test_another_organizations_call_is_not_found(
    client: TestClient, anon_client: TestClient, other_org: Org, call_id: str
) -> None:
    url = f"/api/v1/conversation/{call_id}/recording"
    client.post(url, files={"file": ("call.wav", _wav(1), "audio/wav")}, data={"channels": "mono"})
    theirs = anon_client.get(url, headers=other_org.headers)
    assert theirs.status_code == 404
    r = anon_client.post(
        url,
        files={"file": ("call.wav", _wav(1), "audio/wav")},
        data={"channels": "mono"},
        headers=other_org.headers,
    )
    assert r.status_code == 404
