"""Time parsing and rendering."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from dispo.errors import ValidationFailed
from dispo.timeutil import ms_to_iso, parse_instant


def test_ms_to_iso_matches_datetime_formatting() -> None:
    rng = random.Random(4)
    instants = [0, 999, 86_399_999, 86_400_000, 1_795_262_808_949, 4_102_444_799_999]
    instants += [rng.randrange(0, 4_102_444_800_000) for _ in range(20_000)]
    for ms in instants:
        expected = (
            datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
        )
        assert ms_to_iso(ms) == expected
    assert ms_to_iso(None) is None


def test_parse_instant_forms() -> None:
    assert parse_instant("2026-01-19", field="dateFrom") == 1_768_780_800_000
    assert parse_instant("2026-01-19", field="dateTo", end_of_day=True) == 1_768_867_199_999
    assert parse_instant("2026-01-19T07:28:43.178Z", field="dateFrom") == 1_768_807_723_178
    assert parse_instant("2026-01-19T12:58:43.178+05:30", field="dateFrom") == 1_768_807_723_178
    assert parse_instant("1768807723178", field="dateFrom") == 1_768_807_723_178
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    week_before = datetime(2026, 11, 14, 12, 0, tzinfo=UTC)
    assert parse_instant("7 days ago", field="dateFrom", now=now) == int(week_before.timestamp() * 1000)


@pytest.mark.parametrize("text", ["", "2026-02-30", "soonish maybe", "9" * 20])
def test_parse_instant_refuses_with_the_field_named(text: str) -> None:
    with pytest.raises(ValidationFailed, match="dateFrom"):
        parse_instant(text, field="dateFrom")
