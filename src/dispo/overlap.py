"""Word overlap between texts: what the agent's repetition guard and the summary's copy check share.

Words are lowercased runs of letters, digits and apostrophes ("I'm" is one word, "3:30" two).
Nothing here needs a model: these are the cheap checks run on every generated turn and summary.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SENTENCE_END = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?=\s|$)")
_LAST_WORD = re.compile(r"([A-Za-z.]+)\.[\"'\u201d\u2019)\]]*$")
# Words a full stop follows without ending the sentence: "Mr. Smith", "at 9 a.m. on Monday".
_ABBREVIATIONS = frozenset(
    ["mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "vs", "etc", "e.g", "i.e", "a.m", "p.m", "no"]
)


def words(text: str) -> list[str]:
    """``"I'm here, I'M HERE!"`` → ``["i'm", "here", "i'm", "here"]``."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def sentences(text: str) -> list[str]:
    """The sentences of ``text``, each with its end punctuation; a last one without it is kept.

    A sentence ends at ``.``, ``!`` or ``?`` before a space or the end, not after an abbreviation
    ("Mr.", "a.m.") and not inside a number ("3.5").
    """
    found: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        piece = text[start : match.end()]
        abbreviation = _LAST_WORD.search(piece)
        if abbreviation and abbreviation.group(1).lower() in _ABBREVIATIONS:
            continue
        found.append(piece)
        start = match.end()
    found.append(text[start:])
    return [s.strip() for s in found if s.strip(" \t\n.!?")]


def containment(text: str, other: str, n: int = 3) -> float:
    """The share of ``text``'s word n-grams that ``other`` also has (0 to 1).

    A text shorter than ``n`` words is contained only when ``other`` says the same words.
    """
    mine, theirs = words(text), words(other)
    if len(mine) < n:
        return 1.0 if mine and mine == theirs else 0.0
    grams = ngrams(mine, n)
    found = set(ngrams(theirs, n))
    return sum(g in found for g in grams) / len(grams)


def longest_shared_run(text: str, other: str) -> int:
    """The length, in words, of the longest run of consecutive words ``text`` and ``other`` share."""
    a, b = words(text), words(other)
    best = 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b, start=1):
            if x == y:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def shared_run(text: str, other: str, length: int) -> tuple[int, int] | None:
    """The word span ``(start, end)`` of ``text``'s first run of ``length`` words found in ``other``."""
    mine = words(text)
    found = set(ngrams(words(other), length))
    for i, gram in enumerate(ngrams(mine, length)):
        if gram in found:
            end = i + length
            while end < len(mine) and tuple(mine[end - length + 1 : end + 1]) in found:
                end += 1
            return i, end
    return None


# -- names and numbers --------------------------------------------------------------------------

_NUMBER_TEXT = """
    zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
    sixteen seventeen eighteen nineteen twenty
"""
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(_NUMBER_TEXT.split())} | {
    "thirty": "30",
    "forty": "40",
    "fifty": "50",
    "sixty": "60",
    "seventy": "70",
    "eighty": "80",
    "ninety": "90",
    "hundred": "100",
    "thousand": "1000",
    "million": "1000000",
}
# Capitalised words at a sentence's start that name nobody ("The user …", "They …").
_STARTER_TEXT = """
    a an the this that these those they them their he she his her it its we our you your i my
    there here what when where which who why how after before during while if as at in on of for
    to from by with but and or so then both each all some one user agent caller customer person
    mr mrs ms dr
"""
_STARTERS = frozenset(_STARTER_TEXT.split())
_UNITS = frozenset(["am", "pm", "a.m", "p.m", "usd", "ok"])
TOKEN = re.compile(r"\$?\d+(?:[.,:]\d+)*|[A-Za-z]+(?:['\u2019][A-Za-z]+)?")


def number(token: str) -> str | None:
    """The digits of a number token ("1,000" → "1000", "$5" → "5", "five" → "5"), else None."""
    if token[:1].isdigit() or token[:1] == "$":
        return token.lstrip("$").replace(",", "").rstrip(".")
    return _NUMBER_WORDS.get(token.lower())


def names_numbers(sentence: str) -> list[tuple[str, str | None]]:
    """The names and numbers ``sentence`` states, each with its digits (None for a name).

    Names: capitalised words other than "I", "AM"/"PM", and (at the sentence's start) the usual
    first words of a sentence; a possessive "'s" is dropped ("Alex's" → "Alex").
    """
    out: list[tuple[str, str | None]] = []
    for i, token in enumerate(TOKEN.findall(sentence)):
        digits = number(token)
        if digits is not None:
            out.append((token, digits))
        elif token[:1].isupper() and token != "I" and token.lower() not in _UNITS:
            name = re.sub(r"['\u2019]s$", "", token)
            if i == 0 and name.lower() in _STARTERS:
                continue
            out.append((name, None))
    return out


class Heard:
    """What a transcript says, for looking up a summary's names and numbers in it."""

    def __init__(self, turns: Sequence[str]) -> None:
        tokens = [t for turn in turns for t in TOKEN.findall(turn)]
        self.tokens = tokens
        self.words = {t.lower().replace("\u2019", "'").removesuffix("'s") for t in tokens}
        self.numbers = {n for n in (number(t) for t in tokens) if n is not None}

    def unfound(self, text: str) -> list[str]:
        """The names and numbers ``text`` states that the transcript does not say."""
        return [
            item
            for sentence in sentences(text)
            for item, digits in names_numbers(sentence)
            if not (digits in self.numbers if digits is not None else item.lower() in self.words)
        ]
