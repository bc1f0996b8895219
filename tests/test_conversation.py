"""The conversation loop and the agent's brains, on the scripted LLM backend (in this process)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dispo.llm.testing import Script, ScriptedBackend
from dispo.runtime.dialogue import (
    AgentProfile,
    AgentReply,
    LLMBrain,
    ScriptedBrain,
    Turn,
    agent_turn,
    clean_reply,
    converse,
    substitute,
)
from dispo.telephony import DialRequest
from dispo.telephony.simulated import SimulatedProvider

AGENT = {
    "id": "a" * 24,
    "name": "Sales",
    "global_prompt": "You sell {{product}} for {{company}} to {{firstName}}.",
    "first_message": "Hi {{firstName}}, this is {{company}}!",
    "default_variables": {"company": "Brightline", "product": "solar panels"},
}


def scripted(*replies: str) -> ScriptedBackend:
    """The scripted backend answering ``replies[k]`` to a prompt with k agent turns (the last repeats)."""
    return ScriptedBackend(Script(replies=replies))


def test_variables_are_substituted_from_defaults_and_the_call() -> None:
    profile = AgentProfile.from_row(AGENT, {"firstName": "Asha", "company": "Acme"})
    assert profile.prompt == "You sell solar panels for Acme to Asha."
    assert profile.first_message == "Hi Asha, this is Acme!"
    assert substitute("Hello {{ missing }}", {}) == "Hello {{ missing }}"


def test_the_first_message_is_said_verbatim_then_the_model_speaks() -> None:
    profile = AgentProfile.from_row(AGENT, {"firstName": "Asha"})
    # The opening is the first message, said verbatim: the model writes the agent's second turn.
    backend = scripted("(not asked)", "Agent: Are you interested in solar panels?\nUser: yes")
    brain = LLMBrain(backend, profile)
    opening = agent_turn(brain, profile, [])
    assert (opening.text, opening.latency_ms) == ("Hi Asha, this is Brightline!", None)
    history = [Turn("agent", opening.text, 1), Turn("user", "Hello?", 2)]
    reply = agent_turn(brain, profile, history)
    assert reply.text == "Are you interested in solar panels?"
    assert reply.latency_ms is not None
    assert reply.latency_ms >= 0
    (request,) = backend.requests
    messages = request.messages
    assert messages[0]["role"] == "system"
    assert "You sell solar panels for Brightline to Asha." in messages[0]["content"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]


def test_a_farewell_or_end_marker_ends_the_call() -> None:
    profile = AgentProfile.from_row({**AGENT, "first_message": None}, {})
    brain = LLMBrain(scripted("Thank you for your time. Goodbye!"), profile)
    assert brain.reply([]).end_call
    brain = LLMBrain(scripted("All done <end_call>"), profile)
    reply = brain.reply([])
    assert reply.end_call
    assert reply.text == "All done"


def test_clean_reply_keeps_the_agents_words_only() -> None:
    assert (
        clean_reply('Assistant: "Hello there. How are you? Fine. Great."\nmore')
        == "Hello there. How are you? Fine."
    )
    assert clean_reply("Sure! Customer: no thanks") == "Sure!"
    assert clean_reply("   ") == ""


def test_an_empty_model_reply_falls_back_to_a_sentence() -> None:
    profile = AgentProfile.from_row({**AGENT, "first_message": None}, {})
    assert LLMBrain(scripted(""), profile).reply([]).text


def _call(number: str, brain: Any, **limits: float) -> Any:
    dialed = SimulatedProvider().dial(DialRequest("CALL-1-abcdef", number, variables={"firstName": "Asha"}))
    assert dialed.session is not None
    profile = AgentProfile.from_row({**AGENT, "first_message": None}, {})
    return converse(
        dialed.session,
        brain,
        profile,
        max_duration_s=limits.get("max_duration_s", 600),
        silence_timeout_s=limits.get("silence_timeout_s", 10),
    )


def test_a_whole_call_with_the_model_records_latency_per_turn() -> None:
    backend = scripted(
        "Hello! Are you interested in solar panels?", "May I have your name?", "Thanks, goodbye!"
    )
    profile = AgentProfile.from_row({**AGENT, "first_message": None}, {})
    result = _call("+15005550006", LLMBrain(backend, profile))
    agent_turns = [t for t in result.turns if t.role == "agent"]
    assert all(t.latency_ms is not None for t in agent_turns)
    assert result.agent_latency_ms is not None
    assert [t.role for t in result.turns][:2] == ["agent", "user"]
    assert result.reason in ("agent_hangup", "user_hangup")
    assert result.ended_ms > result.started_ms


def test_a_model_that_fails_ends_the_call_as_a_system_error() -> None:
    class Broken(ScriptedBrain):
        def reply(self, history: Sequence[Turn]) -> Any:
            raise RuntimeError("model crashed")

    assert _call("+15005550006", Broken()).reason == "system_error"


def test_the_maximum_duration_ends_a_call_that_goes_on() -> None:
    class Chatty(ScriptedBrain):
        def reply(self, history: Sequence[Turn]) -> Any:
            return AgentReply("Tell me more about your day, in as much detail as you like.", 0.0)

    result = _call("+15005550006", Chatty(), max_duration_s=8)
    assert result.reason == "timeout"
    assert 8 <= result.duration_s <= 20
