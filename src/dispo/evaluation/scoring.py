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

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

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
