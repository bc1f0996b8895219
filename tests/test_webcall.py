"""A web call in a real browser: Chromium opens /webcall with a fake microphone that plays a
WAV file of a caller's speech (``--use-file-for-fake-audio-capture``), the agent's greeting comes
back and plays, the caller's words reach the agent through the STT, and the call is logged as a
``webcall`` with its recordings."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from dispo.api.app import create_app
from dispo.config import Settings
from dispo.runtime.dialogue import ScriptedBrain
from dispo.runtime.runner import CallRunner
from dispo.store.database import Database
from dispo.voice.audio import Audio
from dispo.voice.voices import Voices
from tests.conftest import Org

playwright = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def server(db: Database, settings: Settings) -> Iterator[str]:
    runner = CallRunner(db, settings, brain_factory=lambda _p: ScriptedBrain(latency_ms=30))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    app = create_app(settings, db, runner=runner)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def _caller_wav(path: Path) -> Path:
    voices = Voices.from_settings(Settings())
    speech = voices.synthesizer.synthesize("Yes, I am interested. Tell me more.", voices.caller_voice).audio
    path.write_bytes(
        Audio(Audio.silence(2.5).pcm + speech.pcm + Audio.silence(3.0).pcm, speech.rate).to_wav()
    )
    return path


def _wait(check: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (apt-get install chromium)")
def test_a_web_call_in_chromium_with_a_fake_microphone(server: str, org: Org, tmp_path: Path) -> None:
    api = httpx.Client(base_url=f"{server}/api/v1", headers=org.headers, timeout=10)
    agent_id = api.post("/agent", json={"name": "Web agent", "globalPrompt": "You answer."}).json()["data"]
    wav = _caller_wav(tmp_path / "caller.wav")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        page = browser.new_page()
        page.goto(f"{server}/webcall#agentId={agent_id}&apiKey={org.key}")
        page.click("#start")
        page.wait_for_function("document.getElementById('status').textContent === 'In call'", timeout=20_000)
        call_id = page.text_content("#callId")
        page.wait_for_function(
            "Number(document.getElementById('received').textContent) > 8000", timeout=20_000
        )

        def heard() -> dict[str, Any] | None:
            data: dict[str, Any] = api.get(f"/conversation/{call_id}").json()["data"]
            return data if any(m["role"] == "user" for m in data["transcript"]) else None

        _wait(heard, "the caller's words to reach the agent")
        page.wait_for_function("Number(document.getElementById('sent').textContent) > 100")
        if page.is_enabled("#hangup"):  # the fake microphone loops: the agent may have said goodbye
            page.click("#hangup")

        def ended() -> dict[str, Any] | None:
            data: dict[str, Any] = api.get(f"/conversation/{call_id}").json()["data"]
            return data if data["status"] == "completed" else None

        call = _wait(ended, "the call to end")
        browser.close()
    api.close()
    assert call["type"] == "webcall"
    assert call["disconnectionReason"] in ("user_hangup", "agent_hangup")
    assert call["agentId"] == agent_id
    assert call["recordingUrl"] is not None
    assert call["average_transcriber_latency"] > 0
    recording = httpx.get(call["recordingDualUrl"], timeout=10)
    assert recording.status_code == 200
    assert Audio.from_wav(recording.content).rms() > 0
