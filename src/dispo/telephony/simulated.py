"""The ``test`` provider: a stand-in for a carrier whose callees are simulated people.

Each callee is drawn from a random generator seeded by ``DISPO_TEST_PROVIDER_SEED`` and the number
called, so the same audience gives the same calls on every run:

- who the person is (stable across attempts): interested or not, gives their name or not, agrees
  to a follow-up or not, hangs up early, stays silent, how patient they are;
- how one attempt goes (seeded by the attempt number as well, so a retry can reach a person the
  first dial missed): answers, no answer, busy, or the call fails.

Names come from the member's ``firstName``/``lastName`` (audience columns or outbound
``variables``), else from a seeded list. The callee listens to what the agent says and answers
its questions (name, interest, follow-up) by keywords, volunteers the rest, and says goodbye when
its patience runs out, so both a scripted agent and a real model get a sensible conversation.

Fixed numbers behave the same whatever the seed, for tests and demos:

========================  =====================================================================
``+15005550001``          the call fails (the carrier rejects the number)
``+15005550002``          busy
``+15005550003``          no answer
``+15005550004``          answers, then says nothing (the call ends on the silence timeout)
``+15005550005``          answers and hangs up almost at once
``+15005550006``          answers, interested, gives their name, agrees to a follow-up
``+15005550007``          answers, not interested, keeps their name to themselves
========================  =====================================================================

Time is simulated: the callee thinks for half a second or so, and ``DISPO_TEST_PROVIDER_PACE``
says how much real time a simulated second takes (0 by default: as fast as the agent answers).
With ``DISPO_TEST_PROVIDER_VOICE`` (the default) calls carry audio (:class:`SimulatedSession`):
speech lasts as long as its synthesised audio, the callee's words reach the agent through the
STT, and the call is recorded. Without it media is text and speech takes ~2.5 words per second.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dispo.telephony.base import (
    CallEvent,
    CallSession,
    DialOutcome,
    DialRequest,
    DialResult,
    Heard,
    Provider,
    Spoken,
    register,
)
from dispo.voice.audio import Audio
from dispo.voice.recording import Recorder, Recording
from dispo.voice.voices import Voices

if TYPE_CHECKING:
    from dispo.config import Settings

FIRST_NAMES = ("Priya", "John", "Maria", "Wei", "Aisha", "Carlos", "Emma", "Ravi", "Fatima", "Liam")
LAST_NAMES = ("Sharma", "Smith", "Garcia", "Chen", "Khan", "Silva", "Brown", "Iyer", "Ali", "Murphy")

MAGIC: dict[str, dict[str, Any]] = {
    "+15005550001": {"outcome": DialOutcome.FAILED},
    "+15005550002": {"outcome": DialOutcome.BUSY},
    "+15005550003": {"outcome": DialOutcome.NO_ANSWER},
    "+15005550004": {"silent": True},
    "+15005550005": {"hangs_up_early": True},
    "+15005550006": {"interested": True, "gives_name": True, "agrees_follow_up": True},
    "+15005550007": {"interested": False, "gives_name": False, "agrees_follow_up": False},
}
_NORMAL = {"silent": False, "hangs_up_early": False}

WORDS_PER_SECOND = 2.5


@dataclass(frozen=True)
class Callee:
    """One simulated person, as one dial attempt finds them."""

    first_name: str
    last_name: str
    outcome: DialOutcome
    ring_seconds: float
    interested: bool
    gives_name: bool
    agrees_follow_up: bool
    hangs_up_early: bool
    silent: bool
    patience: int  # agent turns the callee listens to before wrapping up
    think_seconds: float

    @classmethod
    def draw(cls, number: str, variables: Mapping[str, Any], attempt: int, seed: int = 0) -> Callee:
        person = _rng(seed, number)
        dial = _rng(seed, number, attempt)
        first = str(variables.get("firstName") or variables.get("first_name") or person.choice(FIRST_NAMES))
        last = str(variables.get("lastName") or variables.get("last_name") or person.choice(LAST_NAMES))
        interested = person.random() < 0.5
        values: dict[str, Any] = {
            "first_name": first.strip(),
            "last_name": last.strip(),
            "interested": interested,
            "gives_name": person.random() < 0.8,
            "agrees_follow_up": interested and person.random() < 0.7,
            "hangs_up_early": person.random() < 0.06,
            "silent": person.random() < 0.03,
            "patience": person.randint(3, 6),
            "think_seconds": round(person.uniform(0.3, 1.2), 2),
        }
        roll = dial.random()
        outcome = (
            DialOutcome.ANSWERED
            if roll < 0.78
            else DialOutcome.NO_ANSWER
            if roll < 0.90
            else DialOutcome.BUSY
            if roll < 0.97
            else DialOutcome.FAILED
        )
        values["outcome"] = outcome
        values["ring_seconds"] = round(
            30.0
            if outcome is DialOutcome.NO_ANSWER
            else dial.uniform(2, 12)
            if outcome is DialOutcome.ANSWERED
            else 1.5,
            1,
        )
        magic = MAGIC.get(number)
        if magic is not None:
            values.update(_NORMAL)
            values["outcome"] = DialOutcome.ANSWERED
            values.update(magic)
            values["ring_seconds"] = 30.0 if values["outcome"] is DialOutcome.NO_ANSWER else 4.0
        return cls(**values)

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


# What the agent may be asking, by keywords. Small models phrase things loosely, so these are broad.
_ASKS_NAME = re.compile(
    r"\b(your name|who am i (speaking|talking)|may i (know|have) (who|your)|call you|name\?)"
)
_ASKS_INTEREST = re.compile(
    r"\b(interest|would you like|are you looking|does (that|this) sound|want to hear)"
)
_ASKS_FOLLOW_UP = re.compile(
    r"\b(follow[- ]?up|call you back|schedule|demo|appointment|meeting|send you|email)"
)
_FAREWELL = re.compile(r"\b(goodbye|good bye|bye|have a (great|good|nice) (day|one|evening))\b")


# What a callee says, beyond its name (Conversation's replies; a test keeps the two in step).
PHRASES = (
    "Hello? Who is this?",
    "Sorry, not a good time.",
    "Okay, bye.",
    "I'd rather not give my name.",
    "Yes, I am interested. Tell me more.",
    "No, I am not interested, thank you.",
    "Sure, a follow-up call next week works for me.",
    "No follow-up, please.",
    "Could you call me back next week to follow up?",
    "I'll think about it, no need to follow up.",
    "Okay.",
    "I said I'm not interested.",
    "I have to go now. Thanks, bye.",
    "Please don't call again. Bye.",
)


@dataclass
class Conversation:
    """The callee's side of one call: answers what is asked, volunteers the rest, then leaves."""

    callee: Callee
    heard: int = 0
    said_name: bool = False
    said_interest: bool = False
    said_follow_up: bool = False
    said: list[str] = field(default_factory=list)

    def respond(self, agent_text: str) -> tuple[str | None, bool]:
        """The reply to one agent turn (``None``: silence) and whether the callee then hangs up."""
        c = self.callee
        self.heard += 1
        if c.silent:
            return None, False
        if c.hangs_up_early:
            return "Sorry, not a good time.", True
        text = agent_text.lower()
        if _FAREWELL.search(text) and self.heard > 1:
            return "Okay, bye.", True
        parts: list[str] = []
        if _ASKS_NAME.search(text):
            parts.append(self._name())
        if _ASKS_INTEREST.search(text) and not self.said_interest:
            parts.append(self._interest())
        if _ASKS_FOLLOW_UP.search(text) and self.said_interest and not self.said_follow_up:
            parts.append(self._follow_up())
        if not parts:
            parts.append(self._volunteer())
        done = self.heard >= c.patience or (self.said_interest and self.said_follow_up and self.said_name)
        if done and not any("bye" in p.lower() for p in parts):
            parts.append(
                "I have to go now. Thanks, bye." if c.interested else "Please don't call again. Bye."
            )
        reply = " ".join(parts)
        self.said.append(reply)
        return reply, done or "bye" in reply.lower()

    def phrasebook(self) -> list[str]:
        """Everything this callee may say: the STT's hints (a carrier's speech hints for the line)."""
        c = self.callee
        return [
            f"Hello, this is {c.first_name}. Who is calling?",
            f"My name is {c.name}.",
            *PHRASES,
        ]

    def _name(self) -> str:
        self.said_name = True
        if self.callee.gives_name:
            return f"My name is {self.callee.name}."
        return "I'd rather not give my name."

    def _interest(self) -> str:
        self.said_interest = True
        if self.callee.interested:
            return "Yes, I am interested. Tell me more."
        return "No, I am not interested, thank you."

    def _follow_up(self) -> str:
        self.said_follow_up = True
        if self.callee.agrees_follow_up:
            return "Sure, a follow-up call next week works for me."
        return "No follow-up, please."

    def _volunteer(self) -> str:
        c = self.callee
        if self.heard == 1:
            if c.gives_name:
                self.said_name = True
                return f"Hello, this is {c.first_name}. Who is calling?"
            return "Hello? Who is this?"
        if not self.said_interest:
            return self._interest()
        if not self.said_name and c.gives_name:
            return self._name()
        if c.interested and not self.said_follow_up:
            self.said_follow_up = True
            if c.agrees_follow_up:
                return "Could you call me back next week to follow up?"
            return "I'll think about it, no need to follow up."
        return "Okay." if c.interested else "I said I'm not interested."


class SimulatedClock:
    """Simulated call time; advancing it sleeps ``pace`` real seconds per simulated second."""

    def __init__(self, start_ms: int, pace: float) -> None:
        self.ms = float(start_ms)
        self.pace = pace

    def now(self) -> int:
        return int(self.ms)

    def advance(self, seconds: float, *, sleep: bool = True) -> None:
        self.ms += seconds * 1000
        if sleep and self.pace > 0 and seconds > 0:
            time.sleep(seconds * self.pace)


def speaking_seconds(text: str) -> float:
    return max(0.6, len(text.split()) / WORDS_PER_SECOND)


class SimulatedSession(CallSession):
    """One simulated call. With ``voices`` it carries audio: the agent's lines are synthesised
    (the agent's voice), the callee's lines are synthesised with the caller's voice and go
    through the STT, whose words (errors and all) are what the agent hears; the clock advances
    by the audio's length and by the STT's and TTS's real times, and both sides are recorded."""

    def __init__(
        self, callee: Callee, clock: SimulatedClock, events: list[CallEvent], voices: Voices | None = None
    ) -> None:
        super().__init__()
        self.callee = callee
        self.clock = clock
        self.events = events
        self.conversation = Conversation(callee)
        self._pending: tuple[str | None, bool] | None = None
        self.ended = False
        self.voices = voices
        self.answered_ms = clock.now()
        self.recorder = Recorder() if voices is not None else None

    def now_ms(self) -> int:
        return self.clock.now()

    def say(self, text: str) -> Spoken:
        if self.ended:
            return Spoken(self.now_ms())
        if self.voices is None or self.recorder is None:
            at = self.now_ms()
            self.clock.advance(speaking_seconds(text))
            self._pending = self.conversation.respond(text)
            return Spoken(at)
        spoken = self.voices.synthesizer.synthesize(text, self.voices.agent_voice)
        self.clock.advance(spoken.first_audio_ms / 1000, sleep=False)  # that time passed for real
        at = self.now_ms()
        self.recorder.add("agent", at - self.answered_ms, spoken.audio)
        self.clock.advance(spoken.audio.duration_s)
        self._pending = self.conversation.respond(text)
        return Spoken(at, spoken.first_audio_ms)

    def listen(self, timeout_s: float) -> Heard:
        reply, hangs_up = self._pending if self._pending is not None else (None, False)
        self._pending = None
        if reply is None:
            if hangs_up:
                self._far_hang_up()
                return Heard(None, self.now_ms(), hung_up=True)
            self.clock.advance(timeout_s)
            return Heard(None, self.now_ms())
        self.clock.advance(self.callee.think_seconds)
        at = self.now_ms()
        if self.voices is None or self.recorder is None:
            self.clock.advance(speaking_seconds(reply))
            if hangs_up:
                self._far_hang_up()
            return Heard(reply, at, hung_up=hangs_up)
        audio = self.voices.synthesizer.synthesize(reply, self.voices.caller_voice).audio
        self.recorder.add("caller", at - self.answered_ms, audio)
        self.clock.advance(audio.duration_s)
        if hangs_up:
            self._far_hang_up()
        return self._heard(audio, at, hung_up=hangs_up)

    def _heard(self, audio: Audio, at: int, *, hung_up: bool) -> Heard:
        """What the agent hears of the callee's ``audio``: the STT's words (it starts when the
        callee stops speaking; its real time passes on the call's clock)."""
        assert self.voices is not None
        heard = self.voices.recognizer.transcribe(audio, hints=self.conversation.phrasebook())
        if not hung_up:  # the last words of a caller who hung up are transcribed after the call
            self.clock.advance(heard.ms / 1000, sleep=False)
        return Heard(heard.text, at, hung_up=hung_up, stt_ms=heard.ms)

    def recording(self, duration_ms: float) -> Recording | None:
        return None if self.recorder is None else self.recorder.finish(duration_ms)

    def hang_up(self) -> None:
        if not self.ended:
            self.ended = True
            self.event("hangup", "agent")

    def agent_thought(self, ms: float) -> None:
        self.clock.advance(ms / 1000, sleep=False)  # that time already passed for real

    def _far_hang_up(self) -> None:
        self.ended = True
        self.event("hangup", "user")


class SimulatedProvider(Provider):
    """Simulated callees; also counts dials per number, which tests use to catch double calls."""

    name = "test"

    def __init__(self, *, seed: int = 0, pace: float = 0.0, voices: Voices | None = None) -> None:
        self.seed = seed
        self.pace = pace
        self.voices = voices
        self.dials: Counter[str] = Counter()  # per number called
        self.dialed_calls: Counter[str] = Counter()  # per call id: more than 1 is a double dial
        self._lock = threading.Lock()

    def dial(self, request: DialRequest) -> DialResult:
        with self._lock:
            self.dials[request.to_number] += 1
            self.dialed_calls[request.call_id] += 1
        callee = Callee.draw(request.to_number, request.variables, request.attempt, self.seed)
        clock = SimulatedClock(int(time.time() * 1000), self.pace)
        events = [CallEvent("dialing", clock.now(), request.to_number)]
        clock.advance(0.8)
        events.append(CallEvent("ringing", clock.now()))
        clock.advance(callee.ring_seconds)
        if callee.outcome is not DialOutcome.ANSWERED:
            reason = (
                "The carrier rejected the number (SIP 404)" if callee.outcome is DialOutcome.FAILED else ""
            )
            events.append(CallEvent(callee.outcome.value, clock.now(), reason))  # type: ignore[arg-type]
            return DialResult(
                callee.outcome, None, events, failure_reason=reason or None, ended_ms=clock.now()
            )
        events.append(CallEvent("answered", clock.now()))
        session = SimulatedSession(callee, clock, events, self.voices)
        return DialResult(DialOutcome.ANSWERED, session, events)


@register("test")
def _factory(settings: Settings) -> Provider:
    voices = Voices.from_settings(settings) if settings.test_provider_voice else None
    return SimulatedProvider(
        seed=settings.test_provider_seed, pace=settings.test_provider_pace, voices=voices
    )
