"""What the agent's prompt tells it to ask, as questions it can say, and which are still open.

"You are a sales agent. Ask if interested and get their name." gives two questions: "Are you
interested?" and "May I have your name?". The rules read the imperative clauses a prompt gives
its agent (ask if/whether …, ask what/when/… , ask for/about …, get/collect/confirm their …) and
turn them to the second person ("their" → "your", "they are" → "are you"). A prompt with no such
clause has no agenda, and the agent then talks as its model writes.

A question is *settled* once the caller has answered it — once the agent asked it and the caller
spoke after, or the caller said it unasked (a turn with the question's key words; for a name, "my
name is …" or "this is …"). :class:`~dispo.runtime.dialogue.LLMBrain` asks the first open question
when its model's reply does not, and never asks a settled one again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from dispo.overlap import sentences, words


class _Said(Protocol):
    @property
    def role(self) -> str: ...

    @property
    def content(self) -> str: ...


_ASK = r"(?:ask|find out|check|learn|see)"
_GET = r"(?:get|collect|obtain|request|take|note|record)"
_CONFIRM = r"(?:confirm|verify)"
_PERSON = r"(?:them|him|her|the (?:user|caller|customer|person|prospect|lead|client|patient))"
_SUBJECT = r"(?:they|he|she|the (?:user|caller|customer|person|prospect|lead|client|patient))"
_AUX = {
    "are": "are",
    "is": "are",
    "'re": "are",
    "were": "were",
    "was": "were",
    "will": "will",
    "would": "would",
    "'d": "would",
    "can": "can",
    "could": "could",
    "should": "should",
    "might": "might",
    "have": "have",
    "has": "have",
    "had": "had",
    "do": "do",
    "does": "do",
    "did": "did",
}
# First words of a clause that describes the person: "ask if interested" → "Are you interested?".
_STATE_WORDS = """
    interested available free ready happy willing open satisfied okay ok busy aware sure home
    there still currently
"""
_STATES = frozenset(_STATE_WORDS.split())
_WH = r"(?:what|when|where|which|who|whom|whose|how|why)"
_SWAP = [
    (r"\bthemselves\b", "yourself"),
    (r"\btheirs\b", "yours"),
    (r"\btheir\b", "your"),
    (r"\bthem\b", "you"),
    (r"\bthey\b", "you"),
    (r"\bthe (?:user|caller|customer|person|prospect|lead|client|patient)'s\b", "your"),
]
_STOP_WORDS = """
    a an the and or but if whether to of for in on at by with about from as is are be been was
    were they them their theirs you your yours he she him her his it its this that these those
    what when where which who whom whose how why do does did have has had will would can could
    should might may please also any some ask get find out check learn see collect obtain
    request take note record confirm verify like want need know tell make let user caller
    customer person prospect lead client patient call next so
"""
_STOP = frozenset(_STOP_WORDS.split())


@dataclass(frozen=True)
class Question:
    """One thing the prompt says to ask: how the agent asks it, and the words that mark it."""

    text: str
    keys: tuple[str, ...]
    about_name: bool = False

    def asked_in(self, text: str) -> bool:
        """Whether ``text`` (an agent turn) asks this: a question sentence with one of the keys."""
        return any(s.endswith("?") and _has_key(s, self.keys) for s in sentences(text))

    def answered_in(self, text: str) -> bool:
        """Whether ``text`` (a caller's turn) says the answer unasked."""
        if self.about_name and _INTRODUCTION.search(text):
            return True
        return _has_key(text, self.keys)


_INTRODUCTION = re.compile(r"\b(?:my name is|my name's|this is|call me|i am|i'm)\s+[A-Z][a-z]+")


def stem(word: str) -> str:
    """A crude stem, enough to match "interested" with "interest" and "names" with "name"."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and not word.endswith("ss") and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def _has_key(text: str, keys: Sequence[str]) -> bool:
    stems = {stem(w) for w in words(text)}
    return any(k in stems for k in keys)


def _swap(text: str) -> str:
    for pattern, replacement in _SWAP:
        text = re.sub(pattern, replacement, text, flags=re.I)
    return text


def _keys(text: str) -> tuple[str, ...]:
    kept = (w for w in words(text) if w not in _STOP and len(w) > 2 and "'" not in w)
    return tuple(dict.fromkeys(stem(w) for w in kept))


def _sentence(text: str) -> str:
    text = " ".join(text.split()).strip(" .,;:")
    return text[:1].upper() + text[1:] + "?"


def _yes_no(rest: str) -> str:
    """ "they are interested" → "Are you interested?"; "interested" → "Are you interested?"."""
    match = re.match(rf"{_SUBJECT}\s*('re|'d|\s\w+)\b\s*(.*)$", rest, re.I)
    if match:
        verb, tail = match.group(1).strip().lower(), match.group(2)
        if verb in _AUX:
            return _sentence(f"{_AUX[verb]} you {_swap(tail)}")
        return _sentence(f"do you {_base(verb)} {_swap(tail)}")
    first = (words(rest) or [""])[0]
    if first in _STATES or first.endswith(("ed", "ing", "ble")):
        return _sentence(f"are you {_swap(rest)}")
    return _sentence(f"could you tell me if {_swap(rest)}")


def _wh(wh: str, rest: str) -> str:
    """ "when they are available" → "When are you available?"; "what works for them" → "What works for you?"."""
    match = re.match(rf"(.*?)\b{_SUBJECT}\s*('re|'d|\s\w+)\b\s*(.*)$", rest, re.I)
    if match:
        phrase, verb, tail = match.group(1), match.group(2).strip().lower(), match.group(3)
        if verb in _AUX:
            return _sentence(f"{wh} {phrase} {_AUX[verb]} you {_swap(tail)}")
        return _sentence(f"{wh} {phrase} do you {_base(verb)} {_swap(tail)}")
    return _sentence(f"{wh} {_swap(rest)}")


def _base(verb: str) -> str:
    return verb[:-1] if verb.endswith("s") and not verb.endswith("ss") and len(verb) > 3 else verb


def _thing(rest: str) -> str:
    """ "their name" → "your name"; "name" → "your name"."""
    thing = _swap(rest).strip(" .,;:")
    return thing if re.match(r"(?:your|a|an|the|any|some)\b", thing, re.I) else f"your {thing}"


def question(clause: str, verb: str | None) -> Question | None:
    """The question one imperative clause asks for, or None; ``verb`` carries over from the clause
    before ("ask whether they want a demo and when they are free")."""
    clause = " ".join(clause.split()).strip(" .,;:")
    lead = re.match(
        rf"(?:(?:please|also|then|first|finally)\s+)*({_ASK}|{_GET}|{_CONFIRM})\b\s*(.*)$", clause, re.I
    )
    if lead:
        verb, clause = lead.group(1).lower(), lead.group(2)
    elif verb is None or not re.match(rf"(?:if|whether|{_WH})\b", clause, re.I):
        return None
    clause = re.sub(rf"^{_PERSON}\s+", "", clause, flags=re.I)
    if clause.lower().startswith("to "):  # "ask them to confirm their address"
        return question(clause[3:], None)
    text = _phrase(verb, clause) if clause else None
    keys = _keys(clause) or _keys(text or "")
    if text is None or not keys:
        return None
    return Question(text, keys, bool(re.search(r"\bname\b", clause, re.I)))


def _phrase(verb: str, clause: str) -> str | None:
    head = re.match(rf"(if|whether|for|about|{_WH})\b\s*(.*)$", clause, re.I)
    kind, rest = (head.group(1).lower(), head.group(2)) if head else ("", clause)
    if re.fullmatch(_CONFIRM, verb):
        return _sentence(f"could you confirm {_thing(clause)}")
    if re.fullmatch(_GET, verb) or kind == "for":
        return _sentence(f"may I have {_thing(rest)}, please")
    if kind in ("if", "whether"):
        return _yes_no(rest) if rest else None
    if kind == "about":
        return _sentence(f"could you tell me about {_thing(rest)}")
    if kind:
        return _wh(kind, rest)
    return _sentence(f"what is {_thing(clause)}")


def agenda(prompt: str) -> tuple[Question, ...]:
    """The questions ``prompt`` tells the agent to ask, in its order (at most one per clause)."""
    found: list[Question] = []
    for sentence in sentences(prompt):
        verb: str | None = None
        for clause in re.split(r"\s*[,;]\s*(?:(?:and|then)\s+)?|\s+(?:and|then)\s+", sentence):
            lead = re.match(
                rf"(?:(?:please|also|then|first|finally)\s+)*({_ASK}|{_GET}|{_CONFIRM})\b", clause, re.I
            )
            q = question(clause, verb)
            if lead:
                verb = lead.group(1).lower()
            if q is not None and all(q.text != f.text for f in found):
                found.append(q)
    return tuple(found)


def settled(q: Question, history: Sequence[_Said]) -> bool:
    """Whether the caller has answered ``q``: asked by the agent and spoken to after, or said unasked."""
    asked = False
    for turn in history:
        if turn.role == "agent":
            asked = asked or q.asked_in(turn.content)
        elif asked or q.answered_in(turn.content):
            return True
    return False


def open_questions(questions: Sequence[Question], history: Sequence[_Said]) -> list[Question]:
    """The questions of ``questions`` the caller has not answered yet, in order."""
    return [q for q in questions if not settled(q, history)]
