"""The one interface every telephony provider implements: dial, media in and out, hang up, events.

A provider turns a :class:`DialRequest` into a :class:`DialResult`: how the dial ended (answered,
no answer, busy, failed) and, when answered, a :class:`CallSession`. The conversation loop
(:mod:`dispo.runtime.dialogue`) only ever talks to a session:

- ``say(text)`` is media out: the agent's words. A carrier renders them with its TTS and streams
  audio; the ``test`` provider synthesises them (``DISPO_TEST_PROVIDER_VOICE``) and hands the text
  to its simulated callee.
- ``listen(timeout_s)`` is media in: what the far end said next, as text (a carrier runs its STT
  on the audio stream), or silence, and whether it then hung up.
- ``recording(duration_ms)`` is the call's audio (mono and stereo), for sessions that have it.
- ``hang_up()`` ends the call from our side; ``events`` records what happened, with times.
- ``now_ms()`` is the call's clock. Carriers use the wall clock; the ``test`` provider keeps
  simulated time so that a ten-minute call takes milliseconds, and ``agent_thought(ms)`` tells it
  how long the agent really spent thinking.

A carrier (Twilio Media Streams, SIP) is one more module that implements :class:`Provider` and
:class:`CallSession` and registers itself with :func:`register`; nothing else changes. Phone
numbers name their provider (``phone_numbers.provider``), so numbers of several providers coexist.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from dispo.calls import CallStatus, DisconnectReason
from dispo.errors import ProviderError as ProviderError  # defined in the error tree, kept importable here

if TYPE_CHECKING:
    from dispo.config import Settings
    from dispo.voice.recording import Recording


class DialOutcome(StrEnum):
    """How a dial attempt ended. Each maps to a call status and a disconnection reason."""

    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"


# (status, disconnectionReason) of a call whose dial did not connect. Atoms has no "busy" reason:
# a busy line is a dial that nobody answered.
UNCONNECTED: dict[DialOutcome, tuple[CallStatus, DisconnectReason]] = {
    DialOutcome.NO_ANSWER: (CallStatus.NO_ANSWER, DisconnectReason.DIAL_NO_ANSWER),
    DialOutcome.BUSY: (CallStatus.BUSY, DisconnectReason.DIAL_NO_ANSWER),
    DialOutcome.FAILED: (CallStatus.FAILED, DisconnectReason.CONNECTION_ERROR),
}

EventKind = Literal["dialing", "ringing", "answered", "no_answer", "busy", "failed", "hangup"]


@dataclass(frozen=True)
class CallEvent:
    kind: EventKind
    at_ms: int
    detail: str = ""  # e.g. who hung up, or the carrier's failure reason


@dataclass(frozen=True)
class DialRequest:
    call_id: str
    to_number: str
    from_number: str | None = None
    attempt: int = 0  # 0 for the first dial of this person in a campaign, 1 for the first retry, …
    # The callee's data (audience member columns or the outbound call's variables). Carriers
    # ignore it; the test provider seeds its simulated person from it.
    variables: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Heard:
    """What came in during one ``listen``: words (or ``None`` for silence; ``""`` for speech the
    STT made nothing of), then maybe a hang-up."""

    text: str | None
    at_ms: int  # when the words began (or when the silence timed out)
    hung_up: bool = False
    stt_ms: float | None = None  # voice calls: how long the STT took on these words


@dataclass(frozen=True)
class Spoken:
    """What one ``say`` did: when the far end began hearing it, and (voice calls) the TTS's time to
    first audio."""

    at_ms: int
    tts_ms: float | None = None


class CallSession(ABC):
    """One connected call."""

    def __init__(self) -> None:
        self.events: list[CallEvent] = []

    @abstractmethod
    def now_ms(self) -> int:
        """The call's clock, epoch milliseconds."""

    @abstractmethod
    def say(self, text: str) -> Spoken:
        """Media out: speak ``text`` to the far end; returns when it has been spoken."""

    @abstractmethod
    def listen(self, timeout_s: float) -> Heard:
        """Media in: the far end's next utterance, or silence after ``timeout_s``."""

    @abstractmethod
    def hang_up(self) -> None:
        """End the call from our side (idempotent)."""

    def agent_thought(self, ms: float) -> None:  # noqa: B027 - wall-clock sessions need nothing
        """``ms`` of real time passed while the agent prepared its reply (simulated clocks advance)."""

    def recording(self, duration_ms: float) -> Recording | None:
        """The call's recording, ``duration_ms`` long from the answer (None: this session has no audio)."""
        return None

    def event(self, kind: EventKind, detail: str = "") -> None:
        self.events.append(CallEvent(kind, self.now_ms(), detail))


@dataclass
class DialResult:
    outcome: DialOutcome
    session: CallSession | None  # set when answered
    events: list[CallEvent]
    failure_reason: str | None = None  # for FAILED: what the carrier said
    ended_ms: int | None = None  # for unanswered dials: when the attempt gave up


class Provider(ABC):
    """A telephony provider. ``dial`` blocks until the call is answered or the attempt ends; one
    provider instance serves many calls at once, from several threads."""

    name: ClassVar[str]

    @abstractmethod
    def dial(self, request: DialRequest) -> DialResult:
        """Place a call."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


_REGISTRY: dict[str, Callable[[Settings], Provider]] = {}


def register(name: str) -> Callable[[Callable[[Settings], Provider]], Callable[[Settings], Provider]]:
    """Register a provider factory under ``name`` (a phone number's ``provider``)."""

    def decorator(factory: Callable[[Settings], Provider]) -> Callable[[Settings], Provider]:
        _REGISTRY[name] = factory
        return factory

    return decorator


def provider_names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def make_provider(name: str, settings: Settings) -> Provider:
    """A new provider called ``name``; the call runner keeps one per name."""
    _load_builtins()
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ProviderError(
            f"Unknown telephony provider {name!r}: use one of {', '.join(sorted(_REGISTRY))} "
            "(DISPO_TELEPHONY_PROVIDER, or the phone number's provider)."
        )
    return factory(settings)


def _load_builtins() -> None:
    from dispo.telephony import simulated  # noqa: F401 - registers "test"
