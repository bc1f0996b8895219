"""Speech backends (the embedded eSpeak NG and PocketSphinx for real; the OpenAI-compatible ones
against httpx's MockTransport), the recorder, signed links, and a test-provider call with audio."""

from __future__ import annotations

import io
import json
import re
import time
import wave
from pathlib import Path

import httpx
import pytest

from dispo.config import Settings
from dispo.errors import Forbidden, SpeechError
from dispo.runtime.dialogue import AgentProfile, ScriptedBrain, converse
from dispo.telephony import DialRequest
from dispo.telephony.simulated import PHRASES, Callee, Conversation, SimulatedProvider
from dispo.voice import audio as audio_module
from dispo.voice.audio import PIPELINE_RATE, Audio
from dispo.voice.links import RecordingLinks, load_secret
from dispo.voice.recording import Recorder
from dispo.voice.stt import OpenAIRecognizer, get_recognizer, hinted_case, recognizers
from dispo.voice.tts import OpenAISynthesizer, get_synthesizer
from dispo.voice.voices import Voices


@pytest.fixture(scope="module")
def voices() -> Voices:
    return Voices.from_settings(Settings())


def test_espeak_speaks_with_two_different_voices(voices: Voices) -> None:
    agent = voices.synthesizer.synthesize("Thank you for your time. Goodbye!", "en-us")
    caller = voices.synthesizer.synthesize("Thank you for your time. Goodbye!", "en-us+f3")
    for spoken in (agent, caller):
        assert spoken.audio.rate == PIPELINE_RATE
        assert 1.0 < spoken.audio.duration_s < 5.0
        assert spoken.audio.rms() > 500  # speech, not silence
        assert 0 <= spoken.first_audio_ms <= spoken.total_ms
    assert agent.audio.pcm != caller.audio.pcm


def test_an_unknown_espeak_voice_is_a_clear_error(voices: Voices) -> None:
    with pytest.raises(SpeechError, match=r"no voice 'nobody'.*DISPO_TTS_AGENT_VOICE"):
        voices.synthesizer.synthesize("Hello", "nobody")


def test_pocketsphinx_recognises_synthesised_speech_with_hints(voices: Voices) -> None:
    hints = ["My name is Test User.", "Yes, I am interested. Tell me more.", "Okay, bye."]
    audio = voices.synthesizer.synthesize("My name is Test User.", "en-us+f3").audio
    heard = voices.recognizer.transcribe(audio, hints=hints)
    assert "Test User" in heard.text
    assert heard.ms > 0
    # Without hints the general model decodes it: words come out, not necessarily the right ones.
    general = voices.recognizer.transcribe(audio)
    assert general.text
    # (Silence is not asserted: the decoder's cepstral mean adapts across utterances, so what it
    # makes of silence depends on what it heard before.)


def test_hinted_case() -> None:
    assert (
        hinted_case("my name is test user i said", ["My name is Test User."]) == "My name is Test User I said"
    )


def test_unknown_backends_are_named_in_the_error() -> None:
    with pytest.raises(SpeechError, match=r"DISPO_STT_BACKEND to one of openai, sphinx"):
        recognizers.get("whisper", Settings())


def test_the_openai_backends_need_a_base_url() -> None:
    with pytest.raises(SpeechError, match=r"DISPO_TTS_BASE_URL"):
        get_synthesizer(Settings(tts_backend="openai"))
    with pytest.raises(SpeechError, match=r"DISPO_STT_BASE_URL"):
        get_recognizer(Settings(stt_backend="openai"))


def test_openai_speech_streams_pcm_and_reports_errors() -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        if body["voice"] == "broken":
            return httpx.Response(400, text='{"error": "unknown voice"}')
        assert request.headers["authorization"] == "Bearer k"
        return httpx.Response(200, content=b"\x10\x00" * 24_000)  # one second at 24 kHz

    tts = OpenAISynthesizer(
        "http://speech.test/v1", "kokoro", api_key="k", transport=httpx.MockTransport(handler)
    )
    spoken = tts.synthesize("Hello there", "alloy")
    assert seen[0] == {"model": "kokoro", "input": "Hello there", "voice": "alloy", "response_format": "pcm"}
    assert spoken.audio.rate == PIPELINE_RATE
    assert spoken.audio.duration_s == pytest.approx(1.0, abs=0.01)
    with pytest.raises(SpeechError, match=r"HTTP 400 to /audio/speech.*DISPO_TTS_MODEL"):
        tts.synthesize("Hello", "broken")


def test_openai_speech_unreachable_is_a_speech_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    tts = OpenAISynthesizer("http://speech.test/v1", "", transport=httpx.MockTransport(handler))
    with pytest.raises(SpeechError, match=r"did not answer /audio/speech.*DISPO_TTS_BASE_URL"):
        tts.synthesize("Hello", "alloy")


def test_openai_transcription_sends_the_wav_and_the_hints() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        content = request.content
        assert b'name="model"\r\n\r\nwhisper-1' in content
        assert b'name="prompt"\r\n\r\nMy name is Test User.' in content
        assert b"RIFF" in content
        assert b"WAVE" in content
        if b"broken" in content:
            return httpx.Response(200, json={"no": "text"})
        return httpx.Response(200, json={"text": " my name is test user "})

    stt = OpenAIRecognizer("http://speech.test/v1", "", transport=httpx.MockTransport(handler))
    heard = stt.transcribe(Audio.silence(0.5), hints=["My name is Test User."])
    assert heard.text == "my name is test user"
    with pytest.raises(SpeechError, match=r"has no `text`"):
        stt.transcribe(Audio.silence(0.5), hints=["My name is Test User.", "broken"])

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, text="bad key")

    stt = OpenAIRecognizer("http://speech.test/v1", "", transport=httpx.MockTransport(refuse))
    with pytest.raises(SpeechError, match=r"HTTP 401.*DISPO_STT_API_KEY"):
        stt.transcribe(Audio.silence(0.5))


def test_the_recorder_places_each_voice_on_its_channel() -> None:
    tone = Audio(b"\x00\x20" * 8000, PIPELINE_RATE)  # 0.5 s of a constant level
    recorder = Recorder()
    recorder.add("agent", 0, tone)
    recorder.add("caller", 1000, tone)
    recording = recorder.finish(2000)
    assert recording.duration_s == 2.0
    left, right = _channels(recording.stereo)
    assert left.duration_s == right.duration_s == 2.0
    assert _rms(left, 0, 0.5) > 0
    assert _rms(right, 0, 0.5) == 0
    assert _rms(right, 1.0, 1.5) > 0
    assert _rms(left, 1.0, 1.5) == 0
    mono = Audio.from_wav(recording.mono)
    assert mono.duration_s == 2.0
    assert _rms(mono, 0, 0.5) > 0
    assert _rms(mono, 1.0, 1.5) > 0
    assert _rms(mono, 0.6, 0.9) == 0


def _rms(audio: Audio, start_s: float, end_s: float) -> float:
    a, b = (round(t * audio.rate) * 2 for t in (start_s, end_s))
    return Audio(audio.pcm[a:b], audio.rate).rms()


def test_signed_links_expire_and_refuse_tampering(tmp_path: Path) -> None:
    secret = load_secret("", tmp_path)
    assert load_secret("", tmp_path) == secret  # kept, so every server process agrees
    links = RecordingLinks(secret, 60)
    query = dict(p.split("=") for p in links.query("CALL-1-abcdef.wav").split("&"))
    links.check("CALL-1-abcdef.wav", query["expires"], query["signature"])
    with pytest.raises(Forbidden, match=r"altered"):
        links.check("CALL-2-abcdef.wav", query["expires"], query["signature"])
    with pytest.raises(Forbidden, match=r"altered"):
        links.check("CALL-1-abcdef.wav", str(int(query["expires"]) + 1), query["signature"])
    with pytest.raises(Forbidden, match=r"incomplete"):
        links.check("CALL-1-abcdef.wav", None, query["signature"])
    old = dict(p.split("=") for p in links.query("CALL-1-abcdef.wav", now=time.time() - 120).split("&"))
    with pytest.raises(Forbidden, match=r"expired"):
        links.check("CALL-1-abcdef.wav", old["expires"], old["signature"])
    with pytest.raises(Forbidden, match=r"altered"):
        RecordingLinks("another secret", 60).check("CALL-1-abcdef.wav", query["expires"], query["signature"])


def test_the_phrasebook_holds_everything_a_callee_says() -> None:
    said: set[str] = set()
    for number in ("+15005550006", "+15005550007", "+15005550005", "+14155550123", "+14155550999"):
        callee = Callee.draw(number, {"firstName": "Test", "lastName": "User"}, 0, 0)
        conversation = Conversation(callee)
        for line in (
            "Hello, who am I speaking to? What is your name?",
            "Are you interested?",
            "Can I schedule a follow-up?",
            "Anything else?",
            "Okay",
            "Goodbye!",
        ):
            reply, _ = conversation.respond(line)
            if reply:
                said.add(reply)
        book = conversation.phrasebook()
    assert book[:2] == ["Hello, this is Test. Who is calling?", "My name is Test User."]
    sentences = {s for reply in said for s in _sentences(reply)}
    known = {s for phrase in (*book, *PHRASES) for s in _sentences(phrase)}
    assert sentences <= known, sentences - known


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.findall(r"[^.!?]+[.!?]", text)]


def test_a_test_provider_call_with_a_voice_lasts_as_long_as_its_recording(voices: Voices) -> None:
    provider = SimulatedProvider(voices=voices)
    dialed = provider.dial(
        DialRequest("CALL-1-abcdef", "+15005550006", variables={"firstName": "Test", "lastName": "User"})
    )
    assert dialed.session is not None
    profile = AgentProfile("a", "Agent", "You sell.", None)
    result = converse(
        dialed.session, ScriptedBrain(latency_ms=250), profile, max_duration_s=600, silence_timeout_s=15
    )
    recording = dialed.session.recording(result.ended_ms - result.started_ms)
    assert recording is not None
    assert abs(recording.duration_s - result.duration_s) <= 1.0
    agents = [t for t in result.turns if t.role == "agent"]
    users = [t for t in result.turns if t.role == "user"]
    assert users
    assert all(t.stt_ms is not None and t.stt_ms > 0 for t in users)
    assert all(t.tts_ms is not None for t in agents)
    # Voice-to-voice: after the opening, STT + LLM + TTS to first audio of the turn that answers.
    answered = agents[1:]
    assert answered
    assert all(t.v2v_ms is not None and t.v2v_ms >= 250 for t in answered)
    assert result.transcriber_latency_ms is not None
    assert result.synthesizer_latency_ms is not None
    # What the caller said reached the agent through the STT: recognised words, cased by the hints.
    assert any("Test User" in t.content for t in users), [t.content for t in users]
    # The stereo file: the agent speaks on the left while the caller's right channel is silent.
    left, right = _channels(recording.stereo)
    start = result.started_ms
    first = agents[0]
    a = (first.timestamp_ms - start) / 1000
    b = (users[0].timestamp_ms - start) / 1000
    assert _rms(left, a, a + 1.0) > 300
    assert _rms(right, a, a + 1.0) == 0
    assert _rms(right, b, b + 0.8) > 300
    assert _rms(left, b, b + 0.8) == 0


def _channels(stereo_wav: bytes) -> tuple[Audio, Audio]:
    with wave.open(io.BytesIO(stereo_wav)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (2, PIPELINE_RATE, 2)
        frames = w.readframes(w.getnframes())
    ops = audio_module.audioop  # the standard library's, imported without its deprecation warning
    return (
        Audio(ops.tomono(frames, 2, 1, 0), PIPELINE_RATE),
        Audio(ops.tomono(frames, 2, 0, 1), PIPELINE_RATE),
    )
