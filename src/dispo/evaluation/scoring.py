"""The scoring rules of ``dispo eval`` for extracted metrics, and the type-validity checks; and the
faithfulness of summaries to their transcript (:func:`faithfulness`).

- A ``null`` expected value is an abstention target: the prediction is right only when it is null.
- ENUM, BOOLEAN and INTEGER: exact match (ENUM after case and punctuation normalisation).
- DATETIME: only the part the label names is compared: ``date`` → the ``YYYY-MM-DD`` of the value,
  ``time`` → its ``HH:MM`` (24 h), as written: a timezone suffix is allowed and not converted.
- STRING: case- and punctuation-insensitive, against the expected value and every accepted form.

A value that is not valid for its type (an ENUM outside its choices, ``"yes"`` for a BOOLEAN, ``True``
for an INTEGER, an unparseable DATETIME, an empty STRING) is never right.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Literal

from dispo.analytics.config import METRIC_TYPES, DispositionMetric
from dispo.overlap import TOKEN, Heard, names_numbers, number, sentences

_SPACES = re.compile(r"\s+")


def normalise_text(value: str) -> str:
    """Casefolded, punctuation replaced by spaces, whitespace collapsed: "Atlanta, GA." → "atlanta ga"."""
    text = unicodedata.normalize("NFKC", value).casefold()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return _SPACES.sub(" ", text).strip()


def parse_iso(value: str) -> tuple[date | None, time | None] | None:
    """The date and time of an ISO 8601 date, datetime (with or without timezone) or time; None if not one."""
    text = value.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text), None
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.date(), parsed.timetz()
    except ValueError:
        pass
    if ":" not in text:  # "1545" or "2019" are too ambiguous to be taken as times
        return None
    try:
        return None, time.fromisoformat(text)
    except ValueError:
        return None


def is_type_valid(metric: DispositionMetric, value: Any) -> bool:
    """Whether a non-null ``value`` is a legal value of ``metric``'s type (null is always legal)."""
    if value is None:
        return True
    if metric.type == "BOOLEAN":
        return isinstance(value, bool)
    if metric.type == "INTEGER":
        return isinstance(value, int) and not isinstance(value, bool)
    if metric.type == "ENUM":
        return isinstance(value, str) and metric.choices is not None and value in metric.choices
    if metric.type == "DATETIME":
        return isinstance(value, str) and parse_iso(value) is not None
    if metric.type == "STRING":
        return isinstance(value, str) and bool(value.strip())
    return False


def matches(
    metric: DispositionMetric,
    expected: Any,
    predicted: Any,
    *,
    accepted: Sequence[str] = (),
    datetime_part: str = "date",
) -> bool:
    """Whether ``predicted`` is right for ``expected`` under the rules above."""
    if expected is None:
        return predicted is None
    if predicted is None or not is_type_valid(metric, predicted):
        return False
    if metric.type in ("BOOLEAN", "INTEGER"):
        return bool(predicted == expected)
    if metric.type == "ENUM":
        return normalise_text(predicted) == normalise_text(str(expected))
    if metric.type == "STRING":
        wanted = {normalise_text(str(expected)), *(normalise_text(a) for a in accepted)}
        return normalise_text(predicted) in wanted
    if metric.type == "DATETIME":
        return datetime_text(predicted, datetime_part) == str(expected).strip()
    return False


def datetime_text(value: str, part: str) -> str | None:
    """The named part of an ISO 8601 value as the labels write it: YYYY-MM-DD, HH:MM or YYYY-MM-DDTHH:MM."""
    parsed = parse_iso(value)
    if parsed is None:
        return None
    day, clock = parsed
    if part == "date":
        return day.isoformat() if day else None
    if part == "time":
        return clock.strftime("%H:%M") if clock else None
    if day is None:
        return None
    return day.isoformat() + ("T" + clock.strftime("%H:%M") if clock else "")


@dataclass(frozen=True)
class TargetResult:
    """One metric of one dialogue: what was expected, what came back, and the verdicts."""

    record_id: str
    identifier: str
    type: str
    origin: str
    expected: Any
    predicted: Any
    correct: bool
    valid: bool
    missing: bool = False  # the strategy returned no value at all for this identifier
    confidence: float | None = None  # the confidence the strategy reported for what it returned
    # The engine's proposal before it decided whether to abstain, and the evidence it weighed:
    # what `dispo eval --fit-calibration` fits the calibrated confidence on.
    proposed: Any = None
    proposed_correct: bool | None = None
    features: dict[str, float] | None = None
    # Whether abstaining would be right: null, or the prompt's own fallback, is the expected value.
    abstention_correct: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "identifier": self.identifier,
            "type": self.type,
            "origin": self.origin,
            "expected": self.expected,
            "predicted": self.predicted,
            "correct": self.correct,
            "valid": self.valid,
            **({"missing": True} if self.missing else {}),
            **({"confidence": round(self.confidence, 4)} if self.confidence is not None else {}),
            **(
                {"proposed": self.proposed, "proposed_correct": self.proposed_correct}
                if self.features is not None
                else {}
            ),
            **(
                {"features": {k: round(v, 4) for k, v in self.features.items()}}
                if self.features is not None
                else {}
            ),
        }


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Tally:
    targets: int
    correct: int
    answerable: int
    answerable_correct: int

    @classmethod
    def of(cls, results: Iterable[TargetResult]) -> Tally:
        rs = list(results)
        answerable = [r for r in rs if r.expected is not None]
        return cls(
            targets=len(rs),
            correct=sum(r.correct for r in rs),
            answerable=len(answerable),
            answerable_correct=sum(r.correct for r in answerable),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "targets": self.targets,
            "correct": self.correct,
            "accuracy": ratio(self.correct, self.targets),
            "answerable": self.answerable,
            "answerable_correct": self.answerable_correct,
            "answerable_accuracy": ratio(self.answerable_correct, self.answerable),
        }


def extraction_scores(results: Sequence[TargetResult], *, examples: int = 10) -> dict[str, Any]:
    """Accuracy overall, per type and per label origin; abstention precision/recall; type validity."""
    expected_null = [r for r in results if r.expected is None]
    predicted_null = [r for r in results if r.predicted is None]
    both_null = [r for r in predicted_null if r.expected is None]
    values = [r for r in results if r.predicted is not None]
    invalid = [r for r in values if not r.valid]
    per_type = {t: Tally.of(r for r in results if r.type == t).to_json() for t in METRIC_TYPES}
    origins = sorted({r.origin for r in results})
    return {
        "overall": Tally.of(results).to_json(),
        "per_type": {t: v for t, v in per_type.items() if v["targets"]},
        "per_origin": {o: Tally.of(r for r in results if r.origin == o).to_json() for o in origins},
        "abstention": {
            "expected_null": len(expected_null),
            "predicted_null": len(predicted_null),
            "correct_abstentions": len(both_null),
            # Of the nulls returned, how many were right to be null; of the nulls due, how many came.
            "precision": ratio(len(both_null), len(predicted_null)),
            "recall": ratio(len(both_null), len(expected_null)),
        },
        "type_validity": {
            "values": len(values),
            "valid": len(values) - len(invalid),
            "rate": ratio(len(values) - len(invalid), len(values)),
            "invalid_examples": [
                {"id": r.record_id, "identifier": r.identifier, "type": r.type, "value": repr(r.predicted)}
                for r in invalid[:examples]
            ],
        },
        "missing": sum(r.missing for r in results),
    }


# -- calibration ------------------------------------------------------------------------------------

ECE_BINS = 10
Half = Literal["fit", "held-out"]


def half(record_id: str) -> Half:
    """The dev split: a dialogue is in the ``fit`` half when the SHA-256 of its id is even, else
    ``held-out``. Calibration is fitted on the first and its error reported on the second."""
    return "fit" if hashlib.sha256(record_id.encode("utf-8")).digest()[-1] % 2 == 0 else "held-out"


def reliability(pairs: Sequence[tuple[float, bool]], bins: int = ECE_BINS) -> dict[str, Any]:
    """Expected calibration error over ``(confidence, correct)`` pairs, and the reliability table.

    The confidences are put in ``bins`` equal-width bins over [0, 1] (a confidence of 1 in the
    last); ECE is the mean over pairs of |accuracy of the bin - mean confidence of the bin|, i.e.
    each bin's gap weighted by its share of the pairs.
    """
    table: list[dict[str, Any]] = []
    total = len(pairs)
    ece = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = [(c, r) for c, r in pairs if low <= c < high or (b == bins - 1 and c == high)]
        if not inside:
            table.append({"bin": f"{low:.1f}-{high:.1f}", "count": 0, "confidence": None, "accuracy": None})
            continue
        confidence = sum(c for c, _ in inside) / len(inside)
        accuracy = sum(r for _, r in inside) / len(inside)
        ece += len(inside) / total * abs(accuracy - confidence)
        table.append(
            {
                "bin": f"{low:.1f}-{high:.1f}",
                "count": len(inside),
                "confidence": confidence,
                "accuracy": accuracy,
            }
        )
    return {"targets": total, "ece": ece if total else None, "bins": table}


def calibration_scores(results: Sequence[TargetResult]) -> dict[str, Any] | None:
    """ECE and reliability of the reported confidences: on the held-out half (the figure that
    counts), on the fit half, and on every target. None when the strategy reports no confidences."""
    scored = [r for r in results if r.confidence is not None]
    if not scored:
        return None

    def of(rs: Sequence[TargetResult]) -> dict[str, Any]:
        out = reliability([(float(r.confidence or 0.0), r.correct) for r in rs])
        out["accuracy"] = ratio(sum(r.correct for r in rs), len(rs))
        out["per_type"] = {
            t: reliability([(float(r.confidence or 0.0), r.correct) for r in rs if r.type == t])["ece"]
            for t in METRIC_TYPES
            if any(r.type == t for r in rs)
        }
        return out

    return {
        "split": "dialogues whose sha256(id) ends in an even byte are the fit half, the others held out",
        "held_out": of([r for r in scored if half(r.record_id) == "held-out"]),
        "fit": of([r for r in scored if half(r.record_id) == "fit"]),
        "all": of(scored),
    }


# ---------------------------------------------------------------------------------------------
# Summaries: faithfulness to the transcript

# A summary sentence is *supported* when at least this share of its content words is in the transcript.
SUPPORT = 2 / 3
# Words every summary uses to name the speakers and the call; not content the transcript must hold.
_ROLE_TEXT = """
    user users agent agents caller callers call called calls calling conversation conversations
    person
"""
_ROLE_WORDS = frozenset(_ROLE_TEXT.split())
_STOPWORD_TEXT = """
    a about above after again against all also am an and any are as at be because been before
    being both but by can could did do does doing down during each either few for from further
    had has have having he her here hers herself him himself his how i if in into is it its
    itself just let me more most my myself no nor not of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    s t don doesn didn isn wasn aren weren won wouldn can't i'm i've i'd i'll you're you've
    you'd you'll he's she's it's we're we've they're they've they'd that's there's what's let's
    also however one's
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
# Words that frame who said what ("asked", "agreed", "offered"): a summary's, not the call's content.
_FRAMING_TEXT = """
    ask request offer agre agree want discuss explain tell told respond response repli reply
    provid provide mention decid decide suggest thank say said talk describ describe help confirm
    inform express shar share invit invite convey
"""
_FRAMING = frozenset(_FRAMING_TEXT.split())


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and not word.endswith("ss") and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


@dataclass(frozen=True)
class Faithfulness:
    """How much of one summary the transcript bears out."""

    sentences: int
    supported: int  # sentences with at least SUPPORT of their content words in the transcript
    content_words: int
    content_found: int
    names_numbers: tuple[str, ...]  # the names and numbers the summary states
    unfound: tuple[str, ...]  # those the transcript does not contain

    def to_json(self) -> dict[str, Any]:
        return {
            "sentences": self.sentences,
            "supported": self.supported,
            "content_words": self.content_words,
            "content_found": self.content_found,
            "names_numbers": list(self.names_numbers),
            "unfound": list(self.unfound),
        }


def faithfulness(summary: str, transcript: Sequence[str]) -> Faithfulness:
    """Which of ``summary``'s sentences, content words, names and numbers ``transcript`` (its turns) holds.

    Content words: lowercased words that are not stop words, the words naming the speakers
    ("user", "agent", "call") or framing what they said ("asked", "agreed", "offered"); found when
    the transcript has a word of the same crude stem, or (six letters or more) the same first six
    letters ("transportation" — "transport"). Names and numbers: :func:`dispo.overlap.names_numbers`
    (capitalised words; digits and number words, compared as digits), found when the transcript
    says them.
    """
    heard = Heard(transcript)
    stems = {_stem(w) for w in heard.words}
    prefixes = {s[:6] for s in stems if len(s) >= 6}
    total = found = supported = 0
    stated: list[str] = []
    parts = sentences(summary)
    for sentence in parts:
        content = _content_words(sentence)
        hits = sum(_stem(w) in stems or (len(w) >= 6 and w[:6] in prefixes) for w in content)
        total, found = total + len(content), found + hits
        supported += not content or hits >= SUPPORT * len(content)
        stated += [item for item, _ in names_numbers(sentence)]
    return Faithfulness(len(parts), supported, total, found, tuple(stated), tuple(heard.unfound(summary)))


def _content_words(sentence: str) -> list[str]:
    words = (t.lower().replace("\u2019", "'").removesuffix("'s") for t in TOKEN.findall(sentence))
    return [
        w
        for w in words
        if w not in _STOPWORDS
        and w not in _ROLE_WORDS
        and _stem(w) not in _FRAMING
        and w not in _FRAMING
        and number(w) is None
        and len(w) > 1
    ]


def faithfulness_scores(results: Sequence[Faithfulness], *, copied: int = 0) -> dict[str, Any]:
    """The faithfulness of a run's summaries, summed over them (micro averages)."""
    total = sum(r.sentences for r in results)
    stated = sum(len(r.names_numbers) for r in results)
    unfound = [u for r in results for u in r.unfound]
    content = sum(r.content_words for r in results)
    return {
        "rule": (
            f"a sentence is supported when ≥ {SUPPORT:.0%} of its content words are in the transcript; "
            "names and numbers count when the transcript says them"
        ),
        "summaries": len(results),
        "sentences": total,
        "supported_sentences": sum(r.supported for r in results),
        "sentence_support": ratio(sum(r.supported for r in results), total),
        "content_word_coverage": ratio(sum(r.content_found for r in results), content),
        "names_numbers": stated,
        "names_numbers_found": stated - len(unfound),
        "names_numbers_rate": ratio(stated - len(unfound), stated),
        "unfound_examples": unfound[:10],
        "copied": copied,
    }
