"""The agent that talks: repetition found and cut, the prompt's questions asked, on the scripted
backend; and one short simulated call with the real embedded model."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from dispo.llm import Backend, Completion, Message, Penalties
from dispo.llm.testing import Script, ScriptedBackend
from dispo.runtime.agenda import agenda, open_questions
from dispo.runtime.dialogue import (
    AGENT_PENALTIES,
    WRAP_UP,
    AgentProfile,
    LLMBrain,
    Turn,
    converse,
)
from dispo.runtime.repetition import (
    cut_repeat,
    near_duplicate,
    repeated_clause,
    shorten,
    trim,
    verbatim_repeat,
)
from dispo.telephony import DialRequest
from dispo.telephony.simulated import SimulatedProvider

EXAMPLE_PROMPT = "You are a sales agent. Ask if interested and get their name."
LOOP = "I'm a customer service representative, and I'm not a customer service representative."
ALEX = (
    "I'm glad to have you on my team. I'm Alex, a marketing specialist with a passion for creating "
    "engaging content."
)


def profile(prompt: str = EXAMPLE_PROMPT) -> AgentProfile:
    return AgentProfile("a" * 24, "Sales", prompt, None)


def history(*lines: str) -> list[Turn]:
    """Turns alternating agent, user, agent, … from ``lines``."""
    return [Turn("agent" if i % 2 == 0 else "user", line, i * 1000) for i, line in enumerate(lines)]


# -- the detector and the cleaner ---------------------------------------------------------------


def test_a_reworded_earlier_turn_is_a_near_duplicate_and_a_new_one_is_not() -> None:
    earlier = [ALEX]
    assert near_duplicate(
        "Hello, I'm Alex, a marketing specialist with a passion for creating engaging content.", earlier
    )
    assert not near_duplicate("May I have your name, please?", earlier)
    assert verbatim_repeat(
        "i'm glad to have you on my team!  I'm Alex, a marketing specialist "
        "with a passion for creating engaging content",
        earlier,
    )
    assert not verbatim_repeat("I'm glad to have you on my team.", earlier)


def test_a_clause_said_twice_in_one_turn_is_found_and_cut() -> None:
    assert repeated_clause(LOOP)
    assert cut_repeat(LOOP) == "I'm a customer service representative."
    assert not repeated_clause("I'm calling about solar panels. Are you interested?")
    assert cut_repeat("Are you interested?") == "Are you interested?"
    # Clauses that say the same thing in other words count too.
    assert repeated_clause("We can help you save money, and we can help you save time and money.")


def test_trim_drops_what_was_said_before_and_keeps_what_is_new() -> None:
    reply = (
        "Hello, I'm Alex, a marketing specialist with a passion for creating engaging content. "
        "Are you interested in a free trial?"
    )
    assert trim(reply, [ALEX]) == "Are you interested in a free trial?"
    assert trim(f"{LOOP} How can I help?", []) == "I'm a customer service representative. How can I help?"
    assert trim("Thanks! Thanks!", []) == "Thanks!"
    assert trim(ALEX, [ALEX]) == ""


def test_a_long_sentence_is_shortened_at_a_clause_break() -> None:
    long = (
        "I'll be happy to help with any questions or concerns, and we can discuss your business in "
        "more detail if needed, whenever you like."
    )
    assert shorten(long, 12) == "I'll be happy to help with any questions or concerns."
    assert shorten("Short and sweet.", 12) == "Short and sweet."
    assert shorten("One two three four five six seven eight nine ten eleven twelve thirteen.", 5) == ""


# -- the prompt's questions ----------------------------------------------------------------------


def test_the_complete_examples_prompt_gives_its_two_questions() -> None:
    interest, name = agenda(EXAMPLE_PROMPT)
    assert interest.text == "Are you interested?"
    assert name.text == "May I have your name, please?"
    assert name.about_name
    assert interest.asked_in("Hello! Are you interested in our product?")
    assert not interest.asked_in("I am interested in you.")  # not a question


@pytest.mark.parametrize(
    ("prompt", "questions"),
    [
        (
            "You call for Brightline Solar. Ask whether they would like a free quote, and if so, "
            "whether a follow-up call next week works.",
            ["Would you like a free quote?", "Could you tell me if a follow-up call next week works?"],
        ),
        (
            "Ask the caller when they are available and which plan they use. Confirm their email address.",
            ["When are you available?", "Which plan do you use?", "Could you confirm your email address?"],
        ),
        (
            "Find out what time works for them, then ask them to confirm their phone number.",
            ["What time works for you?", "Could you confirm your phone number?"],
        ),
        ("Ask if they're interested in solar panels.", ["Are you interested in solar panels?"]),
        (
            "Ask whether they would like a free quote, and whether a follow-up call next week works for them.",
            [
                "Would you like a free quote?",
                "Could you tell me if a follow-up call next week works for you?",
            ],
        ),
        ("You are a helpful agent. Be polite.", []),
    ],
)
def test_prompts_are_read_for_the_questions_they_say_to_ask(prompt: str, questions: list[str]) -> None:
    assert [q.text for q in agenda(prompt)] == questions


def test_a_question_is_open_until_the_caller_answers_it_asked_or_not() -> None:
    questions = agenda(EXAMPLE_PROMPT)
    assert open_questions(questions, []) == list(questions)
    asked = history("Hi! Are you interested?", "Hmm, who is this?")
    assert [q.text for q in open_questions(questions, asked)] == ["May I have your name, please?"]
    # Said before it was asked: "this is Priya" answers the name question.
    volunteered = history("Hi there.", "Hello, this is Priya. I'm not interested.")
    assert open_questions(questions, volunteered) == []


# -- the brain, on the scripted backend -----------------------------------------------------------


def scripted(*replies: str) -> ScriptedBackend:
    return ScriptedBackend(Script(replies=replies))


def test_replies_are_sampled_with_the_penalties_and_n_gram_blocking() -> None:
    backend = scripted("Hello! I'm calling about our new product.")
    LLMBrain(backend, profile()).reply([])
    (request,) = backend.requests
    assert request.penalties == AGENT_PENALTIES
    assert isinstance(request.penalties, Penalties)
    assert request.penalties.repeat > 1.0
    assert request.penalties.no_repeat_ngram > 0


def test_the_agent_asks_the_prompts_question_its_model_left_out() -> None:
    backend = scripted("Hello! I'm calling about our new product. What brings you here today?")
    reply = LLMBrain(backend, profile()).reply([])
    # The model's statement, then the prompt's first question instead of the model's own question.
    assert reply.text == "Hello! I'm calling about our new product. Are you interested?"
    assert not reply.end_call


def test_a_reply_that_repeats_an_earlier_turn_is_regenerated_once_with_a_nudge() -> None:
    said = history(ALEX, "Yes, I am interested. Tell me more.")
    # Both the reply and its regeneration say the first turn again: the prompt's next question is said.
    backend = scripted("(opening)", ALEX)
    reply = LLMBrain(backend, profile()).reply(said)
    assert reply.text == "May I have your name, please?"
    first, second = backend.requests
    assert "do not repeat" not in first.messages[0]["content"]
    assert "do not repeat" in second.messages[0]["content"]
    assert "May I have your name, please?" in second.messages[0]["content"]
    assert second.temperature > first.temperature == 0.0


def test_the_regenerated_reply_is_used_when_it_says_something_new() -> None:
    class Nudged(ScriptedBackend):
        def chat(self, messages: Sequence[Message], **options: Any) -> Completion:
            completion = super().chat(messages, **options)
            if "do not repeat" in messages[0]["content"]:
                return Completion("Great to hear. What is your name?", completion.model_ms)
            return completion

    backend = Nudged(Script(replies=("(opening)", ALEX)))
    reply = LLMBrain(backend, profile()).reply(history(ALEX, "Yes, I am interested."))
    assert reply.text == "Great to hear. What is your name?"


def test_an_internally_repeated_clause_is_cut_before_it_is_said() -> None:
    backend = scripted("(opening)", f"{LOOP} May I have your name?")
    reply = LLMBrain(backend, profile()).reply(history("Hi! Are you interested?", "Yes."))
    assert reply.text == "I'm a customer service representative. May I have your name?"
    assert not repeated_clause(reply.text)


def test_once_every_question_is_answered_the_agent_says_goodbye() -> None:
    backend = scripted("unused")
    done = history("Hi! Are you interested?", "Yes.", "May I have your name, please?", "It's Asha.")
    reply = LLMBrain(backend, profile()).reply(done)
    assert (reply.text, reply.end_call) == (WRAP_UP, True)
    assert not backend.requests  # no model call needed to say goodbye


def test_an_agent_without_questions_never_says_the_same_turn_twice() -> None:
    looping = scripted("Tell me more about your day.")
    brain = LLMBrain(looping, profile("You are a friendly assistant."))
    turns: list[Turn] = []
    for user in ("Hi.", "Hmm.", "Okay.", "Well."):
        reply = brain.reply(turns)
        assert not verbatim_repeat(reply.text, [t.content for t in turns if t.role == "agent"])
        turns += [Turn("agent", reply.text, len(turns)), Turn("user", user, len(turns) + 1)]
        if reply.end_call:
            break
    assert reply.end_call  # out of new things to say, it ends the call rather than loop


# -- the real model ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_backend() -> Iterator[Backend]:
    from dispo.llm.local import LocalBackend, default_model_path

    backend = LocalBackend(default_model_path(), n_ctx=2048)
    yield backend
    backend.close()


def agent_turns(turns: Sequence[Turn]) -> list[str]:
    return [t.content for t in turns if t.role == "agent"]


def test_a_short_call_with_the_real_model_never_repeats_a_turn(local_backend: Backend) -> None:
    # Seed 2, this number: the callee is not interested and keeps their name (the old agent looped here).
    dialed = SimulatedProvider(seed=2).dial(DialRequest("CALL-1-abcdef", "+916366821717"))
    assert dialed.session is not None
    result = converse(
        dialed.session,
        LLMBrain(local_backend, profile()),
        profile(),
        max_duration_s=120,
        silence_timeout_s=10,
    )
    said = agent_turns(result.turns)
    assert len(said) >= 2
    for i, text in enumerate(said):
        assert not verbatim_repeat(text, said[:i]), said
    assert any(q.asked_in(" ".join(said)) for q in agenda(EXAMPLE_PROMPT)), said
