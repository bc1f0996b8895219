"""Extraction: each type's normalisation and validation, with the real local model and with odd output."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import pytest

from dispo.analytics import normalize as norm
from dispo.analytics.config import AnalyticsConfig, DispositionMetric
from dispo.analytics.engine import Turn, analyze, extract, json_schema, summarize
from dispo.config import Settings
from dispo.llm import Backend, get_backend
from dispo.llm.testing import Script, ScriptedBackend

# A Friday afternoon in New York: relative phrases resolve against it, and values keep its zone.
CALL_START = datetime(2026, 11, 20, 15, 0, tzinfo=timezone(timedelta(hours=-5)))

TRANSCRIPT: list[Turn] = [
    {"role": "agent", "content": "Hi, this is Maya from Sunrise Dental. Who am I speaking with?"},
    {"role": "user", "content": "Hello, this is John Carter."},
    {"role": "agent", "content": "Would you like a cleaning or a whitening appointment?"},
    {"role": "user", "content": "A cleaning, please. For two people, me and my wife."},
    {"role": "agent", "content": "We have next Tuesday at 3 pm. Does that work?"},
    {"role": "user", "content": "Yes, next Tuesday at 3 pm works. Please book it."},
    {"role": "agent", "content": "Done, you are booked. Goodbye!"},
]
METRICS = (
    DispositionMetric("caller_name", "What is the caller's name?", "STRING"),
    DispositionMetric(
        "service", "Which service does the caller want?", "ENUM", ("cleaning", "whitening", "filling")
    ),
    DispositionMetric("party_size", "How many people need an appointment?", "INTEGER"),
    DispositionMetric("appointment_time", "When is the appointment?", "DATETIME"),
    DispositionMetric("booked", "Did the caller agree to book the appointment?", "BOOLEAN"),
    DispositionMetric(
        "insurance", "Which insurance provider does the caller use?", "ENUM", ("Aetna", "Cigna")
    ),
    DispositionMetric("budget", "What is the caller's budget in dollars?", "INTEGER"),
)


@pytest.fixture(scope="module")
def local() -> Backend:
    return get_backend(Settings(llm_backend="local"))


@pytest.fixture(scope="module")
def extracted(local: Backend) -> dict[str, Any]:
    return {m.identifier: m for m in extract(local, TRANSCRIPT, METRICS, CALL_START)}


# -- with the real model ---------------------------------------------------------------------


def test_every_value_is_valid_for_its_type(extracted: dict[str, Any]) -> None:
    for metric in METRICS:
        result = extracted[metric.identifier]
        assert norm.is_valid(metric.type, result.value, metric.choices), (metric.identifier, result.value)
        assert 0 <= result.confidence <= 1
        assert isinstance(result.reasoning, str)
        assert result.reasoning


def test_string_is_the_name_said(extracted: dict[str, Any]) -> None:
    assert extracted["caller_name"].value == "John Carter"
    assert "John Carter" in extracted["caller_name"].reasoning


def test_enum_is_the_choice_named(extracted: dict[str, Any]) -> None:
    assert extracted["service"].value == "cleaning"


def test_integer_understands_spoken_numbers(extracted: dict[str, Any]) -> None:
    assert extracted["party_size"].value == 2


def test_datetime_resolves_next_tuesday_at_3_against_the_call_start_in_its_zone(
    extracted: dict[str, Any],
) -> None:
    value = datetime.fromisoformat(extracted["appointment_time"].value)
    assert value == datetime(2026, 11, 24, 15, 0, tzinfo=CALL_START.tzinfo)


def test_boolean_agreement(extracted: dict[str, Any]) -> None:
    assert extracted["booked"].value is True


def test_abstains_when_the_call_does_not_say(extracted: dict[str, Any]) -> None:
    assert extracted["insurance"].value is None
    assert extracted["budget"].value is None
    assert "none of the choices" in extracted["insurance"].reasoning


def test_summary_follows_the_agent_prompt_and_analysis_times_itself(local: Backend) -> None:
    text = summarize(local, TRANSCRIPT, "Summarize the call in one sentence.")
    assert text
    assert len(text) < 600
    config = AnalyticsConfig(summary_prompt=None, metrics=METRICS[:2])
    analysis = analyze(local, TRANSCRIPT, config, CALL_START)
    assert analysis.summary
    assert [m.identifier for m in analysis.metrics] == ["caller_name", "service"]
    assert 0 < analysis.model_ms <= analysis.duration_ms


def test_an_empty_transcript_abstains_on_everything(local: Backend) -> None:
    results = extract(local, [], METRICS, CALL_START)
    assert all(r.value is None for r in results)


# -- one-pass structured extraction, for backends that cannot score ------------------------------


class CannotScore(ScriptedBackend):
    """The scripted backend as a hosted model is: no scores, so extraction asks for JSON."""

    can_score = False


def json_only(text: str) -> CannotScore:
    """A backend that answers ``text`` to every JSON-constrained prompt."""
    return CannotScore(Script(json_reply=text))


def test_structured_extraction_normalises_what_the_model_writes() -> None:
    backend = json_only(
        '{"caller_name": "  John Carter. ", "service": "Cleaning", "party_size": "two", '
        '"appointment_time": "next Tuesday at 3 pm", "booked": "yes", "insurance": "Kaiser", "budget": null}'
    )
    results = {m.identifier: m.value for m in extract(backend, TRANSCRIPT, METRICS, CALL_START)}
    assert results == {
        "caller_name": "John Carter",
        "service": "cleaning",
        "party_size": 2,
        "appointment_time": "2026-11-24T15:00:00-05:00",
        "booked": True,
        "insurance": None,  # not one of the choices: never stored
        "budget": None,
    }
    schema = backend.requests[0].json_schema
    assert schema is not None
    assert schema["properties"]["service"]["enum"] == ["cleaning", "whitening", "filling", None]


def test_structured_extraction_survives_output_that_is_not_json() -> None:
    results = extract(json_only("Sure! Here you go"), TRANSCRIPT, METRICS, CALL_START)
    assert all(r.value is None for r in results)


def test_the_schema_types_every_metric() -> None:
    schema = json_schema(METRICS)
    assert schema["properties"]["booked"]["type"] == ["boolean", "null"]
    assert schema["properties"]["party_size"]["type"] == ["integer", "null"]
    assert schema["required"] == [m.identifier for m in METRICS]


def test_question_terms_match_plurals_prefixes_and_currency() -> None:
    from dispo.analytics import candidates

    turns = [
        {"role": "user", "content": "I want three baths and two beds."},
        {"role": "user", "content": "Send $122 to Diego."},
        {"role": "user", "content": "One hundred bucks, please."},
    ]
    assert candidates.term_hits("How many bathrooms does the caller want?", turns) == [1, 0, 0]
    assert candidates.term_hits("How much money in dollars is sent?", turns) == [0, 1, 1]
    (beds,) = [m for m in candidates.numbers(turns) if m.value == 2]
    assert beds.after == "beds"
    assert [m.after for m in candidates.numbers(turns) if m.value in (122, 100)] == [
        "dollars to diego",
        "dollars bucks please",
    ]


# -- normalisers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Yes", True),
        ("yeah, sure", True),
        ("TRUE", True),
        ("No.", False),
        ("false", False),
        ("maybe", None),
        ("", None),
    ],
)
def test_normalize_bool(text: str, value: bool | None) -> None:
    assert norm.normalize_bool(text) is value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("two", 2),
        ("twenty five", 25),
        ("twenty-five", 25),
        ("a couple", 2),
        ("one hundred and twenty", 120),
        ("3 thousand", 3000),
        ("1,200", 1200),
        ("$47.50", 48),
        ("about 7 people", 7),
        ("none", None),
        (True, None),
    ],
)
def test_normalize_int(text: Any, value: int | None) -> None:
    assert norm.normalize_int(text) == value


def test_normalize_choice_is_always_one_of_the_choices() -> None:
    choices = ("Pool", "Regular", "Luxury")
    assert norm.normalize_choice("luxury", choices) == "Luxury"
    assert norm.normalize_choice("I'd like a Pool ride", choices) == "Pool"
    assert norm.normalize_choice("pool or regular", choices) is None
    assert norm.normalize_choice("shared", choices) is None


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("tomorrow", date(2026, 11, 21)),
        ("today", date(2026, 11, 20)),
        ("next Tuesday", date(2026, 11, 24)),
        ("on Monday", date(2026, 11, 23)),
        ("the 3rd", date(2026, 12, 3)),
        ("the 28th", date(2026, 11, 28)),
        ("March 7th", date(2027, 3, 7)),
        ("7th of December", date(2026, 12, 7)),
        ("2026-12-01", date(2026, 12, 1)),
    ],
)
def test_dates_resolve_against_the_call_start(phrase: str, expected: date) -> None:
    assert norm.resolve_date(phrase, CALL_START) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("at 4:15 pm", time(16, 15)),
        ("16:15 would be ideal", time(16, 15)),
        ("11 o'clock in the night", time(23, 0)),
        ("around 9am", time(9, 0)),
        ("at noon", time(12, 0)),
        ("half past six", time(18, 30)),
    ],
)
def test_times_are_found(text: str, expected: time) -> None:
    assert [t for _, t in norm.find_times(text)] == [expected]


def test_normalize_datetime_keeps_the_call_zone() -> None:
    assert norm.normalize_datetime("tomorrow at 9am", CALL_START) == "2026-11-21T09:00:00-05:00"
    assert norm.normalize_datetime("next Tuesday", CALL_START) == "2026-11-24"
    assert norm.normalize_datetime("2026-12-01T10:00", CALL_START) == "2026-12-01T10:00:00-05:00"
    assert norm.normalize_datetime("whenever", CALL_START) is None


@pytest.mark.parametrize(
    ("metric_type", "value", "valid"),
    [
        ("STRING", "x", True),
        ("STRING", " x", False),
        ("STRING", "", False),
        ("BOOLEAN", False, True),
        ("BOOLEAN", "yes", False),
        ("INTEGER", 3, True),
        ("INTEGER", True, False),
        ("INTEGER", 3.5, False),
        ("ENUM", "a", True),
        ("ENUM", "z", False),
        ("DATETIME", "2026-11-24T15:00:00-05:00", True),
        ("DATETIME", "2026-11-24", True),
        ("DATETIME", "next week", False),
        ("DATETIME", None, True),
    ],
)
def test_is_valid(metric_type: str, value: Any, valid: bool) -> None:
    assert norm.is_valid(metric_type, value, ("a", "b")) is valid
