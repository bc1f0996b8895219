"""The call's summary: who spoke with whom, what was asked, what was decided, what happens next.

:func:`summarize` asks the model once, with the agent's ``summaryPrompt`` (default
:data:`DEFAULT_SUMMARY_PROMPT`, two sentences), and makes the reply start with who called whom
(:func:`opening`: "The agent called the user to …", or "The user …" for a conversation the user
opens): a small model prefilled so writes a summary in the third person that says why the call
was made, rather than carrying on the call or describing the transcript. Then, without a model:

- **meta sentences** about the text rather than the call ("This is a sample of a sales call.",
  "In summary, …") are dropped, as long as a sentence is left; a clause in the first or second
  person (the agent's "I'm here to help you", copied) and a quotation (a summary reports, it does
  not quote) are cut, each with the clause that introduces it;
- **copied runs and invented facts**: a summary that repeats :data:`COPY_WORDS` or more
  consecutive words of one turn is quoting, not summarising; one that states a name or a number
  the call never says ("$1000" for a call about 10000 USD) is wrong. Such a summary is asked for
  once more, in the model's own words and with the call's names and numbers only; of the two, the
  one with fewer such sentences is kept, and a sentence that still has one is dropped while
  another is left;
- **the answer**: when the agent placed the call and the summary does not say what the user did
  (one sentence on why the agent called), a sentence is written on after it from "The user said
  they …" (reported speech: prefilled with just "The user", the model quotes); a user who opened
  the conversation is already the first sentence's subject;
- **length**: at most the number of sentences the prompt asks for ("in one sentence", "two
  sentences"; two by default, no limit for a "detailed" summary), and a reply cut at the token
  limit keeps its last whole sentence (:func:`_tidy_summary`).

``dispo eval`` measures it on DialogSum (ROUGE against human summaries, and faithfulness: the
summary's content words, names and numbers found in the transcript); see docs/evaluation.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from dispo.llm import Backend
from dispo.overlap import Heard, longest_shared_run, number, sentences

DEFAULT_SUMMARY_PROMPT = (
    "Summarize the call in two sentences: what the user wanted and how the agent responded or what "
    "was agreed."
)
SYSTEM_PROMPT = "You write short, factual summaries of phone calls."
USER_ANSWER = "The user said they"  # reported speech: a small model quotes the user otherwise
OWN_WORDS = "Use your own words, and only names and numbers that were said in the call."
DEFAULT_SENTENCES = 2
COPY_WORDS = 10  # consecutive words of one turn: a summary that repeats this many is quoting
MAX_TOKENS = 96

_COUNTS = {"a": 1, "one": 1, "single": 1, "a single": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_SENTENCE_COUNT = re.compile(
    r"\b(a single|single|one|two|three|four|five|\d+|a)\s+(?:short\s+|brief\s+)?(?:sentences?|lines?)\b", re.I
)
_UNLIMITED = re.compile(r"\b(?:detail(?:ed)?|in depth|thorough(?:ly)?|paragraphs?|bullet)", re.I)
_META = re.compile(
    r"^(?:in summary|to summarize|to sum up|overall|summary:|here is|here's)\b"
    r"|\b(?:is|was|seems|appears|serves as)\s+(?:to be\s+)?(?:a|an|like an?)\s+(?:\w+\s+){0,2}"
    r"(?:sample|example|summary|demonstration|transcript|illustration)\b",
    re.I,
)
_ANSWERING = re.compile(
    r"thank(?:s| you) for calling|how (?:can|may) i (?:help|assist)|you(?:'ve| have) reached", re.I
)
_USER_AFTER = re.compile(r"\bthe user\b", re.I)
_PERSONAL = re.compile(
    r"\b(?:I|I'm|I've|I'll|I'd|me|my|mine|we|we're|our|us|you|you're|your|yours|yourself)\b", re.I
)
_CLAUSE_BREAK = re.compile(r",\s*(?:(?:and|but|while|so)\s)?|;\s|\s(?:and|but|while|so)\s")
_QUOTED = re.compile(r"\"[^\"]*\"|\u201c[^\u201d]*\u201d")


def summarize(backend: Backend, transcript: Sequence[Mapping[str, object]], prompt: str | None = None) -> str:
    """A short summary of the call, following the agent's ``summaryPrompt`` when one is set."""
    instruction = (prompt or "").strip() or DEFAULT_SUMMARY_PROMPT
    limit = sentence_limit(instruction)
    check = _Check(transcript)
    summary = check.repair(_clean(_ask(backend, transcript, instruction), limit))
    if check.flaws(summary):
        again = check.repair(_clean(_ask(backend, transcript, f"{instruction} {OWN_WORDS}"), limit))
        if again and check.flaws(again) < check.flaws(summary):
            summary = again
        summary = check.keep_sound(summary)
    start = opening(transcript)
    if limit != 1 and start != "The user" and not _USER_AFTER.search(summary, len(start)):
        summary = _answer(backend, transcript, instruction, summary, limit, check)
    return summary


def _answer(
    backend: Backend,
    transcript: Sequence[Mapping[str, object]],
    instruction: str,
    summary: str,
    limit: int | None,
    check: _Check,
) -> str:
    """``summary`` (why the agent called) and a sentence on what the user answered, written on from
    "The user said they" after it; ``summary`` alone when that sentence is dropped or unsound."""
    more = _clean(_ask(backend, transcript, instruction, prefix=f"{summary} {USER_ANSWER}"), limit)
    parts = sentences(more)
    if len(parts) > 1 and parts[0] == summary and not check.unsound(parts[1]):
        return f"{summary} {parts[1]}"
    return summary


def _ask(
    backend: Backend, transcript: Sequence[Mapping[str, object]], instruction: str, prefix: str | None = None
) -> str:
    completion = backend.chat(
        [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"Call transcript:\n{_transcript_text(transcript)}\n\n{instruction}"},
        ],
        max_tokens=MAX_TOKENS,
        prefix=opening(transcript) if prefix is None else prefix,
    )
    return completion.text


def _transcript_text(transcript: Sequence[Mapping[str, object]]) -> str:
    # As dispo.analytics.engine.format_transcript writes it: the same prompt prefix as extraction's.
    return "\n".join(
        f"{'User' if t['role'] == 'user' else 'Agent'}: {str(t['content']).strip()}" for t in transcript
    )


def opening(transcript: Sequence[Mapping[str, object]]) -> str:
    """What the summary starts with: who called whom, when the transcript tells, else who spoke first.

    An agent that opens the call placed it ("The agent called the user to …"), unless it opens as
    one answering ("Thank you for calling", "How can I help?"): then the user called. A transcript
    the user opens is a conversation the user started ("The user …").
    """
    first = next((t for t in transcript if str(t["content"]).strip()), None)
    if first is None or first["role"] != "agent":
        return "The user"
    if _ANSWERING.search(str(first["content"])):
        return "The user called the agent to"
    return "The agent called the user to"


def sentence_limit(instruction: str) -> int | None:
    """The number of sentences ``instruction`` asks for; None for a detailed summary; else 2."""
    match = _SENTENCE_COUNT.search(instruction)
    if match:
        count = match.group(1).lower()
        return int(count) if count.isdigit() else _COUNTS[count]
    return None if _UNLIMITED.search(instruction) else DEFAULT_SENTENCES


def is_meta(sentence: str) -> bool:
    """Whether ``sentence`` is about the text, not the call: "This is a sample of a sales call."."""
    return bool(_META.search(sentence.strip()))


def personal(sentence: str) -> re.Match[str] | None:
    """Where ``sentence`` speaks as "I"/"we" or to "you" outside quotes: a turn's words, not a
    summary's (None when it does not)."""
    return _PERSONAL.search(_QUOTED.sub(lambda m: " " * len(m.group(0)), sentence))


def impersonal(sentence: str) -> str:
    """``sentence`` cut before the clause that says "I", "we" or "you" ("The user is interested and
    asked for your name." → "The user is interested."); "" when too little is left."""
    found = personal(sentence)
    return sentence if found is None else _cut_before(sentence, found.start())


def unquoted(sentence: str) -> str:
    """``sentence`` without the quotation it makes: cut at the clause break before the quote ("The
    user replied, "I'm …"" → "" when nothing is left before it); unchanged without quotes."""
    quote = re.search(r"[\"\u201c]", sentence)
    return sentence if quote is None else _cut_before(sentence, quote.start())


def copied_run(summary: str, transcript: Sequence[Mapping[str, object]]) -> int:
    """The longest run of consecutive words ``summary`` shares with any one turn."""
    return max((longest_shared_run(summary, str(t["content"])) for t in transcript), default=0)


def _cut_before(sentence: str, index: int) -> str:
    """``sentence`` up to the last clause break before ``index``, as a sentence of four words or more."""
    head = sentence[:index].rstrip(" ,;:")
    cuts = [m.start() for m in _CLAUSE_BREAK.finditer(head)]
    head = head[: cuts[-1]].rstrip(" ,;:") if cuts else ""
    return head + "." if len(head.split()) >= 4 else ""


def _clean(text: str, limit: int | None) -> str:
    parts = [p for p in (impersonal(unquoted(s)) for s in sentences(_tidy_summary(text))) if p]
    kept = [s for s in parts if not is_meta(s)] or parts
    return " ".join(kept[:limit] if limit else kept)


def _squash(digits: str) -> str:
    """``"10000"`` → ``"10"``: runs of one digit made one."""
    return re.sub(r"(\d)\1+", r"\1", digits)


class _Check:
    """What may not be in a summary of ``transcript``: a run of :data:`COPY_WORDS` words of one
    turn, a name or a number the call does not say."""

    def __init__(self, transcript: Sequence[Mapping[str, object]]) -> None:
        self.transcript = transcript
        self.heard = Heard([str(t["content"]) for t in transcript])

    def repair(self, summary: str) -> str:
        """``summary`` with each number the call does not say replaced by the one it does that has the
        same digits but for how often one repeats ("$1000" for "10000 USD"): a small model copying
        a long number drops or doubles a repeated digit. Only when exactly one number fits."""
        for item in dict.fromkeys(self.heard.unfound(summary)):
            digits = number(item)
            if digits is None:
                continue
            fits = {n for n in self.heard.numbers if n != digits and _squash(n) == _squash(digits)}
            if len(fits) == 1:
                fixed = ("$" if item.startswith("$") else "") + fits.pop()
                summary = re.sub(rf"(?<![\d.,$]){re.escape(item)}(?!\d)", fixed, summary)
        return summary

    def unsound(self, sentence: str) -> bool:
        return copied_run(sentence, self.transcript) >= COPY_WORDS or bool(self.heard.unfound(sentence))

    def flaws(self, summary: str) -> int:
        """The sentences of ``summary`` that copy a turn or state what the call does not."""
        return sum(self.unsound(s) for s in sentences(summary))

    def keep_sound(self, summary: str) -> str:
        """``summary`` without its unsound sentences, unless that would leave nothing."""
        kept = [s for s in sentences(summary) if not self.unsound(s)]
        return " ".join(kept) if kept else summary


def _tidy_summary(text: str) -> str:
    text = " ".join(text.split())
    # A small model may trail off mid-sentence at the token limit: keep whole sentences.
    if text and text[-1] not in ".!?" and "." in text:
        text = text[: text.rfind(".") + 1]
    return text
