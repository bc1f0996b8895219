"""A call's recording as it happens: the agent's and the caller's audio on two tracks, each clip
placed at its time on the call's clock (milliseconds since the call was answered), so the
recording and the transcript's timestamps agree. At the end: a mono mix and a stereo file (agent
left, caller right), both WAV at :data:`~dispo.voice.audio.PIPELINE_RATE`, as long as the call."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

from dispo.voice.audio import PIPELINE_RATE, SAMPLE_WIDTH, Audio, interleave, mix, wav_bytes

Track = Literal["agent", "caller"]


@dataclass(frozen=True)
class Recording:
    mono: bytes  # WAV
    stereo: bytes  # WAV, agent left, caller right
    duration_s: float


class Recorder:
    """Collects clips on two tracks; thread-safe (a phone call's audio arrives on its own thread)."""

    def __init__(self, rate: int = PIPELINE_RATE) -> None:
        self.rate = rate
        self._tracks: dict[Track, bytearray] = {"agent": bytearray(), "caller": bytearray()}
        self._lock = threading.Lock()

    def add(self, track: Track, at_ms: float, audio: Audio) -> None:
        """Place ``audio`` on ``track`` starting ``at_ms`` after the call began (overwriting what
        was there: a track is one voice)."""
        pcm = audio.at_rate(self.rate).pcm
        start = max(0, round(at_ms * self.rate / 1000)) * SAMPLE_WIDTH
        with self._lock:
            data = self._tracks[track]
            if len(data) < start + len(pcm):
                data.extend(bytes(start + len(pcm) - len(data)))
            data[start : start + len(pcm)] = pcm

    def truncate(self, track: Track, at_ms: float) -> None:
        """Silence ``track`` from ``at_ms`` on (the agent's speech cut by a barge-in)."""
        cut = max(0, round(at_ms * self.rate / 1000)) * SAMPLE_WIDTH
        with self._lock:
            data = self._tracks[track]
            if cut < len(data):
                data[cut:] = bytes(len(data) - cut)

    def finish(self, duration_ms: float) -> Recording:
        """Both tracks cut or padded to ``duration_ms``, as WAV files."""
        size = max(0, round(duration_ms * self.rate / 1000)) * SAMPLE_WIDTH
        with self._lock:
            agent, caller = (bytes(self._tracks[t][:size].ljust(size, b"\x00")) for t in ("agent", "caller"))
        return Recording(
            mono=wav_bytes(mix(agent, caller), self.rate, channels=1),
            stereo=wav_bytes(interleave(agent, caller), self.rate, channels=2),
            duration_s=size / SAMPLE_WIDTH / self.rate,
        )
