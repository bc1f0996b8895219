"""Issue 10, item 3: calibrated confidence — ECE and the reliability table, the dev split, the fit,
``dispo eval --fit-calibration`` and ``--from-report``. No model: a scripted engine proposes values."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import dispo.llm
from dispo.analytics import calibration as cal
from dispo.analytics import engine
from dispo.analytics.config import DispositionMetric
from dispo.analytics.engine import MetricValue, Turn, decision
from dispo.cli import app
from dispo.config import get_settings
from dispo.evaluation.calibrate import MIN_PRECISION, MIN_RECALL, abstention_rule, fit_logistic, score_rule
from dispo.evaluation.scoring import TargetResult, calibration_scores, half, reliability
from dispo.llm import Backend, Completion, Message

runner = CliRunner()


# -- ECE and the reliability table ----------------------------------------------------------------


def test_ece_of_a_hand_computed_example() -> None:
    pairs = [(0.95, True), (0.95, True), (0.95, False), (0.95, True), (0.25, False), (0.25, True)]
    out = reliability(pairs)
    # Bin 0.9-1.0: confidence 0.95, accuracy 0.75 (gap 0.2, 4 of 6); bin 0.2-0.3: 0.25 vs 0.5 (gap 0.25, 2 of 6).
    assert out["ece"] == pytest.approx(4 / 6 * 0.2 + 2 / 6 * 0.25)
    assert out["targets"] == 6
    assert len(out["bins"]) == 10
    assert out["bins"][9] == {"bin": "0.9-1.0", "count": 4, "confidence": 0.95, "accuracy": 0.75}
    assert out["bins"][2]["count"] == 2
    assert out["bins"][5] == {"bin": "0.5-0.6", "count": 0, "confidence": None, "accuracy": None}


def test_ece_edges() -> None:
    assert reliability([])["ece"] is None
    assert reliability([(1.0, True)])["bins"][9]["count"] == 1  # a confidence of 1 is in the last bin
    assert reliability([(0.0, False)])["ece"] == 0.0
    assert reliability([(0.1, True)])["bins"][1]["count"] == 1  # bins are [low, high)
    assert reliability([(0.7, True), (0.7, False)])["ece"] == pytest.approx(0.2)
    # A perfectly calibrated forecaster has (almost) no error.
    rng = random.Random(7)
    forecasts = [rng.random() for _ in range(20000)]
    assert reliability([(p, rng.random() < p) for p in forecasts])["ece"] < 0.02


def test_the_split_is_a_stable_half_by_id() -> None:
    ids = [f"dialogue-{i}" for i in range(400)]
    halves = [half(i) for i in ids]
    assert halves == [half(i) for i in ids]  # stable
    assert set(halves) == {"fit", "held-out"}
    assert 150 < halves.count("fit") < 250


def _target(ident: str, confidence: float, correct: bool, metric_type: str = "STRING") -> TargetResult:
    return TargetResult(
        ident, "m", metric_type, "", "x", "x" if correct else "y", correct, True, confidence=confidence
    )


def test_calibration_scores_report_each_half() -> None:
    fit_id = next(f"d{i}" for i in range(100) if half(f"d{i}") == "fit")
    held_id = next(f"d{i}" for i in range(100) if half(f"d{i}") == "held-out")
    scores = calibration_scores(
        [_target(fit_id, 0.9, True), _target(held_id, 0.9, False), _target(held_id, 0.6, True, "ENUM")]
    )
    assert scores is not None
    assert scores["held_out"]["targets"] == 2
    assert scores["held_out"]["ece"] == pytest.approx(0.5 * 0.9 + 0.5 * 0.4)
    assert scores["held_out"]["per_type"] == {"STRING": pytest.approx(0.9), "ENUM": pytest.approx(0.4)}
    assert scores["fit"]["ece"] == pytest.approx(0.1)
    assert scores["all"]["targets"] == 3
    assert calibration_scores([TargetResult("a", "m", "STRING", "", "x", "x", True, True)]) is None


# -- the fit ---------------------------------------------------------------------------------------


def test_fit_logistic_recovers_a_logistic_law() -> None:
    rng = random.Random(3)
    rows, labels = [], []
    for _ in range(4000):
        p = rng.uniform(-4, 4)
        rows.append({"bias": 1.0, "p": p, "cover": 0.5})  # cover is constant: left out
        labels.append(rng.random() < 1 / (1 + math.exp(-(0.8 * p - 0.5))))
    weights = fit_logistic(rows, labels, l2=0.01)
    assert set(weights) == {"bias", "p"}
    assert weights["p"] == pytest.approx(0.8, abs=0.1)
    assert weights["bias"] == pytest.approx(-0.5, abs=0.15)
    assert fit_logistic([], []) == {}


def test_decisions_and_confidence_bounds() -> None:
    calibration = cal.Calibration(
        right={"STRING": cal.Logistic({"bias": 0.0, "p": 1.0})},
        null={"STRING": cal.Logistic({"bias": -1.0, "none": 20.0})},
        abstain_at=0.25,
    )
    metric = DispositionMetric("city", "Which city? Say 'unknown' if not mentioned.", "STRING")
    # A confident proposal is kept; its confidence is p_right, never 1.
    value, confidence = decision(metric, "Paris", {"bias": 1.0, "p": 30.0}, calibration)
    assert value == "Paris"
    assert confidence == cal.MAX_CONFIDENCE
    # A weak one loses to the null: the prompt's fallback is answered, with p_null as confidence.
    value, confidence = decision(metric, "Paris", {"bias": 1.0, "p": -3.0}, calibration)
    assert value == "unknown"
    assert confidence == pytest.approx(1 / (1 + math.exp(1.0)))
    # Unless the null itself is unlikely (below abstain_at): then the likeliest value stands.
    stricter = cal.Calibration(right=calibration.right, null=calibration.null, abstain_at=0.5)
    value, confidence = decision(metric, "Paris", {"bias": 1.0, "p": -3.0}, stricter)
    assert value == "Paris"
    assert confidence == pytest.approx(1 / (1 + math.exp(3.0)))
    # No proposal at all.
    value, confidence = decision(metric, None, {"bias": 1.0, "none": 1.0}, calibration)
    assert (value, confidence) == ("unknown", cal.MAX_CONFIDENCE)
    assert cal.Calibration.from_json(calibration.to_json()) == calibration
    assert cal.load(Path("/nonexistent/calibration.json")) is cal.UNFITTED


def test_the_abstention_margin_drops_a_proposal_about_as_likely_as_the_null() -> None:
    calibration = cal.Calibration(
        right={"STRING": cal.Logistic({"bias": 0.0, "p": 1.0})},
        null={"STRING": cal.Logistic({"bias": 0.0, "cover": -1.0})},
        abstain_at=0.4,
    )
    metric = DispositionMetric("city", "Which city?", "STRING")
    # p_right 0.55 against p_null 0.50: kept without a margin, dropped with one of 0.1.
    features = {"bias": 1.0, "p": math.log(0.55 / 0.45), "cover": 0.0}
    assert decision(metric, "Paris", features, calibration)[0] == "Paris"
    wider = cal.Calibration(
        right=calibration.right, null=calibration.null, abstain_at=0.4, abstain_margin=0.1
    )
    value, confidence = decision(metric, "Paris", features, wider)
    assert value is None
    assert confidence == pytest.approx(0.5)
    assert cal.Calibration.from_json(wider.to_json()) == wider


def _rule_target(ident: str, p_logit: float, proposed_correct: bool, null_due: bool) -> TargetResult:
    return TargetResult(
        ident,
        "m",
        "STRING",
        "",
        None if null_due else "x",
        "x",
        not null_due,
        True,
        proposed="x",
        proposed_correct=proposed_correct,
        features={"bias": 1.0, "p": p_logit},
        abstention_correct=null_due,
    )


def test_the_fitted_rule_meets_the_recall_floor_when_it_can() -> None:
    # p_null is flat at 0.5; p_right follows the candidate's logit. Nulls are due where the
    # proposal is weak (p_right 0.52-0.58): only a margin of 0.1 or more catches them.
    calibration = cal.Calibration(
        right={"STRING": cal.Logistic({"bias": 0.0, "p": 1.0})},
        null={"STRING": cal.Logistic({"bias": 0.0})},
    )
    rows = [_rule_target(f"w{i}", math.log(0.55 / 0.45), False, True) for i in range(10)]
    rows += [_rule_target(f"s{i}", 3.0, True, False) for i in range(20)]
    assert score_rule(calibration, rows).recall == 0.0
    threshold, margin = abstention_rule(calibration, rows)
    scored = score_rule(
        cal.Calibration(
            right=calibration.right, null=calibration.null, abstain_at=threshold, abstain_margin=margin
        ),
        rows,
    )
    assert margin >= 0.05
    assert scored.recall >= MIN_RECALL
    assert scored.precision >= MIN_PRECISION
    assert scored.right == 30


def test_the_stored_calibration_is_fitted_and_complete() -> None:
    stored = cal.load()
    assert stored.meta.get("fitted") is True
    assert set(stored.null) == set(cal.TYPES)
    assert set(stored.right) == set(cal.TYPES)
    for model in [*stored.right.values(), *stored.null.values()]:
        assert set(model.weights) <= set(cal.FEATURES)


# -- the command ----------------------------------------------------------------------------------


def _record(ident: str, city: str | None) -> dict[str, Any]:
    return {
        "id": ident,
        "call_date": "2024-05-10",
        "transcript": [{"role": "user", "content": f"call {ident}"}],
        "metrics": [{"identifier": "city", "type": "STRING", "prompt": "Which city?"}],
        "expected": {"city": city},
    }


class Idle(Backend):
    name = "idle"
    model_id = "idle-1"
    can_score = True

    def chat(self, messages: Sequence[Message], **options: Any) -> Completion:
        return Completion("", model_ms=1.0)


@pytest.fixture
def scripted_engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An engine that proposes "Paris" with a margin feature telling how sure it is: right when the
    feature is high; the dialogues whose id ends in 0 have no city at all."""

    def extract(
        backend: Backend, transcript: Sequence[Turn], metrics: Sequence[DispositionMetric], start: datetime
    ) -> list[MetricValue]:
        n = int(transcript[0]["content"].split("-")[1])
        p = 2.0 if n % 3 else -2.0
        features = {"bias": 1.0, "p": p, "none": 0.0}
        value, confidence = decision(metrics[0], "Paris", features)
        return [MetricValue("city", "STRING", value, confidence, "", proposed="Paris", features=features)]

    monkeypatch.setattr(dispo.llm, "get_backend", lambda settings: Idle())
    monkeypatch.setattr(engine, "extract", extract)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    cal.use(None)


def test_cli_fits_the_calibration_and_rescores_a_saved_run(scripted_engine: None, tmp_path: Path) -> None:
    records = [_record(f"d-{n}", None if n % 10 == 0 else ("Paris" if n % 3 else "Rome")) for n in range(60)]
    data = tmp_path / "x.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    params, first, again = tmp_path / "cal.json", tmp_path / "r1.json", tmp_path / "r2.json"
    result = runner.invoke(
        app, ["eval", str(data), "--fit-calibration", "--calibration", str(params), "--report", str(first)]
    )
    assert result.exit_code == 0, result.output
    assert "Fitted the calibration on the fit half" in result.output
    assert "Reliability (held-out half" in result.output
    assert "ECE, held-out half" in result.output
    fitted = json.loads(params.read_text())
    assert fitted["meta"]["fitted"] is True
    assert fitted["right"]["STRING"]["p"] > 0  # the surer the proposal, the likelier right
    report = json.loads(first.read_text())
    assert report["calibration"]["held_out"]["targets"] + report["calibration"]["fit"]["targets"] == 60
    assert any(t["name"].startswith("ECE") for t in report["targets"])
    metric = report["details"][0]["metrics"][0]
    assert set(metric) >= {"confidence", "proposed", "proposed_correct", "features"}
    assert all(0 < m["confidence"] < 1 for d in report["details"] for m in d["metrics"])
    # The same figures again from the saved run, without the engine.
    result = runner.invoke(
        app,
        [
            "eval",
            str(data),
            "--from-report",
            str(first),
            "--calibration",
            str(params),
            "--report",
            str(again),
        ],
    )
    assert result.exit_code == 0, result.output
    rescored = json.loads(again.read_text())
    assert rescored["extraction"]["overall"] == report["extraction"]["overall"]
    assert rescored["calibration"]["held_out"]["ece"] == pytest.approx(
        report["calibration"]["held_out"]["ece"]
    )


def test_cli_refuses_calibration_options_where_they_do_not_apply(
    scripted_engine: None, tmp_path: Path
) -> None:
    data = tmp_path / "x.jsonl"
    data.write_text(json.dumps(_record("d-1", "Paris")) + "\n")
    result = runner.invoke(app, ["eval", str(data), "--calibration", str(tmp_path / "missing.json")])
    assert result.exit_code == 1
    assert "no such file" in result.output
    result = runner.invoke(app, ["eval", str(data), "--fit-calibration", "--strategy", "naive"])
    assert result.exit_code == 1
    assert "for the engine on an extraction file" in result.output


def test_several_files_are_one_dataset(tmp_path: Path) -> None:
    from dispo.evaluation.dataset import DatasetError, load_dataset, merge

    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text(json.dumps(_record("d-1", "Paris")) + "\n" + json.dumps(_record("d-2", None)) + "\n")
    b.write_text(json.dumps(_record("d-3", "Rome")) + "\n")
    both = merge([load_dataset(a), load_dataset(b)])
    assert both.ids == ["d-1", "d-2", "d-3"]
    assert str(both.path) == f"{a} + {b}"
    assert merge([load_dataset(a)]).path == a
    with pytest.raises(DatasetError, match="ids must be unique"):
        merge([load_dataset(a), load_dataset(a)])
    summaries = tmp_path / "s.jsonl"
    summaries.write_text(
        json.dumps({"id": "s", "transcript": [{"role": "user", "content": "hi"}], "references": ["x"]}) + "\n"
    )
    with pytest.raises(DatasetError, match="of one kind"):
        merge([load_dataset(a), load_dataset(summaries)])
