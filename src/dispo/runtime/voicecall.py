"""A live voice call over a media stream (Twilio Media Streams): audio in → turn detection → STT →
the agent → TTS → audio out, with barge-in.

:class:`VoiceCall` is fed the stream's events by the transport (:mod:`dispo.api.routes.twilio`)
and answers through ``send`` (Twilio's ``media``, ``mark`` and ``clear`` messages):

- caller audio (μ-law 8 kHz, 20 ms frames) goes to the :class:`~dispo.voice.turns.TurnDetector`
  and onto the recording's caller track;
- when the caller has finished a turn, its audio goes to the STT, the words to the agent's brain,
  the reply to the TTS, and the audio back as 20 ms ``media`` frames followed by a ``mark`` (the
  carrier echoes a mark once it has played everything before it: until then the agent is speaking);
- when the caller starts speaking while the agent is (barge-in), Dispo sends ``clear`` (the carrier
  drops the audio not yet played) and cuts the agent's track of the recording there;
- the call ends when the caller hangs up (``stop``, ``user_hangup``) or when the agent's goodbye has
  been played (``agent_hangup``); it is then recorded like every call (status, duration, cost,
  latencies, transcript, recordings) and its analytics are queued.

The call's clock is the stream's: the ``timestamp`` of its media frames (milliseconds since the
stream started), so the transcript, the recording and the duration agree whatever the network
does. Latencies are measured on the wall clock: STT, LLM and TTS-to-first-audio per turn, and
voice-to-voice from the moment the end of the caller's turn is detected to the first frame of the
agent's reply leaving.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from dispo.analytics.jobs import Jobs
from dispo.calls import CallEnding, CallStatus, DisconnectReason, call_cost
from dispo.config import Settings
from dispo.runtime.dialogue import AgentProfile, Brain, Turn, agent_turn, voice_to_voice
from dispo.store import calls as call_store
from dispo.store.database import Database
from dispo.timeutil import now_ms
from dispo.voice.audio import TELEPHONE_RATE, Audio
from dispo.voice.recording import Recorder
from dispo.voice.storage import RecordingStore
from dispo.voice.turns import FRAME_MS, TurnDetector
from dispo.voice.voices import Voices

log = logging.getLogger("dispo.calls")

Send = Callable[[dict[str, Any]], Awaitable[None]]
FRAME_BYTES = TELEPHONE_RATE * FRAME_MS // 1000  # μ-law: one byte a sample


@dataclass
class CallContext:
    """What a voice call needs from the app, and the call row it fills."""

    db: Database
    settings: Settings
    jobs: Jobs
    recordings: RecordingStore
    voices: Voices
    brain: Brain
    profile: AgentProfile
    call_pk: int
    call_id: str


@dataclass
class VoiceCall:
    ctx: CallContext
    stream_sid: str
    send: Send
    hang_up: Callable[[], Awaitable[None]] | None = None  # closes the stream when Dispo ends the call
    started_ms: int = field(default_factory=now_ms)
    turns: list[Turn] = field(default_factory=list)
    clock_ms: int = 0  # the stream's time: the last media frame's timestamp + its length
    ended: bool = False
    hang_up_after: str | None = None  # the mark whose playback ends the call (the agent's goodbye)
    _detector: TurnDetector = field(default_factory=TurnDetector)
    _recorder: Recorder = field(default_factory=Recorder)
    _playing: set[str] = field(default_factory=set)  # marks sent, not yet echoed: agent speaking
    _agent_free_ms: float = 0.0  # when the agent's queued audio ends, on the stream's clock
    _utterance_ms: int = 0
    _marks: int = 0
    _task: asyncio.Task[None] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def agent_speaking(self) -> bool:
        return bool(self._playing)

    async def open(self) -> None:
        """The agent speaks first: its first message, or a greeting its brain writes."""
        self._task = asyncio.create_task(self._reply(None, None))

    async def media(self, payload: str, timestamp_ms: int | None) -> None:
        """One frame of the caller's audio (base64 μ-law)."""
        audio = Audio.from_mulaw(base64.b64decode(payload))
        at = self.clock_ms if timestamp_ms is None else timestamp_ms
        self._recorder.add("caller", at, audio)
        self.clock_ms = max(self.clock_ms, at + round(audio.duration_s * 1000))
        event = self._detector.feed(audio.pcm)
        if event == "started":
            self._utterance_ms = max(0, at - self._detector.start_frames * FRAME_MS)
            if self.agent_speaking:
                await self._barge_in(at)
        elif event == "ended":
            # One reply at a time, in order: this one starts once the previous one was spoken.
            previous = self._task
            heard = (self._detector.take(), self._utterance_ms)
            self._task = asyncio.create_task(self._reply(heard, time.perf_counter(), previous))

    async def mark(self, name: str) -> None:
        """The carrier played everything up to the mark ``name``."""
        self._playing.discard(name)
        if name == self.hang_up_after:
            await self.finish(DisconnectReason.AGENT_HANGUP)

    async def _barge_in(self, at_ms: int) -> None:
        """The caller speaks over the agent: drop the agent's unplayed audio."""
        await self.send({"event": "clear", "streamSid": self.stream_sid})
        self._playing.clear()
        self._recorder.truncate("agent", at_ms)
        self._agent_free_ms = at_ms
        self.hang_up_after = None  # an interrupted goodbye does not end the call

    async def _reply(
        self,
        heard: tuple[Audio, int] | None,
        ended_at: float | None,
        after: asyncio.Task[None] | None = None,
    ) -> None:
        """Transcribe what the caller said (its audio and when it began, if anything), then the
        agent's reply, spoken."""
        if after is not None:
            await asyncio.wait({after})
        try:
            stt_ms = None
            if heard is not None:
                text, stt_ms = await self._transcribe(*heard)
                if not text:
                    return
            reply = await anyio.to_thread.run_sync(
                agent_turn, self.ctx.brain, self.ctx.profile, list(self.turns)
            )
            await self._speak(reply.text, reply.latency_ms, stt_ms, ended_at, end_call=reply.end_call)
        except Exception:
            log.exception("The voice call %s failed", self.ctx.call_id)
            await self.finish(DisconnectReason.SYSTEM_ERROR)

    async def _transcribe(self, heard: Audio, began_ms: int) -> tuple[str, float]:
        recognizer = self.ctx.voices.recognizer
        result = await anyio.to_thread.run_sync(recognizer.transcribe, heard)
        if result.text:
            self.turns.append(Turn("user", result.text, self.started_ms + began_ms, stt_ms=result.ms))
        return result.text, result.ms

    async def _speak(
        self, text: str, llm_ms: float | None, stt_ms: float | None, ended_at: float | None, *, end_call: bool
    ) -> None:
        synthesizer, voice = self.ctx.voices.synthesizer, self.ctx.voices.agent_voice
        spoken = await anyio.to_thread.run_sync(synthesizer.synthesize, text, voice)
        if self.ended:
            return
        payload = spoken.audio.to_mulaw()
        v2v: float | None = None
        async with self._lock:
            at = max(float(self.clock_ms), self._agent_free_ms)
            for i in range(0, len(payload), FRAME_BYTES):
                frame = base64.b64encode(payload[i : i + FRAME_BYTES]).decode()
                await self.send({"event": "media", "streamSid": self.stream_sid, "media": {"payload": frame}})
                if i == 0 and ended_at is not None:
                    v2v = round((time.perf_counter() - ended_at) * 1000, 1)
            self._marks += 1
            name = f"agent-{self._marks}"
            await self.send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})
            self._playing.add(name)
        self._recorder.add("agent", at, spoken.audio)
        self._agent_free_ms = at + spoken.audio.duration_s * 1000
        measured = v2v if ended_at is not None else voice_to_voice(stt_ms, llm_ms, spoken.first_audio_ms)
        self.turns.append(
            Turn(
                "agent",
                text,
                self.started_ms + round(at),
                llm_ms,
                tts_ms=spoken.first_audio_ms,
                v2v_ms=measured,
            )
        )
        if end_call:
            self.hang_up_after = name

    async def finish(self, reason: DisconnectReason) -> None:
        """End the call (idempotent) and record it."""
        if self.ended:
            return
        self.ended = True
        if self._task is not None and not self._task.done() and self._task is not asyncio.current_task():
            self._task.cancel()
        await anyio.to_thread.run_sync(self._record, reason)
        if self.hang_up is not None and reason is not DisconnectReason.USER_HANGUP:
            await self.hang_up()  # the transport's loop may be waiting for the far end: wake it

    def _record(self, reason: DisconnectReason) -> None:
        ctx = self.ctx
        duration_ms = max(
            self.clock_ms, round(self._agent_free_ms) if reason is DisconnectReason.AGENT_HANGUP else 0
        )
        keys = ctx.recordings.save(ctx.call_id, self._recorder.finish(duration_ms))
        duration = round(duration_ms / 1000, 1)

        def mean(values: list[float | None]) -> float | None:
            measured = [v for v in values if v is not None]
            return round(sum(measured) / len(measured), 1) if measured else None

        ending = CallEnding(
            CallStatus.COMPLETED,
            reason,
            started_at=self.started_ms,
            ended_at=self.started_ms + duration_ms,
            updated_at=max(now_ms(), self.started_ms + duration_ms),
            duration=duration,
            cost=call_cost(duration, ctx.settings.credits_per_minute),
            agent_latency=mean([t.latency_ms for t in self.turns]),
            transcriber_latency=mean([t.stt_ms for t in self.turns]),
            synthesizer_latency=mean([t.tts_ms for t in self.turns]),
            recording_key=keys[0],
            recording_dual_key=keys[1],
        )
        with ctx.db.write() as conn:
            ended = call_store.end_call(conn, ctx.call_pk, ending, [t.to_row() for t in self.turns])
        if ended.marked:
            ctx.jobs.enqueue(ctx.call_pk)
