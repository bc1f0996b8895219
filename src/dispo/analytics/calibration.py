"""Calibrated confidence: the probability that an extracted value is right.

The engine proposes a value for each metric and describes how it got there with a few *features*
(:data:`FEATURES`): the model's probability of the chosen candidate among the others, whether there
was a choice at all, how many candidates there were, how much of the question the call talks about,
who said the value, and so on. Two small logistic models per metric type turn those features into

- ``p_right``: the probability that the proposed value is the right answer, and
- ``p_null``: the probability that the call does not hold the answer at all (the right answer is null).

The engine returns the value unless ``p_null`` is at least ``abstain_at`` and within
``abstain_margin`` of ``p_right`` or above it (then it abstains: the confidence of the null, or of
the prompt's own fallback, is ``p_null``); the confidence of a value is ``p_right``. Both are fitted
with the weights: the margin lets the engine abstain on a call that probably does not say, even
when its one candidate is about as likely, which is how the abstention recall target is met.
Confidence is clipped to [0.01, 0.99]: a value chosen over others is never reported as certain.

The weights are fitted (Platt scaling with evidence features, L2-regularised logistic regression)
on a dev split of labelled dialogues by ``dispo eval FILE --fit-calibration``, and stored next to
this module in ``calibration.json``; see docs/analytics.md for the split and the measured ECE.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

FEATURES = (
    "bias",  # 1
    "none",  # 1 when there is no value to propose (no candidate, no evidence)
    "p",  # logit of the chosen candidate's probability among those scored (0 when there was no choice)
    "single",  # 1 when there was one candidate only: no choice was made
    "n",  # log(1 + number of candidates)
    "near",  # key terms of the question in the value's turn or the one before (0-1)
    "user",  # 1 when the user said the value
    "cover",  # share of the question's key terms the call mentions anywhere (0-1)
    "pol",  # BOOLEAN and yes/no ENUM: 1 when the reply's wording (yes/no) agrees with the model
    "named",  # a question for a person's name: 1 when the call marks the value as that person's name
)
PARAMS_FILE = Path(__file__).with_name("calibration.json")
MIN_CONFIDENCE = 0.01
MAX_CONFIDENCE = 0.99
TYPES = ("STRING", "BOOLEAN", "INTEGER", "ENUM", "DATETIME")


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)
    return e / (1 + e)


def logit(p: float, bound: float = 6.0) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return max(-bound, min(bound, math.log(p / (1 - p))))


@dataclass(frozen=True)
class Logistic:
    weights: Mapping[str, float]

    def predict(self, features: Mapping[str, float]) -> float:
        z = sum(
            w * float(features.get(name, 1.0 if name == "bias" else 0.0)) for name, w in self.weights.items()
        )
        return _sigmoid(z)


# Before any fit: the candidate's own probability is the value's, and only a call without
# evidence abstains. `dispo eval --fit-calibration` replaces these.
_UNFITTED_RIGHT = Logistic({"p": 1.0})
_UNFITTED_NULL = Logistic({"bias": -3.0, "none": 6.0})


@dataclass(frozen=True)
class Calibration:
    right: Mapping[str, Logistic] = field(default_factory=dict)
    null: Mapping[str, Logistic] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)
    # A proposal is dropped for null only when null is at least this likely: an abstention must be
    # probably right, not merely likelier than the proposal (which may be one of many wrong values).
    abstain_at: float = 0.5
    # ... and it is dropped when null is at least this close to the proposal's p_right (0: only when
    # null is the likelier).
    abstain_margin: float = 0.0

    def p_right(self, metric_type: str, features: Mapping[str, float]) -> float:
        if features.get("none"):
            return 0.0
        return self.right.get(metric_type, _UNFITTED_RIGHT).predict(features)

    def p_null(self, metric_type: str, features: Mapping[str, float]) -> float:
        return self.null.get(metric_type, _UNFITTED_NULL).predict(features)

    def decide(self, metric_type: str, features: Mapping[str, float]) -> tuple[bool, float]:
        """Whether to return the proposed value (else abstain), and the confidence of what is returned."""
        right = self.p_right(metric_type, features)
        null = self.p_null(metric_type, features)
        if not features.get("none") and (right >= null + self.abstain_margin or null < self.abstain_at):
            return True, clip(right)
        return False, clip(null)

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(FEATURES),
            "right": {t: dict(m.weights) for t, m in self.right.items()},
            "null": {t: dict(m.weights) for t, m in self.null.items()},
            "abstain_at": self.abstain_at,
            "abstain_margin": self.abstain_margin,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Calibration:
        return cls(
            right={t: Logistic(dict(w)) for t, w in data.get("right", {}).items()},
            null={t: Logistic(dict(w)) for t, w in data.get("null", {}).items()},
            meta=dict(data.get("meta", {})),
            abstain_at=float(data.get("abstain_at", 0.5)),
            abstain_margin=float(data.get("abstain_margin", 0.0)),
        )


def clip(p: float) -> float:
    return min(MAX_CONFIDENCE, max(MIN_CONFIDENCE, p))


UNFITTED = Calibration(meta={"fitted": False})


@lru_cache(maxsize=4)
def load(path: Path = PARAMS_FILE) -> Calibration:
    """The stored calibration; the unfitted defaults when there is none."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return UNFITTED
    return Calibration.from_json(data) if isinstance(data, dict) else UNFITTED


_ACTIVE: list[Calibration] = []


def active() -> Calibration:
    """The calibration the engine uses: one set by :func:`use`, else the stored one."""
    return _ACTIVE[-1] if _ACTIVE else load()


def use(calibration: Calibration | None) -> None:
    """Make ``calibration`` the active one (None: back to the stored file)."""
    _ACTIVE.clear()
    if calibration is not None:
        _ACTIVE.append(calibration)
