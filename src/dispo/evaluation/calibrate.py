"""Fitting the calibrated confidence (:mod:`dispo.analytics.calibration`) on labelled dialogues.

``dispo eval FILE --fit-calibration`` runs the engine (or reads a saved run with ``--from-report``),
takes the targets of the *fit* half of the dialogues (:func:`dispo.evaluation.scoring.half`), and
fits, for each metric type, two L2-regularised logistic regressions on the engine's features:

- ``right``: whether the proposed value is the expected one (targets with a proposal);
- ``null``: whether abstaining is right — the expected value is null, or the prompt's own
  fallback ("unknown") — (every target).

This is Platt scaling with evidence features: the first feature is the logit of the model's own
probability of the chosen candidate. The weights are written to ``calibration.json`` in the
package; the held-out half is what the report's ECE is measured on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from dispo.analytics.calibration import FEATURES, TYPES, Calibration, Logistic
from dispo.evaluation.scoring import TargetResult, half

L2 = 1.0  # the penalty on every weight but the bias
ITERATIONS = 50


def fit_logistic(
    rows: Sequence[dict[str, float]], labels: Sequence[bool], *, l2: float = L2
) -> dict[str, float]:
    """Weights by feature name of an L2-regularised logistic regression (Newton's method).

    Features constant over ``rows`` (other than the bias) are left out: they carry no information
    and would only be shrunk to zero.
    """
    if not rows:
        return {}
    names = [f for f in FEATURES if f == "bias" or len({round(r.get(f, 0.0), 9) for r in rows}) > 1]
    x = np.array([[r.get(f, 1.0 if f == "bias" else 0.0) for f in names] for r in rows], dtype=np.float64)
    y = np.array([1.0 if label else 0.0 for label in labels], dtype=np.float64)
    penalty = np.full(len(names), l2)
    penalty[names.index("bias")] = 1e-6
    w = np.zeros(len(names))
    for _ in range(ITERATIONS):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -30, 30)))
        gradient = x.T @ (p - y) + penalty * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.max(np.abs(step))) < 1e-8:
            break
    return {name: round(float(v), 6) for name, v in zip(names, w, strict=True)}


def fit(targets: Sequence[TargetResult], *, source: str = "") -> Calibration:
    """The calibration fitted on the fit half of ``targets`` (those carrying the engine's features)."""
    rows = [t for t in targets if t.features is not None and half(t.record_id) == "fit"]
    right: dict[str, Logistic] = {}
    null: dict[str, Logistic] = {}
    counts: dict[str, dict[str, int]] = {}
    for metric_type in TYPES:
        of_type = [t for t in rows if t.type == metric_type]
        if not of_type:
            continue
        null_weights = fit_logistic(
            [dict(t.features or {}) for t in of_type], [_abstention_right(t) for t in of_type]
        )
        null[metric_type] = Logistic(null_weights)
        proposed = [t for t in of_type if not (t.features or {}).get("none")]
        if proposed:
            right[metric_type] = Logistic(
                fit_logistic(
                    [dict(t.features or {}) for t in proposed], [bool(t.proposed_correct) for t in proposed]
                )
            )
        counts[metric_type] = {"targets": len(of_type), "proposals": len(proposed)}
    fitted = Calibration(right=right, null=null)
    threshold, margin = abstention_rule(fitted, rows)
    meta: dict[str, Any] = {
        "fitted": True,
        "fitted_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "source": source,
        "split": "the fit half: dialogues whose sha256(id) ends in an even byte",
        "l2": L2,
        "targets": counts,
        "command": "dispo eval FILE --fit-calibration",
        "abstain_at": f"the p_null threshold in {THRESHOLDS[0]}..{THRESHOLDS[-1]} and margin in "
        f"{MARGINS[0]}..{MARGINS[-1]} with the best fit-half accuracy among those whose abstention "
        f"precision is at least {MIN_PRECISION} and recall at least {MIN_RECALL} (precision alone "
        "when none reaches that recall)",
    }
    return replace(fitted, meta=meta, abstain_at=threshold, abstain_margin=margin)


def _abstention_right(t: TargetResult) -> bool:
    return t.expected is None if t.abstention_correct is None else t.abstention_correct


THRESHOLDS = tuple(round(0.3 + 0.05 * i, 2) for i in range(14))
MARGINS = tuple(round(0.05 * i, 2) for i in range(7))
MIN_PRECISION = 0.85  # on the fit half, above the 80 % target, to keep it on data not fitted on
MIN_RECALL = 0.55  # on the fit half, above the 50 % target, for the same reason


@dataclass(frozen=True)
class RuleScore:
    """How an abstention rule does on the fit half: values right, and its abstentions' quality."""

    right: int
    precision: float
    recall: float


def score_rule(calibration: Calibration, rows: Sequence[TargetResult]) -> RuleScore:
    right = nulls = right_nulls = due = 0
    for t in rows:
        keep, _ = calibration.decide(t.type, t.features or {})
        due += _abstention_right(t)
        if keep:
            right += bool(t.proposed_correct)
        else:
            nulls += 1
            right_nulls += _abstention_right(t)
            right += _abstention_right(t)
    return RuleScore(right, right_nulls / nulls if nulls else 1.0, right_nulls / due if due else 1.0)


def abstention_rule(calibration: Calibration, rows: Sequence[TargetResult]) -> tuple[float, float]:
    """The ``abstain_at`` and ``abstain_margin`` that give the best accuracy on ``rows`` among those
    whose abstentions are right at least :data:`MIN_PRECISION` of the time and find at least
    :data:`MIN_RECALL` of the nulls due (an abstention counts as right when null, or the prompt's
    own fallback, was due); among the precise ones alone when none finds that many."""
    scored = [
        (
            (threshold, margin),
            score_rule(replace(calibration, abstain_at=threshold, abstain_margin=margin), rows),
        )
        for threshold in THRESHOLDS
        for margin in MARGINS
    ]
    precise = [(rule, s) for rule, s in scored if s.precision >= MIN_PRECISION]
    both = [(rule, s) for rule, s in precise if s.recall >= MIN_RECALL]
    pool = both or precise
    if not pool:
        return THRESHOLDS[-1], 0.0
    # Best accuracy; on a tie the stricter threshold and the smaller margin.
    best = max(pool, key=lambda item: (item[1].right, item[0][0], -item[0][1]))
    return best[0]


def write(calibration: Calibration, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(calibration.to_json(), indent=2) + "\n", encoding="utf-8")
