"""The call's summary (dispo.analytics.summary) on the scripted backend: who called whom, no meta
sentences, no copied runs or invented numbers, the prompt's length."""

from __future__ import annotations

from dispo.analytics import engine
from dispo.analytics.summary import (
    DEFAULT_SUMMARY_PROMPT,
    OWN_WORDS,
    USER_ANSWER,
    _tidy_summary,
    copied_run,
    impersonal,
    is_meta,
    opening,
    sentence_limit,
    summarize,
    unquoted,
)
from dispo.llm.testing import Script, ScriptedBackend

# The complete example's call, as the looping agent had it.
AGENT_INTRO = (
    "I'm glad to have you on my team. I'm Alex, a marketing specialist with a passion for creating "
    "engaging content. I'm here to help you with your business, and I'm happy to assist you with "
    "your marketing needs."
)
SALES_CALL = [
    {"role": "agent", "content": AGENT_INTRO},
    {"role": "user", "content": "Hello, this is Test. Who is calling?"},
    {"role": "agent", "content": "Are you interested in our marketing services?"},
    {"role": "user", "content": "Yes, I am interested. Could you call me back next week?"},
]
BOOKING = [
    {"role": "user", "content": "Can I book a table for two at seven?"},
    {"role": "agent", "content": "Yes, a table for two at 7 pm is booked."},
]


def scripted(*replies: str) -> ScriptedBackend:
    """Answers ``replies[k]`` to the k-th summary request of a test (the requests hold no assistant
    turn, so a plain script would always answer the first)."""

    class Sequenced(ScriptedBackend):
        def chat(self, messages, **options):  # type: ignore[no-untyped-def]
            completion = super().chat(messages, **options)
            index = min(len(self.requests) - 1, len(replies) - 1)
            return type(completion)(replies[index], completion.model_ms)

    return Sequenced(Script(replies=replies))


def test_the_summary_says_who_called_whom() -> None:
    assert opening(SALES_CALL) == "The agent called the user to"
    assert opening(BOOKING) == "The user"
    answering = [{"role": "agent", "content": "Thank you for calling Acme, how can I help?"}, *BOOKING]
    assert opening(answering) == "The user called the agent to"
    backend = scripted("The agent called the user to offer marketing services, and the user agreed.")
    summarize(backend, SALES_CALL, "Summarize this sales call briefly.")
    (request,) = backend.requests
    assert request.prefix == "The agent called the user to"
    assert request.messages[1]["content"].endswith("Summarize this sales call briefly.")


def test_when_the_agent_called_the_summary_says_what_the_user_answered() -> None:
    purpose = "The agent called the user to offer marketing services."
    backend = scripted(
        purpose, f"{purpose} The user said they were interested and asked for a call next week."
    )
    assert summarize(backend, SALES_CALL) == (
        f"{purpose} The user said they were interested and asked for a call next week."
    )
    first, second = backend.requests
    assert first.prefix == "The agent called the user to"
    assert second.prefix == f"{purpose} {USER_ANSWER}"
    # One sentence asked for: no second; a user who opened the call is already the subject.
    assert summarize(scripted(purpose), SALES_CALL, "Summarize the call in one sentence.") == purpose
    booking = scripted("The user books a table for two.")
    summarize(booking, BOOKING)
    assert len(booking.requests) == 1


def test_clauses_in_the_first_or_second_person_are_cut() -> None:
    assert impersonal("The user is interested and asked for your name.") == "The user is interested."
    assert impersonal("I'm here to help you with your business.") == ""
    assert impersonal("The user books a table.") == "The user books a table."


def test_meta_and_first_person_sentences_are_dropped() -> None:
    backend = scripted(
        "The agent called the user to offer marketing services. I'm here to help you with your "
        "business. This is a sample of a sales call."
    )
    assert summarize(backend, SALES_CALL) == "The agent called the user to offer marketing services."
    assert is_meta("The agent's response is a great example of how to close a sale.")
    assert is_meta("In summary, the user agreed.")
    assert not is_meta("The user asks for a sample of the paint.")


def test_a_summary_that_copies_a_turn_is_asked_for_again_in_own_words() -> None:
    copying = (
        "The agent called the user to say Alex, a marketing specialist with a passion for creating "
        "engaging content, is here. The user was interested."
    )
    backend = scripted(copying, "The agent called the user to offer marketing help. The user was interested.")
    text = summarize(backend, SALES_CALL)
    assert text == "The agent called the user to offer marketing help. The user was interested."
    assert copied_run(text, SALES_CALL) < 10
    first, second = backend.requests
    assert OWN_WORDS not in first.messages[1]["content"]
    assert second.messages[1]["content"].endswith(OWN_WORDS)


def test_a_sentence_that_still_copies_is_dropped_when_another_is_left() -> None:
    copying = (
        "The agent called the user to say Alex is a marketing specialist with a passion for creating "
        "engaging content. The user asked for a call next week."
    )
    text = summarize(scripted(copying, copying), SALES_CALL)
    assert text == "The user asked for a call next week."


def test_invented_numbers_are_repaired_or_asked_for_again() -> None:
    transfer = [{"role": "user", "content": "Please transfer 10000 USD to the charity."}]
    # A dropped zero is put back: the call has one number with those digits.
    assert summarize(scripted("The user transfers $1000 to a charity."), transfer) == (
        "The user transfers $10000 to a charity."
    )
    backend = scripted("The user transfers 250 USD to Carlos.", "The user transfers money to a charity.")
    assert summarize(backend, transfer) == "The user transfers money to a charity."


def test_the_summary_is_as_long_as_the_prompt_asks() -> None:
    three = "The user books a table. The agent confirms it. The user thanks the agent."
    assert summarize(scripted(three), BOOKING) == "The user books a table. The agent confirms it."
    assert (
        summarize(scripted(three), BOOKING, "Summarize the call in one sentence.")
        == "The user books a table."
    )
    assert summarize(scripted(three), BOOKING, "Give a detailed summary.") == three
    assert sentence_limit(DEFAULT_SUMMARY_PROMPT) == 2
    assert sentence_limit("Summarize this sales call briefly.") == 2
    assert sentence_limit("Summarize in 3 sentences.") == 3


def test_a_reply_cut_at_the_token_limit_keeps_its_whole_sentences() -> None:
    assert _tidy_summary("The user books a table.  The agent confirms and") == "The user books a table."
    assert summarize(scripted("The user books a table. The agent confirms and"), BOOKING) == (
        "The user books a table."
    )


def test_quotations_are_cut_with_the_clause_that_introduces_them() -> None:
    assert unquoted('The agent called the user to sell a product, and the user replied, "I am in."') == (
        "The agent called the user to sell a product."
    )
    assert unquoted('The user asked, "Is it free?"') == ""
    assert unquoted("The user books a table.") == "The user books a table."


def test_engine_summarize_is_the_summary_modules() -> None:
    assert engine.summarize is summarize
