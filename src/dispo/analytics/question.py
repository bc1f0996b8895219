"""What a metric's prompt says besides its question: whose answer it asks for, and what to answer
when the call does not say.

A prompt such as ``"What is the user's name? Return 'unknown' if not mentioned."`` holds three
things, and :func:`parse` separates them:

- the **question** itself (``"What is the user's name?"``), which the model is asked and whose
  key terms are looked for in the call;
- its **subject**: whose attribute it asks about, the caller's (``"user"``) or the agent's
  (``"agent"``), or neither (``None``: "the name of the restaurant"). Candidates that belong to the
  other party (the agent's self-introduction, for a question about the user) are not answers;
- the prompt's own **fallback**: the value it names for the not-mentioned case ("Return 'unknown'
  if not mentioned", "say N/A if …", "0 if none", "otherwise false"), typed by
  :func:`fallback_value`. Without one, null stays the abstention.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dispo.analytics.candidates import plain

Subject = str  # "user" | "agent"

USER_NOUNS = (
    "user",
    "caller",
    "customer",
    "client",
    "callee",
    "prospect",
    "lead",
    "patient",
    "buyer",
    "consumer",
    "person",
    "contact person",
    "respondent",
)
AGENT_NOUNS = (
    "agent",
    "representative",
    "rep",
    "assistant",
    "bot",
    "ai",
    "operator",
    "salesperson",
    "sales agent",
    "sales rep",
    "advisor",
)
_POSSESSIVE = r"(?:'s|s')"


def _nouns(nouns: tuple[str, ...]) -> str:
    return "|".join(re.escape(n) for n in sorted(nouns, key=len, reverse=True))


_USER = _nouns(USER_NOUNS)
_AGENT = _nouns(AGENT_NOUNS)
# "the user's name", "the caller's phone number": the possessor is the subject.
_USER_POSSESSIVE = re.compile(rf"\b(?:{_USER}){_POSSESSIVE}", re.IGNORECASE)
_AGENT_POSSESSIVE = re.compile(rf"\b(?:{_AGENT}){_POSSESSIVE}", re.IGNORECASE)
_USER_WORD = re.compile(rf"\b(?:{_USER})s?\b", re.IGNORECASE)
_AGENT_WORD = re.compile(rf"\b(?:{_AGENT})s?\b", re.IGNORECASE)
# "did the caller …", "is the user …": the main clause's subject when both parties are named.
_CLAUSE_SUBJECT = re.compile(
    r"\b(?:did|does|do|was|is|were|are|has|had|will|would|can|could|should)\s+the\s+(\w+(?:\s\w+)?)",
    re.IGNORECASE,
)
# The question asks for a person's name: "the user's name", "name of the caller", "caller's first name".
_NAME_WORDS = r"(?:(?:full|first|last|given|family|own|sur)\s*)?name"
_ASKS_NAME = re.compile(
    rf"\b(?:(?:{_USER}|{_AGENT}){_POSSESSIVE}\s+{_NAME_WORDS}\b"
    rf"|{_NAME_WORDS}\s+of\s+the\s+(?:{_USER}|{_AGENT})\b"
    rf"|(?:their|his|her)\s+{_NAME_WORDS}\b"
    rf"|who\s+(?:is|was)\s+the\s+(?:{_USER}|{_AGENT})\b"
    rf"|(?:what|how)\s+(?:is|was|should)\s+the\s+(?:{_USER}|{_AGENT})\s+(?:called|named|addressed)\b)",
    re.IGNORECASE,
)


def subject(question: str) -> Subject | None:
    """Whose attribute ``question`` asks about: ``"user"``, ``"agent"``, or None when neither or unclear."""
    question = plain(question)
    user_owns = bool(_USER_POSSESSIVE.search(question))
    agent_owns = bool(_AGENT_POSSESSIVE.search(question))
    if user_owns != agent_owns:
        return "user" if user_owns else "agent"
    user = bool(_USER_WORD.search(question))
    agent = bool(_AGENT_WORD.search(question))
    if user != agent:
        return "user" if user else "agent"
    if user and agent:
        # "When the agent offered …, did the caller accept?": the party the main clause asks about.
        for m in _CLAUSE_SUBJECT.finditer(question):
            words = m.group(1).lower()
            if _USER_WORD.match(words):
                return "user"
            if _AGENT_WORD.match(words):
                return "agent"
    return None


def asks_name(question: str) -> bool:
    """Whether ``question`` asks for a person's name (the caller's or the agent's)."""
    return bool(_ASKS_NAME.search(question)) and subject(question) is not None


# -- the prompt's own fallback ---------------------------------------------------------------------

# Conditions that mean "the call does not give it": "if not mentioned", "if none", "when unknown".
_NOT_GIVEN = (
    r"(?:[^.;:!?(),'\"]*?\b(?:not|never|no|none|nothing|n't|unknown|unclear|unsure|absent|missing|"
    r"unavailable|unspecified|unmentioned|undetermined|unanswered|without|neither|n/?a)\b[^.;:!?(),'\"]*)"
)
_VERB = (
    r"(?:return|answer|say|respond|reply|output|write|put|use|give|enter|mark|set|fill\s+in|record|"
    r"report|default\s+to|choose|select|pick)"
)
_QUOTED = r"""['"`](?P<{name}>[^'"`]{{1,40}})['"`]"""
_BARE = r"(?P<{name}>[-+]?\d+(?:\.\d+)?|[A-Za-z][\w/.-]*)"


def _value(name: str) -> str:
    return "(?:" + _QUOTED.format(name=name + "q") + "|" + _BARE.format(name=name + "b") + ")"


_FALLBACK_PATTERNS = [
    # "Return 'unknown' if not mentioned", "say N/A if the caller did not say", "answer 0 when none".
    re.compile(rf"\b{_VERB}\s+(?:with\s+|the\s+value\s+|the\s+word\s+)?{_value('v')}\s*,?\s*(?:if|when|in\s+case|where|should)\b{_NOT_GIVEN}", re.IGNORECASE),
    # "If not mentioned, return 'unknown'", "If the name is not given, answer Unknown".
    re.compile(rf"\b(?:if|when|in\s+case|where)\b{_NOT_GIVEN}[,:]?\s*(?:then\s+)?(?:just\s+)?{_VERB}\s+(?:with\s+)?{_value('v')}", re.IGNORECASE),
    # "0 if none", "(or 'none' if not mentioned)", "N/A if not applicable".
    re.compile(rf"(?:^|[\s(,;:])(?:or\s+)?{_value('v')}\s+(?:if|when)\b{_NOT_GIVEN}", re.IGNORECASE),
    # "otherwise false", "otherwise, return 'no'", "else unknown".
    re.compile(rf"\b(?:otherwise|else|or\s+else)\s*,?\s*(?:{_VERB}\s+(?:with\s+)?)?{_value('v')}", re.IGNORECASE),
    # "'no' otherwise".
    re.compile(rf"{_value('v')}\s+otherwise\b", re.IGNORECASE),
    # "default to 'unknown'", "defaults to 0", "the default is N/A".
    re.compile(rf"\bdefault(?:s)?(?:\s+value)?\s*(?:to|is|:|=)\s*{_value('v')}", re.IGNORECASE),
]  # fmt: skip
# Words that name the abstention itself: the fallback is then null, the engine's own abstention.
NULL_WORDS = frozenset(["null", "nil", "nothing", "blank", "empty", "it", "that", "this", "them", "the"])
# A bare word after the verb that is not a value: "return their name if", "say so if".
_NOT_A_VALUE = frozenset(
    [
        "a",
        "an",
        "their",
        "his",
        "her",
        "its",
        "your",
        "my",
        "so",
        "if",
        "when",
        "whether",
        "what",
        "which",
        "one",
        "only",
        "just",
        "exactly",
        "as",
        "in",
        "to",
        "all",
        "any",
        "each",
        "with",
        "from",
        "of",
        "for",
        "and",
        "or",
        "please",
    ]
)


@dataclass(frozen=True)
class Fallback:
    """The value a prompt names for the not-mentioned case, as written, and where it was said."""

    text: str
    start: int
    end: int


def find_fallback(prompt: str) -> Fallback | None:
    """The prompt's own answer for the not-mentioned case, untyped; None when it names none."""
    prompt = plain(prompt)
    best: tuple[int, Fallback] | None = None
    for rank, pattern in enumerate(_FALLBACK_PATTERNS):
        for m in pattern.finditer(prompt):
            raw = m.group("vq") if m.group("vq") is not None else m.group("vb")
            text = raw.strip().rstrip(".,;:")
            if not text or (m.group("vq") is None and text.lower() in _NOT_A_VALUE):
                continue
            start = m.start()
            while start < m.end() and prompt[start] in " (,;:":
                start += 1
            found = Fallback(text, start, m.end())
            if best is None or (rank, found.start) < (best[0], best[1].start):
                best = (rank, found)
            break
    return best[1] if best else None


_SENTENCE = re.compile(r"[^.!?]+(?:[.!?]+|$)")
_INSTRUCTION_START = re.compile(
    rf"^\s*(?:\(?\s*(?:or\s+)?(?:if|when|in\s+case|otherwise|else|default|{_VERB})\b)", re.IGNORECASE
)


def question_of(prompt: str) -> str:
    """``prompt`` without its fallback instruction: the question the call is asked to answer."""
    prompt = plain(prompt)
    fallback = find_fallback(prompt)
    if fallback is None:
        return prompt.strip()
    kept: list[str] = []
    for m in _SENTENCE.finditer(prompt):
        sentence = m.group()
        a, b = m.start(), m.end()
        if b <= fallback.start or a >= fallback.end:
            kept.append(sentence)
            continue
        # The sentence holds the fallback: drop it whole when it is only the instruction, else cut
        # the instruction out of it ("How many tickets (0 if none)?" → "How many tickets?").
        if _INSTRUCTION_START.match(sentence):
            continue
        left, right = prompt[a : fallback.start], prompt[fallback.end : b]
        if left.rstrip().endswith("(") and right.lstrip().startswith(")"):
            left, right = left.rstrip()[:-1], right.lstrip()[1:]
        cut = left + right
        cut = re.sub(r"[,;:\s]*(?:\bor\b|\band\b)?[,;:\s]*([?.!]*)\s*$", r"\1", cut)
        cut = re.sub(r"\s+([?.!,])", r"\1", cut)
        if cut.strip(" ?.!,"):
            kept.append(cut)
    text = " ".join(" ".join(s.split()) for s in kept).strip()
    return text or prompt.strip()


@dataclass(frozen=True)
class Question:
    """A metric's prompt taken apart."""

    prompt: str
    text: str  # the question, without the fallback instruction
    subject: Subject | None
    asks_name: bool
    fallback: Fallback | None


def parse(prompt: str) -> Question:
    prompt = plain(prompt)
    text = question_of(prompt)
    return Question(prompt, text, subject(text), asks_name(text), find_fallback(prompt))


__all__ = [
    "AGENT_NOUNS",
    "NULL_WORDS",
    "USER_NOUNS",
    "Fallback",
    "Question",
    "asks_name",
    "find_fallback",
    "parse",
    "question_of",
    "subject",
    "typed_fallback",
]


def typed_fallback(text: str, metric_type: str, choices: tuple[str, ...] | None = None) -> Any:
    """The fallback as a value of ``metric_type`` ("0" → 0 for INTEGER, "false" → False), or None.

    None when the text is not a value of the type ("unknown" for an INTEGER, a word outside an
    ENUM's choices) or names the abstention itself ("null", "blank"): null is then the answer.
    """
    from dispo.analytics import normalize as norm

    if text.strip().lower() in NULL_WORDS:
        return None
    if metric_type == "STRING":
        return norm.normalize_string(text)
    if metric_type == "INTEGER":
        if re.fullmatch(r"\s*[-+]?\d+\s*", text):
            return int(text)
        return norm.parse_spoken_number(text)
    if metric_type == "BOOLEAN":
        words = re.findall(r"[a-z0-9]+", text.lower())
        return norm.normalize_bool(text) if len(words) == 1 else None
    if metric_type == "ENUM":
        return norm.normalize_choice(text, choices or ())
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return parsed.isoformat() if ("T" in text or " " in text.strip()) else parsed.date().isoformat()
