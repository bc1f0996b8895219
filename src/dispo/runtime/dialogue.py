"""Agents that talk: the conversation loop, and the "brains" that write the agent's turns.

A :class:`Brain` writes the agent's next turn from the conversation so far. :class:`LLMBrain`
asks an LLM backend (the embedded model by default, any OpenAI-compatible server in production)
with the agent's global prompt, its variables substituted; :class:`ScriptedBrain` says fixed
lines, for tests and the dialer benchmark.

:func:`converse` runs one connected call over a :class:`~dispo.telephony.CallSession`: the agent
opens (its ``firstMessage``, or a generated greeting), then agent and person take turns until the
agent says goodbye (``agent_hangup``), the person hangs up (``user_hangup``), the person stays
silent for ``call_silence_timeout_seconds`` or the call reaches ``call_max_duration_seconds``
(both ``timeout``). Every turn is recorded with its timestamp on the call's clock, and agent turns
with the real time the model took (``latency_ms``), which also advances a simulated clock.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from dispo.calls import DisconnectReason
from dispo.llm import Backend, Message, Penalties
from dispo.overlap import sentences
from dispo.runtime.agenda import Question, agenda, open_questions
from dispo.runtime.repetition import near_duplicate, shorten, trim
from dispo.telephony.base import CallSession
from dispo.types import Row

log = logging.getLogger("dispo.calls")

Role = Literal["agent", "user"]

# Appended to every agent's prompt: replies are spoken on a phone line.
PHONE_STYLE = (
    "You are speaking on a phone call. Reply with one or two short, natural sentences, no lists "
    "or markup. When the conversation is finished, say goodbye."
)
OPENING_CUE = "(The person you called has just answered the phone. Say hello and say why you are calling.)"
DEFAULT_OPENING = "Hello! Do you have a moment to talk?"
FALLBACK_REPLY = "Sorry, could you say that again?"
WRAP_UP = "Thank you for your time. Goodbye!"
# What an agent without questions in its prompt says when its model has nothing new: in order, the
# first not said yet.
FALLBACKS = (FALLBACK_REPLY, "Is there anything else I can help you with?", WRAP_UP)
NUDGE = "Say something new: do not repeat what you said before."
MAX_SENTENCES = 2
MAX_STATEMENT_WORDS = 20  # what the agent says before the prompt's question: one short sentence
_GREETING = re.compile(r"\s*(?:hello|hi|hey|good (?:morning|afternoon|evening))\b", re.I)
# Sampling against loops, chosen on simulated calls (python -m benchmarks.agent, BENCHMARKS.md).
AGENT_PENALTIES = Penalties(repeat=1.15, frequency=0.0, presence=0.0, no_repeat_ngram=4)
RETRY_TEMPERATURE = 0.7  # the regenerated reply: another draw, not the same greedy one

_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}")
_FAREWELL = re.compile(
    r"\b(goodbye|good bye|bye|have a (great|good|nice|wonderful) (day|one|evening|week))\b", re.I
)
_END_MARKER = re.compile(r"<\s*end[_ ]?call\s*>|\[\s*end[_ ]?call\s*\]", re.I)


def substitute(text: str, variables: Mapping[str, Any]) -> str:
    """``{{name}}`` placeholders replaced by ``variables``; unknown ones are left as they are."""

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        return str(variables[key]) if key in variables and variables[key] is not None else match.group(0)

    return _VARIABLE.sub(value, text)


@dataclass(frozen=True)
class AgentProfile:
    """What a call needs of an agent, with the call's variables already substituted."""

    agent_id: str
    name: str
    prompt: str
    first_message: str | None

    @classmethod
    def from_row(cls, agent: Row, variables: Mapping[str, Any]) -> AgentProfile:
        merged = {**(agent["default_variables"] or {}), **variables}
        first = agent["first_message"]
        return cls(
            agent_id=agent["id"],
            name=agent["name"],
            prompt=substitute(agent["global_prompt"] or f"You are {agent['name']}, a helpful agent.", merged),
            first_message=substitute(first, merged) if first and first.strip() else None,
        )


@dataclass(frozen=True)
class Turn:
    role: Role
    content: str
    timestamp_ms: int
    latency_ms: float | None = None  # agent turns the model generated: its real time
    # Voice calls: the STT's time on a caller turn; the TTS's time to first audio of an agent turn,
    # and its voice-to-voice time (the caller stopped speaking → the agent's first audio).
    stt_ms: float | None = None
    tts_ms: float | None = None
    v2v_ms: float | None = None

    def to_row(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "content": self.content,
            "timestamp": self.timestamp_ms,
            "latency_ms": self.latency_ms,
            "stt_ms": self.stt_ms,
            "tts_ms": self.tts_ms,
            "v2v_ms": self.v2v_ms,
        }


@dataclass(frozen=True)
class AgentReply:
    text: str
    latency_ms: float | None
    end_call: bool = False


class Brain(Protocol):
    def reply(self, history: Sequence[Turn]) -> AgentReply:
        """The agent's next turn; ``history`` is empty for the opening line."""


class ScriptedBrain:
    """Says ``lines`` in order; the last one ends the call. ``latency_ms`` is reported per turn."""

    def __init__(self, lines: Sequence[str] | None = None, *, latency_ms: float = 0.0) -> None:
        self.lines = list(
            lines
            or (
                "Hi! I'm calling from Brightline about our AI assistant. Are you interested?",
                "Great. May I have your name, please?",
                "Thank you. Can I schedule a follow-up call next week?",
                "Thanks for your time. Goodbye!",
            )
        )
        self.latency_ms = latency_ms

    def reply(self, history: Sequence[Turn]) -> AgentReply:
        said = sum(1 for t in history if t.role == "agent")
        index = min(said, len(self.lines) - 1)
        return AgentReply(self.lines[index], self.latency_ms, end_call=index == len(self.lines) - 1)


class LLMBrain:
    """The agent's turns from an LLM backend, prompted with the agent's global prompt.

    A small model loops, so every reply is checked before it is said (:mod:`.repetition`): sampled
    with :data:`AGENT_PENALTIES`, cut of the sentences the agent already said and of clauses that
    repeat themselves; a reply left empty is regenerated once with a nudge (and some temperature),
    then replaced by a line of the prompt's own. The prompt's questions (:mod:`.agenda`) keep the
    agent on its task: a reply that does not ask the first open one gets it added, and once every
    one is answered the agent thanks the caller and says goodbye.
    """

    opening_cue = OPENING_CUE  # what the model is told when it opens the call

    def __init__(self, backend: Backend, profile: AgentProfile, *, max_tokens: int = 96) -> None:
        self.backend = backend
        self.profile = profile
        self.max_tokens = max_tokens
        self.agenda = agenda(profile.prompt)

    def messages(self, history: Sequence[Turn], note: str = "") -> list[Message]:
        system = f"{self.profile.prompt.strip()}\n\n{PHONE_STYLE}" + (f"\n\n{note}" if note else "")
        out: list[Message] = [{"role": "system", "content": system}]
        if not history or history[0].role == "agent":
            out.append({"role": "user", "content": self.opening_cue})
        for turn in history:
            role: Literal["assistant", "user"] = "assistant" if turn.role == "agent" else "user"
            if out[-1]["role"] == role:  # keep roles alternating, as chat templates expect
                out[-1] = {"role": role, "content": f"{out[-1]['content']} {turn.content}"}
            else:
                out.append({"role": role, "content": turn.content})
        return out

    def reply(self, history: Sequence[Turn]) -> AgentReply:
        # The backend serialises its own calls (one lock per model, in its worker process): the
        # latency of a turn includes waiting for the model, which is what the caller hears.
        started = time.perf_counter()
        said = [t.content for t in history if t.role == "agent"]
        pending = open_questions(self.agenda, history)
        if self.agenda and not pending and not _asks(history):
            # Every question of the prompt answered, and the caller asks nothing: done.
            return AgentReply(WRAP_UP, round((time.perf_counter() - started) * 1000, 1), end_call=True)
        text, ended = self._generate(self.messages(history), said)
        if not text:
            nudge = NUDGE + (f" Next, ask: {pending[0].text}" if pending else "")
            text, ended = self._generate(self.messages(history, nudge), said, retry=True)
        text = self._steer(text, pending, history, said)
        latency = (time.perf_counter() - started) * 1000
        return AgentReply(text, round(latency, 1), end_call=ended or is_farewell(text))

    def _generate(
        self, messages: list[Message], said: Sequence[str], *, retry: bool = False
    ) -> tuple[str, bool]:
        """The model's reply without what was said before ("" when nothing new is left), and whether
        it asked to end the call."""
        completion = self.backend.chat(
            messages,
            max_tokens=self.max_tokens,
            temperature=RETRY_TEMPERATURE if retry else 0.0,
            stop=("\n\n",),
            penalties=AGENT_PENALTIES,
        )
        text = trim(clean_reply(completion.text), said)
        if near_duplicate(text, said):
            text = ""
        return text, bool(_END_MARKER.search(completion.text))

    def _steer(
        self, text: str, pending: Sequence[Question], history: Sequence[Turn], said: Sequence[str]
    ) -> str:
        """The turn to say: the model's (at most :data:`MAX_SENTENCES`), with the first open question
        of the prompt when it does not ask it, or the goodbye once every question is answered."""
        parts = sentences(text)
        if not self.agenda:
            fallback = _unsaid(FALLBACKS, said) if history else DEFAULT_OPENING
            return " ".join(parts[:MAX_SENTENCES]) or fallback
        statement = _statement(parts)
        if pending:
            if pending[0].asked_in(text):
                return " ".join(parts[:MAX_SENTENCES])
            greeting = "" if history or _GREETING.match(statement) else "Hello!"
            return " ".join(p for p in (greeting, statement, pending[0].text) if p)
        # Every question answered and the caller asked something (reply() said goodbye otherwise).
        return " ".join(parts[:MAX_SENTENCES]) or WRAP_UP


def _asks(history: Sequence[Turn]) -> bool:
    """Whether the caller's last turn asks something."""
    return "?" in next((t.content for t in reversed(history) if t.role == "user"), "")


def _statement(parts: Sequence[str]) -> str:
    """The first sentence of ``parts`` that is not a question (after a bare greeting), cut to its
    first clauses when it runs past :data:`MAX_STATEMENT_WORDS`."""
    statements = [shorten(s, MAX_STATEMENT_WORDS) for s in parts if not s.endswith("?")]
    statements = [s for s in statements if s]
    if len(statements) > 1 and _GREETING.match(statements[0]) and len(statements[0].split()) <= 3:
        return f"{statements[0]} {statements[1]}"  # "Hello!" is no statement: keep the one after it
    return statements[0] if statements else ""


def _unsaid(lines: Sequence[str], said: Sequence[str]) -> str:
    """The first of ``lines`` not said yet; the last one (a goodbye) when all were."""
    return next((line for line in lines if not near_duplicate(line, said)), lines[-1])


def clean_reply(text: str) -> str:
    """The spoken part of a model's reply: no end marker, no speaker label, at most three sentences."""
    text = _END_MARKER.sub("", text)
    text = re.sub(r"^\s*(agent|assistant|ai)\s*:\s*", "", text.strip(), flags=re.I)
    text = text.split("\n")[0].strip().strip('"').strip()
    # A small model sometimes writes the other side's lines too: keep only the agent's.
    text = re.split(r"\b(?:user|customer|caller|human)\s*:", text, flags=re.I)[0].strip()
    sentences = re.findall(r"[^.!?]+[.!?]*", text)
    return " ".join(s.strip() for s in sentences[:3]).strip()


def is_farewell(text: str) -> bool:
    return bool(_FAREWELL.search(text))


def agent_turn(brain: Brain, profile: AgentProfile, history: Sequence[Turn]) -> AgentReply:
    """The agent's next turn: the first message verbatim when it opens, else the brain's reply."""
    if not history and profile.first_message:
        return AgentReply(profile.first_message, None, end_call=False)
    return brain.reply(history)


@dataclass
class ConversationResult:
    started_ms: int
    ended_ms: int
    reason: DisconnectReason
    turns: list[Turn] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return round((self.ended_ms - self.started_ms) / 1000, 1)

    @property
    def agent_latency_ms(self) -> float | None:
        return _mean([t.latency_ms for t in self.turns])

    @property
    def transcriber_latency_ms(self) -> float | None:
        return _mean([t.stt_ms for t in self.turns])

    @property
    def synthesizer_latency_ms(self) -> float | None:
        return _mean([t.tts_ms for t in self.turns])


def _mean(values: Sequence[float | None]) -> float | None:
    measured = [v for v in values if v is not None]
    return round(sum(measured) / len(measured), 1) if measured else None


def voice_to_voice(stt_ms: float | None, llm_ms: float | None, tts_ms: float | None) -> float | None:
    """Caller stops speaking → agent's first audio: the STT, the agent's model and the TTS's time
    to first audio, one after the other (None unless the call has a voice and the turn answers
    the caller)."""
    if stt_ms is None or tts_ms is None:
        return None
    return round(stt_ms + (llm_ms or 0.0) + tts_ms, 1)


def converse(
    session: CallSession,
    brain: Brain,
    profile: AgentProfile,
    *,
    max_duration_s: float,
    silence_timeout_s: float,
    should_stop: Callable[[], bool] = lambda: False,
) -> ConversationResult:
    """Run one connected call to its end."""
    started = session.now_ms()
    turns: list[Turn] = []
    stt_ms: float | None = None  # the STT's time on what the caller said last

    def elapsed_s() -> float:
        return (session.now_ms() - started) / 1000

    def finish(reason: DisconnectReason, *, hang_up: bool = True) -> ConversationResult:
        if hang_up:
            session.hang_up()
        return ConversationResult(started, session.now_ms(), reason, turns)

    while True:
        try:
            reply = agent_turn(brain, profile, turns)
        except Exception as exc:
            # The model failed (or its worker process died: ModelCrashed). End this call cleanly,
            # keeping its transcript so far; the server and the other calls carry on.
            log.warning(
                "The agent's turn failed; ending the call as system_error: %s: %s", type(exc).__name__, exc
            )
            session.say("Sorry, we are having technical trouble. Goodbye.")
            return finish(DisconnectReason.SYSTEM_ERROR)
        if reply.latency_ms:
            session.agent_thought(reply.latency_ms)
        spoken = session.say(reply.text)
        v2v = voice_to_voice(stt_ms, reply.latency_ms, spoken.tts_ms)
        turns.append(
            Turn("agent", reply.text, spoken.at_ms, reply.latency_ms, tts_ms=spoken.tts_ms, v2v_ms=v2v)
        )
        if reply.end_call:
            return finish(DisconnectReason.AGENT_HANGUP)
        if elapsed_s() >= max_duration_s or should_stop():
            return finish(
                DisconnectReason.TIMEOUT if elapsed_s() >= max_duration_s else DisconnectReason.AGENT_HANGUP
            )
        heard = session.listen(min(silence_timeout_s, max(0.0, max_duration_s - elapsed_s())))
        stt_ms = heard.stt_ms
        if heard.text:
            turns.append(Turn("user", heard.text, heard.at_ms, stt_ms=heard.stt_ms))
        if heard.hung_up:
            return finish(DisconnectReason.USER_HANGUP, hang_up=False)
        if heard.text is None or elapsed_s() >= max_duration_s:
            return finish(DisconnectReason.TIMEOUT)
