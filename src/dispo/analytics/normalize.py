"""Normalisers: turn what a model (or a transcript) says into a value valid for a metric's type.

Each ``normalize_*`` returns the typed value or ``None`` when the text holds no such value; they
never raise on odd input. :func:`is_valid` is the type check every stored value passes.
"""

from __future__ import annotations

import re
import string
from datetime import date, datetime, time, timedelta
from typing import Any

import dateparser

_TRUE = {"yes", "true", "y", "yeah", "yep", "correct", "affirmative", "sure", "1"}
_FALSE = {"no", "false", "n", "nope", "negative", "0", "not"}

_UNITS = {
    "zero": 0, "oh": 0, "a": 1, "an": 1, "one": 1, "single": 1, "two": 2, "couple": 2, "pair": 2,
    "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "dozen": 12,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90,
}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "grand": 1000, "k": 1000}
NUMBER_WORDS = frozenset(_UNITS) - {"a", "an", "oh", "single", "pair", "couple"} | set(_TENS)
_DIGITS = re.compile(r"^[-+]?\$?\d[\d,]*(\.\d+)?$")


def normalize_string(text: Any) -> str | None:
    if text is None:
        return None
    value = " ".join(str(text).split()).strip(" \"'`.,;:")
    return value or None


def normalize_bool(text: Any) -> bool | None:
    if isinstance(text, bool):
        return text
    if text is None:
        return None
    words = re.findall(r"[a-z0-9]+", str(text).lower())
    if not words:
        return None
    if words[0] in _TRUE:
        return True
    if words[0] in _FALSE:
        return False
    return None


def parse_spoken_number(text: str) -> int | None:
    """``"twenty five"`` → 25, ``"a couple"`` → 2, ``"1,200"`` → 1200, ``"$47.50"`` → 48; else None."""
    raw = text.strip().lower().replace("-", " ")
    if _DIGITS.match(raw.replace(" ", "")):
        try:
            return round(float(raw.replace(" ", "").replace(",", "").replace("$", "")))
        except ValueError:
            return None
    words = [w for w in re.findall(r"[a-z]+|\d+", raw) if w not in {"and", "of"}]
    if len(words) > 1 and words[0] in {"a", "an"}:
        words = words[1:]  # "a couple", "a hundred"
    if not words:
        return None
    total, current, seen = 0, 0, False
    for word in words:
        if word.isdigit():
            current += int(word)
        elif word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word in _SCALES:
            current = max(current, 1) * _SCALES[word]
            if _SCALES[word] >= 1000:
                total, current = total + current, 0
        else:
            return None
        seen = True
    return total + current if seen else None


def normalize_int(text: Any) -> int | None:
    if isinstance(text, bool) or text is None:
        return None
    if isinstance(text, int):
        return text
    if isinstance(text, float):
        return round(text)
    whole = parse_spoken_number(str(text))
    if whole is not None:
        return whole
    # The first number said in a longer answer ("about 7 people", "twenty five tickets").
    words = "|".join(sorted(NUMBER_WORDS | set(_SCALES) | {"couple", "and"}, key=len, reverse=True))
    pattern = rf"\$?\d[\d,]*(?:\.\d+)?(?:\s+(?:{words})\b)*|\b(?:(?:{words})\b[\s-]*)+"
    for match in re.finditer(pattern, str(text).lower()):
        value = parse_spoken_number(match.group())
        if value is not None:
            return value
    return None


def normalize_choice(text: Any, choices: tuple[str, ...]) -> str | None:
    """The choice ``text`` names (exactly, ignoring case and punctuation, or as a whole word)."""
    if text is None:
        return None
    said = _fold(str(text))
    if not said:
        return None
    for choice in choices:
        if _fold(choice) == said:
            return choice
    found = [c for c in choices if re.search(rf"\b{re.escape(_fold(c))}\b", said)]
    return found[0] if len(found) == 1 else None


def _fold(text: str) -> str:
    return " ".join(text.lower().translate(str.maketrans("", "", string.punctuation)).split())


# -- dates and times ------------------------------------------------------------------------------

_TIME = re.compile(
    r"\b(?P<h>[01]?\d|2[0-3])(?::(?P<m>[0-5]\d))?\s*(?P<ap>a\.?m\.?|p\.?m\.?)(?![a-z])"
    r"|\b(?P<h24>[01]?\d|2[0-3]):(?P<m24>[0-5]\d)\b"
    r"|\b(?P<hw>noon|midnight)\b"
    r"|\b(?P<ho>[01]?\d)\s*o['\"\u2019]?\s?clock\b(?:\s+in\s+the\s+(?P<part>morning|afternoon|evening|night))?",
    re.IGNORECASE,
)
_HALF = re.compile(r"\bhalf past (?P<h>\w+)\b|\bquarter (?P<rel>past|to) (?P<h2>\w+)\b", re.IGNORECASE)
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_ORD = r"\d{1,2}(?:st|nd|rd|th)?"
_DATE = re.compile(
    rf"\b(?:(?:{_MONTHS})\.?\s+{_ORD}\b|{_ORD}\s+of\s+(?:{_MONTHS})\b|the\s+\d{{1,2}}(?:st|nd|rd|th)\b"
    rf"|\d{{4}}-\d{{2}}-\d{{2}}\b|\d{{1,2}}/\d{{1,2}}(?:/\d{{2,4}})?\b"
    rf"|(?:next|this|coming|last)\s+(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|week|weekend)\b"
    rf"|(?:on\s+)?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b"
    rf"|today|tonight|tomorrow|day after tomorrow)",
    re.IGNORECASE,
)


def find_times(text: str) -> list[tuple[str, time]]:
    """Every clock time said in ``text``, as (surface form, time), in order of appearance."""
    found: list[tuple[int, str, time]] = []
    for m in _TIME.finditer(text):
        parsed = _time_from_match(m)
        if parsed is not None:
            found.append((m.start(), m.group().strip(), parsed))
    for m in _HALF.finditer(text):
        hour = parse_spoken_number(m.group("h") or m.group("h2") or "")
        if hour is None or not 1 <= hour <= 12:
            continue
        minute = 30 if m.group("h") else (15 if m.group("rel") == "past" else 45)
        if m.group("rel") == "to":
            hour = hour - 1 or 12
        found.append(
            (m.start(), m.group(), time(hour + (12 if hour < 8 else 0) if hour != 12 else 12, minute))
        )
    return [(surface, value) for _, surface, value in sorted(found, key=lambda f: f[0])]


def _time_from_match(m: re.Match[str]) -> time | None:
    if m.group("hw"):
        return time(12, 0) if m.group("hw").lower() == "noon" else time(0, 0)
    if m.group("h24") is not None:
        return time(int(m.group("h24")), int(m.group("m24")))
    if m.group("ho") is not None:
        hour = int(m.group("ho"))
        part = (m.group("part") or "").lower()
        if part in {"afternoon", "evening", "night"} and hour < 12:
            hour += 12
        return time(hour % 24, 0) if hour <= 24 else None
    hour = int(m.group("h"))
    minute = int(m.group("m") or 0)
    pm = m.group("ap").lower().startswith("p")
    if hour > 12:
        return None
    hour = (hour % 12) + (12 if pm else 0)
    return time(hour, minute)


def find_dates(text: str, reference: datetime) -> list[tuple[str, date]]:
    """Every calendar date said in ``text``, resolved against ``reference``, in order."""
    out: list[tuple[str, date]] = []
    for m in _DATE.finditer(text):
        surface = m.group().strip()
        resolved = resolve_date(surface, reference)
        if resolved is not None:
            out.append((surface, resolved))
    return out


def resolve_date(phrase: str, reference: datetime) -> date | None:
    """A date phrase ("next Friday", "the 10th", "March 7th") resolved against ``reference``."""
    text = phrase.lower().strip()
    text = re.sub(r"^on\s+", "", text)
    base = reference.replace(tzinfo=None)
    if text in {"today", "tonight"}:
        return base.date()
    if text == "tomorrow":
        return (base + timedelta(days=1)).date()
    if text == "day after tomorrow":
        return (base + timedelta(days=2)).date()
    m = re.fullmatch(r"the (\d{1,2})(?:st|nd|rd|th)", text)
    if m:
        day = int(m.group(1))
        candidate = _safe_date(base.year, base.month, day)
        if candidate is not None and candidate < base.date():
            month = base.month % 12 + 1
            candidate = _safe_date(base.year + (base.month == 12), month, day)
        return candidate
    m = re.fullmatch(r"(next|this|coming)\s+(week|weekend)", text)
    if m:
        days_to_saturday = (5 - base.weekday()) % 7 or 7
        offset = days_to_saturday if m.group(2) == "weekend" else 7 - base.weekday()
        return (base + timedelta(days=offset)).date()
    m = re.fullmatch(
        rf"(?:({_MONTHS})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?|(\d{{1,2}})(?:st|nd|rd|th)?\s+of\s+({_MONTHS}))",
        text,
    )
    if m:
        month_name = (m.group(1) or m.group(4))[:3]
        month = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"].index(
            month_name
        ) + 1
        day = int(m.group(2) or m.group(3))
        # No year said: this year's date unless it has passed, then next year's.
        candidate = _safe_date(base.year, month, day)
        if candidate is not None and candidate < base.date():
            candidate = _safe_date(base.year + 1, month, day)
        return candidate
    settings: dict[str, Any] = {
        "RELATIVE_BASE": base,
        "PREFER_DATES_FROM": "future",
        "PREFER_DAY_OF_MONTH": "first",
        "RETURN_AS_TIMEZONE_AWARE": False,
    }
    parsed = dateparser.parse(re.sub(r"^(coming|this)\s+", "", text), languages=["en"], settings=settings)
    # "next Friday" is read as the nearest future Friday, the reading callers mean when booking.
    return parsed.date() if parsed is not None else None


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def normalize_datetime(text: Any, reference: datetime) -> str | None:
    """ISO 8601 for a date and/or time phrase, resolved against ``reference`` and in its timezone."""
    if text is None:
        return None
    raw = str(text).strip()
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        parsed = None
    if parsed is not None:
        if parsed.tzinfo is None and reference.tzinfo is not None and ("T" in raw or " " in raw):
            parsed = parsed.replace(tzinfo=reference.tzinfo)
        return parsed.isoformat() if ("T" in raw or " " in raw) else parsed.date().isoformat()
    dates = find_dates(raw, reference)
    times = find_times(raw)
    return combine(dates[-1][1] if dates else None, times[-1][1] if times else None, reference)


def combine(day: date | None, clock: time | None, reference: datetime) -> str | None:
    """ISO 8601: a date alone as ``YYYY-MM-DD``; a time joined to ``day`` (or the call's date) with the zone."""
    if clock is None:
        return day.isoformat() if day is not None else None
    when = datetime.combine(day or reference.date(), clock, tzinfo=reference.tzinfo)
    return when.isoformat()


def is_valid(metric_type: str, value: Any, choices: tuple[str, ...] | None = None) -> bool:
    """Whether ``value`` is valid for ``metric_type`` (None, an abstention, always is)."""
    if value is None:
        return True
    if metric_type == "STRING":
        return isinstance(value, str) and value == value.strip() and bool(value)
    if metric_type == "BOOLEAN":
        return isinstance(value, bool)
    if metric_type == "INTEGER":
        return isinstance(value, int) and not isinstance(value, bool)
    if metric_type == "ENUM":
        return isinstance(value, str) and value in (choices or ())
    if metric_type == "DATETIME":
        if not isinstance(value, str):
            return False
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return False
        return True
    return False
