"""ROUGE-1, ROUGE-2 and ROUGE-L F1, computed as Google's ``rouge-score`` package computes them.

Same tokenisation (lowercase; every run of characters other than ``a-z0-9`` is a separator), same
n-gram overlap and the same longest-common-subsequence ROUGE-L (not the summary-level ROUGE-Lsum),
no stemming (``rouge-score``'s default). Against several references, each ROUGE type takes its best F1
over them, as ``RougeScorer.score_multi`` does. Written here rather than depended on: the package
brings nltk, numpy and absl for these sixty lines; ``tests/test_evaluation.py`` checks the figures.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    fmeasure: float


def tokenize(text: str) -> list[str]:
    """``rouge-score``'s default tokens: "The agent's 2nd call." → ["the", "agent", "s", "2nd", "call"]."""
    return _NON_ALNUM.sub(" ", text.lower()).split()


def _fscore(overlap: int, predicted: int, target: int) -> Score:
    precision = overlap / max(predicted, 1)
    recall = overlap / max(target, 1)
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return Score(precision, recall, f)


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def rouge_n(target: Sequence[str], prediction: Sequence[str], n: int) -> Score:
    t, p = _ngrams(target, n), _ngrams(prediction, n)
    overlap = sum((t & p).values())
    return _fscore(overlap, sum(p.values()), sum(t.values()))


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (two rows of the dynamic-programming table)."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(target: Sequence[str], prediction: Sequence[str]) -> Score:
    if not target or not prediction:
        return Score(0.0, 0.0, 0.0)
    return _fscore(lcs_length(target, prediction), len(prediction), len(target))


def score(target: str, prediction: str) -> dict[str, Score]:
    """ROUGE-1/2/L of ``prediction`` against one reference."""
    t, p = tokenize(target), tokenize(prediction)
    return {"rouge1": rouge_n(t, p, 1), "rouge2": rouge_n(t, p, 2), "rougeL": rouge_l(t, p)}


def score_multi(targets: Sequence[str], prediction: str) -> dict[str, Score]:
    """Each ROUGE type's best score (by F1) over several references."""
    if not targets:
        raise ValueError("score_multi needs at least one reference")
    scores = [score(t, prediction) for t in targets]
    return {kind: max((s[kind] for s in scores), key=lambda s: s.fmeasure) for kind in ROUGE_TYPES}
