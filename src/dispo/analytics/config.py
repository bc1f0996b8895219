"""Disposition-metric configuration: validation of what an agent's owner asks to extract.

Two request shapes are accepted for a metric's type, as Atoms documents both:
``{"dispositionValues": {"type": "ENUM"}}`` (the seed pages) and ``{"dispositionMetricType": "ENUM"}``
(newer docs). Both are returned, so either kind of client reads back what it expects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dispo.errors import ValidationFailed

METRIC_TYPES = ("STRING", "BOOLEAN", "INTEGER", "ENUM", "DATETIME")
MAX_METRICS = 50
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True)
class DispositionMetric:
    identifier: str
    prompt: str
    type: str
    choices: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "identifier": self.identifier,
            "dispositionMetricPrompt": self.prompt,
            "dispositionMetricType": self.type,
            "dispositionValues": {"type": self.type},
        }
        if self.choices is not None:
            out["choices"] = list(self.choices)
        return out


@dataclass(frozen=True)
class AnalyticsConfig:
    summary_prompt: str | None
    metrics: tuple[DispositionMetric, ...]


# The keys of one metric object (docs/analytics.md); anything else is refused, not dropped.
METRIC_KEYS = (
    "identifier",
    "dispositionMetricPrompt",
    "dispositionValues",
    "dispositionMetricType",
    "choices",
)


def parse_metrics(raw: Any) -> tuple[DispositionMetric, ...]:
    """Validate a ``dispositionMetrics`` list; raise one error listing every problem found."""
    if not isinstance(raw, list):
        raise ValidationFailed("dispositionMetrics must be a list of metric objects.")
    if len(raw) > MAX_METRICS:
        raise ValidationFailed(
            f"dispositionMetrics has {len(raw)} metrics; at most {MAX_METRICS} are allowed."
        )
    errors: list[str] = []
    metrics: list[DispositionMetric] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"dispositionMetrics[{i}]"
        if not isinstance(item, dict):
            errors.append(f"{where} must be an object with identifier, dispositionMetricPrompt and a type.")
            continue
        ident = item.get("identifier")
        if not isinstance(ident, str) or not _IDENTIFIER.match(ident):
            errors.append(
                f"{where}.identifier {ident!r} must be snake_case: a lowercase letter, then lowercase "
                "letters, digits or underscores (at most 64), e.g. user_interested."
            )
        elif ident in seen:
            errors.append(f"{where}.identifier {ident!r} is used twice: identifiers must be unique.")
        else:
            seen.add(ident)
        where = f"dispositionMetrics[{i}] ({ident})" if isinstance(ident, str) else where
        unknown = sorted(k for k in item if k not in METRIC_KEYS)
        if unknown:
            errors.append(
                f"{where} has unknown field {', '.join(map(str, unknown))}: a metric takes "
                + ", ".join(METRIC_KEYS)
                + "."
            )
        prompt = item.get("dispositionMetricPrompt")
        if not isinstance(prompt, str) or not prompt.strip():
            errors.append(
                f"{where}.dispositionMetricPrompt is required: the question that extracts this value."
            )
        metric_type = _metric_type(item, where, errors)
        choices = _choices(item, metric_type, where, errors)
        if not errors:
            assert isinstance(ident, str)
            assert isinstance(prompt, str)
            assert metric_type is not None
            metrics.append(DispositionMetric(ident, prompt.strip(), metric_type, choices))
    if errors:
        raise ValidationFailed(errors[0], errors=errors)
    return tuple(metrics)


def _metric_type(item: dict[str, Any], where: str, errors: list[str]) -> str | None:
    values = item.get("dispositionValues")
    nested = values.get("type") if isinstance(values, dict) else None
    flat = item.get("dispositionMetricType")
    if values is not None and not isinstance(values, dict):
        errors.append(f'{where}.dispositionValues must be an object such as {{"type": "STRING"}}.')
        return None
    given = [t for t in (nested, flat) if t is not None]
    if not given:
        errors.append(
            f"{where} needs a type: dispositionValues.type or dispositionMetricType, one of "
            + ", ".join(METRIC_TYPES)
            + "."
        )
        return None
    normalised = [t.upper() if isinstance(t, str) else t for t in given]
    for t in normalised:
        if t not in METRIC_TYPES:
            errors.append(f"{where} has type {t!r}; use one of " + ", ".join(METRIC_TYPES) + ".")
            return None
    if len(set(normalised)) > 1:
        errors.append(
            f"{where}: dispositionValues.type and dispositionMetricType disagree; give one of them."
        )
        return None
    return str(normalised[0])


def _choices(
    item: dict[str, Any], metric_type: str | None, where: str, errors: list[str]
) -> tuple[str, ...] | None:
    choices = item.get("choices")
    if metric_type != "ENUM":
        if choices not in (None, []) and metric_type is not None:
            errors.append(f"{where}: choices are only for ENUM metrics; remove them or make the type ENUM.")
        return None
    if not isinstance(choices, list) or not choices:
        errors.append(
            f'{where} is an ENUM and needs choices: a list of the allowed values, e.g. ["yes", "no"].'
        )
        return None
    cleaned: list[str] = []
    for choice in choices:
        if not isinstance(choice, str) or not choice.strip():
            errors.append(f"{where}.choices must be non-empty strings; got {choice!r}.")
            return None
        if choice.strip() in cleaned:
            errors.append(f"{where}.choices lists {choice.strip()!r} twice.")
            return None
        cleaned.append(choice.strip())
    return tuple(cleaned)
