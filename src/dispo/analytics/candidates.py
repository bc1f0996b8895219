"""Candidate answers found in a transcript, for the model to rank.

A small model is a poor writer of values but a fair judge between them. Extraction therefore
lists what the call could be saying for a metric — spans for STRING, numbers for INTEGER, dates and
times for DATETIME — each with where it was said, and lets the model score them
(see :mod:`dispo.analytics.engine`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dispo.analytics.normalize import NUMBER_WORDS, find_dates, find_times, parse_spoken_number

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "caller",
        "caller's",
        "agent",
        "user",
        "call",
        "request",
        "regarding",
        "according",
        "want",
        "wants",
        "wanted",
        "name",
        "type",
        "kind",
        "please",
        "okay",
        "ok",
        "yes",
        "thanks",
        "thank",
        "also",
        "like",
        "need",
        "get",
        "got",
        "one",
        "much",
        "many",
    ]
)
_GREETINGS = frozenset(
    [
        "hi",
        "hello",
        "hey",
        "bye",
        "goodbye",
        "okay",
        "ok",
        "yes",
        "yeah",
        "no",
        "sure",
        "great",
        "perfect",
        "thanks",
        "thank",
        "please",
        "sorry",
        "well",
        "alright",
        "i",
        "i'm",
        "i'd",
        "i'll",
        "is",
        "it",
        "that",
        "this",
        "what",
        "how",
        "can",
        "could",
        "would",
        "will",
        "do",
        "does",
        "did",
        "the",
        "a",
        "an",
        "and",
    ]
)
_WORD = re.compile(r"[A-Za-z0-9][\w'&.-]*")


@dataclass(frozen=True)
class Mention:
    """A candidate value and where it was said (index of the turn, position in the transcript)."""

    surface: str
    value: Any
    turn: int
    order: int
    role: str
    # The words said right after the value ("3 tickets" → "tickets").
    after: str = ""


def key_terms(question: str) -> list[str]:
    """The content words of a metric's question: what a call must mention to answer it."""
    words = re.findall(r"[a-z]+", question.lower())
    return [w for w in words if w not in STOPWORDS and len(w) > 2]


def stem(word: str) -> str:
    """Truncation stemming: the first five letters ("shared", "share" → "share"; "location" → "locat")."""
    return word.lower()[:5]


def matches(term: str, word: str) -> bool:
    """Whether ``word`` says ``term``: the same stem, or one the start of the other ("beds", "bedrooms")."""
    if stem(term) == stem(word):
        return True
    short, long = sorted((term.removesuffix("s"), word.removesuffix("s")), key=len)
    return len(short) >= 3 and long.startswith(short) and short not in STOPWORDS


# Currency said as a symbol or slang is the word a question uses ("$122", "bucks" → "dollars").
_CURRENCY = (("$", " dollars "), ("€", " euros "), ("£", " pounds "), ("bucks", "bucks dollars"))


def words_of(text: str) -> set[str]:
    """The lower-case words of ``text``, currency symbols spelled out."""
    text = text.lower()
    for symbol, spelled in _CURRENCY:
        text = text.replace(symbol, spelled)
    return set(re.findall(r"[a-z]+", text))


def term_hits(question: str, turns: Sequence[dict[str, str]]) -> list[int]:
    """For each turn, how many of the question's key terms it mentions."""
    terms = set(key_terms(question))
    out = []
    for t in turns:
        said = words_of(t["content"])
        out.append(sum(any(matches(term, w) for w in said) for term in terms))
    return out


def words(turns: Sequence[dict[str, str]], *, roles: tuple[str, ...] = ("user",)) -> list[Mention]:
    """Single content words said by ``roles``: candidates for values that are not names ("pop", "comedy")."""
    out: list[Mention] = []
    for i, turn in enumerate(turns):
        if turn["role"] not in roles:
            continue
        for w in re.findall(r"[A-Za-z][a-z'-]+", turn["content"]):
            if w.lower() not in STOPWORDS and w.lower() not in _GREETINGS and len(w) > 2:
                out.append(Mention(w, w, i, len(out), turn["role"]))
    return out


_CALENDAR = frozenset(
    [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "today",
        "tomorrow",
        "tonight",
    ]
)


def _is_calendar(surface: str) -> bool:
    """ "March 1st", "Friday": a date, which DATETIME handles, not a name."""
    words = re.findall(r"[a-z]+|\d+", surface.lower())
    return (
        bool(words)
        and words[0] in _CALENDAR
        and all(w in _CALENDAR or w.isdigit() or w in {"st", "nd", "rd", "th", "the", "of"} for w in words)
    )


def spans(turns: Sequence[dict[str, str]], *, max_words: int = 6) -> list[Mention]:
    """Name-like spans: runs of capitalised words and numbered addresses.

    A lone capitalised word that opens a sentence ("Enjoy", "Make") is a name only if the call
    never uses it in lower case; calendar words are dates, not names.
    """
    lower_words = {w for t in turns for w in re.findall(r"\b[a-z][a-z'-]*", t["content"])}
    out: list[Mention] = []
    order = 0
    for i, turn in enumerate(turns):
        text = turn["content"]
        tokens = [(m.group(), m.start()) for m in _WORD.finditer(text)]
        j = 0
        while j < len(tokens):
            word, start = tokens[j]
            if _starts_name(word, start, text):
                k = j + 1
                while (
                    k < len(tokens) and k - j < max_words and _continues_name(tokens[k][0], tokens[k - 1][0])
                ):
                    k += 1
                while k > j + 1 and tokens[k - 1][0].lower() in {"of", "the", "and", "&", "at", "de", "in"}:
                    k -= 1
                surface = text[start : tokens[k - 1][1] + len(tokens[k - 1][0])].rstrip(".,'")
                opens_sentence = not text[:start].strip() or text[:start].rstrip()[-1] in ".!?"
                common = (
                    k == j + 1
                    and (word.lower() in lower_words or word.lower() in STOPWORDS)
                    and opens_sentence
                )
                if surface.lower() not in _GREETINGS and not common and not _is_calendar(surface):
                    out.append(Mention(surface, surface, i, order, turn["role"]))
                    order += 1
                j = k
            else:
                j += 1
    return out


def _starts_name(word: str, start: int, text: str) -> bool:
    if word[0].isdigit():
        # "1275 Central Boulevard": a house number followed by a capitalised street name.
        rest = text[start + len(word) :].lstrip()
        return word.isdigit() and bool(rest) and rest[0].isupper()
    if not word[0].isupper():
        return False
    if word.lower() in _GREETINGS and not word.isupper():
        return False
    return word not in {"I", "I'm", "I'd", "I'll", "I've"}


def _continues_name(word: str, previous: str) -> bool:
    if previous.endswith((".", ",", "?", "!")) and not re.fullmatch(r"[A-Z][a-z]?\.", previous):
        return False
    return word[0].isupper() or word[0].isdigit() or word.lower() in {"of", "the", "and", "&", "de", "#"}


def numbers(turns: Sequence[dict[str, str]]) -> list[Mention]:
    """Every number said (digits or words), as ints, excluding clock times."""
    out: list[Mention] = []
    order = 0
    pattern = re.compile(
        r"\$?\d[\d,]*(?:\.\d+)?|\b(?:(?:"
        + "|".join(sorted(NUMBER_WORDS | {"hundred", "thousand", "couple"}, key=len, reverse=True))
        + r")(?:[\s-]+|\b))+",
        re.IGNORECASE,
    )
    for i, turn in enumerate(turns):
        text = turn["content"]
        clock_spans = [
            m.span() for m in re.finditer(r"\d{1,2}:\d{2}|\d{1,2}\s*[ap]\.?m\b", text, re.IGNORECASE)
        ]
        for m in pattern.finditer(text):
            if any(a <= m.start() < b for a, b in clock_spans):
                continue
            if re.match(r"(?:st|nd|rd|th)\b", text[m.end() :], re.IGNORECASE):
                continue  # an ordinal: a day of the month, not a count
            surface = m.group().strip(" -,")
            if not surface or surface.lower() in {"a", "an"}:
                continue
            value = parse_spoken_number(surface)
            if value is None:
                continue
            after = " ".join(re.findall(r"[a-z]+", text[m.end() :].lower())[:2])
            if surface.startswith("$") or after.startswith("bucks"):
                after = f"dollars {after}"
            out.append(Mention(surface, value, i, order, turn["role"], after))
            order += 1
    return out


def dates(turns: Sequence[dict[str, str]], reference: datetime) -> list[Mention]:
    out: list[Mention] = []
    for i, turn in enumerate(turns):
        for surface, value in find_dates(turn["content"], reference):
            out.append(Mention(surface, value, i, len(out), turn["role"]))
    return out


def times(turns: Sequence[dict[str, str]]) -> list[Mention]:
    out: list[Mention] = []
    for i, turn in enumerate(turns):
        for surface, value in find_times(turn["content"]):
            out.append(Mention(surface, value, i, len(out), turn["role"]))
    return out


def distinct(mentions: Sequence[Mention], key: Any = None) -> list[Mention]:
    """One mention per value (compared case-insensitively), keeping the last time it was said."""
    last: dict[Any, Mention] = {}
    for m in mentions:
        k = key(m) if key else (m.value.lower() if isinstance(m.value, str) else m.value)
        last.pop(k, None)
        last[k] = m
    return list(last.values())


__all__ = [
    "Mention",
    "dates",
    "distinct",
    "key_terms",
    "matches",
    "numbers",
    "spans",
    "stem",
    "term_hits",
    "times",
    "words",
    "words_of",
]
