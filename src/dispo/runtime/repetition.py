"""Repetition in what the agent says: found and cut, without a model.

A small model loops: it says its previous turn again ("I'm Alex, a marketing specialist…" every
turn), or a clause twice in one sentence ("I'm a customer service representative, and I'm not a
customer service representative"). Three checks, all on words (:mod:`dispo.overlap`):

- :func:`near_duplicate`: a text whose word trigrams are mostly (:data:`NEAR_DUPLICATE`) in one
  earlier text says that text again, reworded at most a little;
- :func:`repeated_clause`: a turn that says a run of :data:`CLAUSE_NGRAM` words twice, or two of
  its clauses near-duplicate each other;
- :func:`trim`: a reply without what was already said — each sentence that near-duplicates an
  earlier turn's sentence (or an earlier sentence of the reply) dropped, each sentence cut before
  a clause that repeats itself.

The conversation loop (:class:`~dispo.runtime.dialogue.LLMBrain`) trims every reply, regenerates
one that is still a near-duplicate, and ``python -m benchmarks.agent`` measures the rates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from dispo.overlap import containment, ngrams, sentences, words

NEAR_DUPLICATE = 0.6  # share of a text's word trigrams found in one earlier text
CLAUSE_NGRAM = 4  # words: a run this long said twice in one turn is a repeated clause
_CLAUSE_BREAK = re.compile(
    r"\s*(?:[,;:\u2014\u2013]|\s-\s)\s*(?:(?:and|but|or|so)\b\s*)?|\s+(?:and|but|or|so)\s+", re.I
)
_WORD_SPAN = re.compile(r"[A-Za-z0-9]+(?:['\u2019][A-Za-z]+)?")


def same_words(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` say the same words (case, punctuation and spacing aside)."""
    return bool(words(a)) and words(a) == words(b)


def near_duplicate(text: str, earlier: Iterable[str], threshold: float = NEAR_DUPLICATE) -> bool:
    """Whether ``text`` says one of ``earlier`` again: the same words, or most of its trigrams."""
    return any(same_words(text, e) or containment(text, e) >= threshold for e in earlier)


def verbatim_repeat(text: str, earlier: Iterable[str]) -> bool:
    """Whether ``text`` is word for word one of ``earlier``."""
    return any(same_words(text, e) for e in earlier)


def clauses(text: str) -> list[str]:
    """The clauses of ``text``: its sentences split at commas, semicolons, "and", "but", "or", "so"."""
    return [c.strip() for s in sentences(text) for c in _CLAUSE_BREAK.split(s) if c and c.strip(" .!?")]


def repeated_clause(text: str) -> bool:
    """Whether one turn repeats itself: a run of :data:`CLAUSE_NGRAM` words twice, or two of its
    clauses (of three words or more) near-duplicates of each other."""
    grams = ngrams(words(text), CLAUSE_NGRAM)
    if len(set(grams)) < len(grams):
        return True
    parts = [c for c in clauses(text) if len(words(c)) >= 3]
    return any(near_duplicate(c, parts[:i]) for i, c in enumerate(parts) if i)


def cut_repeat(sentence: str) -> str:
    """``sentence`` cut before the clause where a run of :data:`CLAUSE_NGRAM` words comes again;
    unchanged when nothing repeats, empty when what is left has fewer than three words."""
    spans = [m.span() for m in _WORD_SPAN.finditer(sentence)]
    tokens = [sentence[a:b].lower().replace("\u2019", "'") for a, b in spans]
    seen: set[tuple[str, ...]] = set()
    for i, gram in enumerate(ngrams(tokens, CLAUSE_NGRAM)):
        if gram in seen:
            head = sentence[: spans[i][0]]
            breaks = [m.start() for m in _CLAUSE_BREAK.finditer(head)]
            head = head[: breaks[-1]] if breaks else head
            head = head.rstrip(" ,;:\u2014\u2013-")
            if len(words(head)) < 3:
                return ""
            return head if head.endswith(("?", "!", ".")) else head + "."
        seen.add(gram)
    return sentence


def shorten(sentence: str, max_words: int) -> str:
    """``sentence`` cut at its last clause break within ``max_words`` words; "" when its first
    clause is already longer."""
    if len(words(sentence)) <= max_words:
        return sentence
    cuts = [
        m.start() for m in _CLAUSE_BREAK.finditer(sentence) if len(words(sentence[: m.start()])) <= max_words
    ]
    head = sentence[: cuts[-1]].rstrip(" ,;:\u2014\u2013-") if cuts else ""
    return head + "." if head else ""


def trim(text: str, earlier: Sequence[str]) -> str:
    """``text`` without what was said before: sentences that near-duplicate a sentence of
    ``earlier`` (or an earlier one of ``text``) dropped, sentences that repeat a clause cut."""
    said = [s for turn in earlier for s in sentences(turn)]
    kept: list[str] = []
    for sentence in sentences(text):
        sentence = cut_repeat(sentence)
        if sentence and not near_duplicate(sentence, [*said, *kept]):
            kept.append(sentence)
    return " ".join(kept)
