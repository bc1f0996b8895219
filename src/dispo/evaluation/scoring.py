"""The scoring rules of ``dispo eval`` for extracted metrics, and the type-validity checks.

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
