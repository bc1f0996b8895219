"""Turn detection on a live audio stream: when the caller starts speaking, and when they have
finished (a pause long enough), from 20 ms frames.

Each frame is classified by WebRTC's voice-activity detector (``webrtcvad``, the small C detector
of Google's WebRTC, in a wheel): speech starts after :attr:`TurnDetector.start_frames` voiced
frames in a row and ends after :attr:`TurnDetector.end_frames` unvoiced ones. Time is counted in
frames, not on the wall clock, so a recorded stream replayed at any speed gives the same turns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import webrtcvad

from dispo.voice.audio import Audio

FRAME_MS = 20
Event = Literal["started", "ended"]


@dataclass
class TurnDetector:
    rate: int = 8000
    aggressiveness: int = 2  # 0 (keeps most as speech) … 3 (most aggressive)
    start_frames: int = 3  # 60 ms of speech starts a turn (and interrupts the agent)
    end_frames: int = 30  # 600 ms of silence ends it
    speaking: bool = False
    _voiced: int = 0
    _quiet: int = 0
    _utterance: bytearray = field(default_factory=bytearray)
    _vad: webrtcvad.Vad | None = None

    def __post_init__(self) -> None:
        self._vad = webrtcvad.Vad(self.aggressiveness)

    def feed(self, frame: bytes) -> Event | None:
        """One 20 ms frame of 16-bit PCM at :attr:`rate`; returns what changed, if anything."""
        assert self._vad is not None
        voiced = len(frame) == self.rate * 2 * FRAME_MS // 1000 and self._vad.is_speech(frame, self.rate)
        if not self.speaking:
            self._voiced = self._voiced + 1 if voiced else 0
            self._utterance.extend(frame)
            del self._utterance[: max(0, len(self._utterance) - len(frame) * self.start_frames)]
            if self._voiced >= self.start_frames:
                self.speaking, self._quiet = True, 0
                return "started"
            return None
        self._utterance.extend(frame)
        self._quiet = 0 if voiced else self._quiet + 1
        if self._quiet >= self.end_frames:
            self.speaking, self._voiced = False, 0
            return "ended"
        return None

    def take(self) -> Audio:
        """The last utterance's audio (call after "ended")."""
        audio = Audio(bytes(self._utterance), self.rate)
        self._utterance = bytearray()
        return audio
