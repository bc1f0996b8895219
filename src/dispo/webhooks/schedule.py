"""When a failed webhook delivery is tried again: exponential backoff with jitter.

The delay after attempt ``n`` is ``base * 2**(n-1)``, capped at ``max``, then made up to
``jitter`` later at random (never earlier: the schedule's total stays at least the nominal one).
With the defaults (``DISPO_WEBHOOK_*``: 8 attempts, 30 s base) the retries come after 30 s, 1, 2,
4, 8, 16 and 32 minutes: eight attempts over about 64 minutes before a delivery is dead-lettered.

Three lines of arithmetic rather than a retry library: the schedule is stored in the delivery's
row (``next_attempt_at``), because a retry must survive the process that failed (tenacity's waits
and Huey's ``retry_delay`` both live in the memory of a running worker or queue entry).
"""

from __future__ import annotations

import random

from dispo.config import Settings

__all__ = ["nominal_schedule", "retry_delay"]


def retry_delay(settings: Settings, attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    nominal = min(
        settings.webhook_retry_max_seconds, settings.webhook_retry_base_seconds * 2.0 ** (attempt - 1)
    )
    jitter: float = (rng or random).uniform(0, settings.webhook_retry_jitter)
    return nominal * (1 + jitter)


def nominal_schedule(settings: Settings) -> list[float]:
    """The delays between attempts, without jitter (one fewer than the attempts)."""
    return [
        min(settings.webhook_retry_max_seconds, settings.webhook_retry_base_seconds * 2.0 ** (n - 1))
        for n in range(1, settings.webhook_max_attempts)
    ]
