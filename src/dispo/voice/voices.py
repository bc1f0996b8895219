"""What a call with a voice needs: a synthesizer, a recognizer and the two voices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dispo.voice.stt import Recognizer, get_recognizer
from dispo.voice.tts import Synthesizer, get_synthesizer

if TYPE_CHECKING:
    from dispo.config import Settings


@dataclass(frozen=True)
class Voices:
    synthesizer: Synthesizer
    recognizer: Recognizer
    agent_voice: str
    caller_voice: str  # the test provider's simulated callee

    @classmethod
    def from_settings(cls, settings: Settings) -> Voices:
        return cls(
            get_synthesizer(settings),
            get_recognizer(settings),
            settings.tts_agent_voice,
            settings.tts_caller_voice,
        )
