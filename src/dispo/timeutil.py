"""Time as Dispo stores it (integer epoch milliseconds, UTC) and as it speaks it (ISO 8601)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from dispo.errors import ValidationFailed

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def now_ms() -> int:
    return int(time.time() * 1000)


# "SS.mmmZ" for every millisecond of a minute: 60,000 short strings (~4 MB, 6 ms to build).
_SECOND_MILLIS = tuple(
    s + ms for s in (f"{s:02d}." for s in range(60)) for ms in (f"{m:03d}Z" for m in range(1000))
)
_MINUTES: dict[int, str] = {}  # minute since the epoch -> "2026-01-19T07:28:"


def ms_to_iso(ms: int | None) -> str | None:
    """``2026-01-19T07:28:43.178Z`` — the form Atoms returns."""
    if ms is None:
        return None
    # This runs for every transcript message of every listed call (a 1000-call page has ~25,000),
    # so it avoids datetime: the date and time to the minute are cached per minute, and the
    # seconds and milliseconds looked up (150 ns; formatting takes 1.5 µs).
    minute, in_minute = divmod(ms, 60_000)
    return (_MINUTES.get(minute) or _minute(minute)) + _SECOND_MILLIS[in_minute]


def _minute(minute: int) -> str:
    if len(_MINUTES) >= 100_000:  # bounded: a day has 1,440 minutes
        _MINUTES.clear()
    day, in_day = divmod(minute, 1440)
    text = _MINUTES[minute] = f"{_iso_day(day)}T{in_day // 60:02d}:{in_day % 60:02d}:"
    return text


@lru_cache(maxsize=4096)
def _iso_day(day: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day * 86_400))


def dt_to_ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def parse_instant(value: str, *, field: str, end_of_day: bool = False, now: datetime | None = None) -> int:
    """Parse a query-string instant into epoch ms.

    Accepts ISO 8601 (``2026-01-19``, ``2026-01-19T07:28:43Z``, with offsets), epoch milliseconds,
    and relative phrases (``7 days ago``, ``yesterday``) via dateparser. A bare date used as an
    upper bound (``end_of_day``) means the end of that day, so ``dateTo=2026-01-19`` includes the 19th.
    """
    text = value.strip()
    if not text:
        raise ValidationFailed(f"{field} is empty: give an ISO 8601 date such as 2026-01-19T00:00:00Z.")
    if text.isdigit() and len(text) >= 12:
        if len(text) > 14:  # beyond the year 5138: somebody sent microseconds or garbage
            raise ValidationFailed(f"{field}={value!r} is too large for epoch milliseconds.")
        return int(text)
    if _DATE_ONLY.match(text):
        try:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise ValidationFailed(f"{field}={value!r} is not a real calendar date.") from None
        if end_of_day:
            day += timedelta(days=1)
            return dt_to_ms(day) - 1
        return dt_to_ms(day)
    try:
        return dt_to_ms(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except (ValueError, OverflowError):
        pass
    import dateparser  # imported lazily: it takes ~0.3 s to load its language data

    parsed = dateparser.parse(
        text,
        settings={
            "TIMEZONE": "UTC",
            "RETURN_AS_TIMEZONE_AWARE": True,
            "RELATIVE_BASE": (now or datetime.now(UTC)).replace(tzinfo=None),
            "PREFER_DATES_FROM": "past",
        },
    )
    if parsed is None or not 1 <= parsed.year <= 9998:
        raise ValidationFailed(
            f"{field}={value!r} is not a date Dispo understands: use ISO 8601 such as "
            "2026-01-19 or 2026-01-19T07:28:43Z, epoch milliseconds, or a phrase like '7 days ago'."
        )
    return dt_to_ms(parsed)
