"""Rate limits per API key, per client address and for the operations that start work.

The counting is the ``limits`` library's (sliding-window counters): in this process's memory by
default, or in Redis when the queue is Redis (or ``DISPO_RATE_LIMIT_STORAGE`` names one), so that
every server process counts against the same limits. If that Redis stops answering, requests are
let through (and the problem logged) rather than refused: a limiter must not take the API down.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

if TYPE_CHECKING:
    from dispo.config import Settings

log = logging.getLogger("dispo.api")

_OFF = {"", "0", "off", "none", "false", "no"}


def parse_limits(value: str) -> tuple[RateLimitItem, ...]:
    """``"100/second;3000/minute"`` as limits; ``off`` (or ``0``, or empty) as none."""
    text = value.strip()
    if text.lower() in _OFF:
        return ()
    try:
        return tuple(parse_many(text))
    except ValueError:
        raise ValueError(
            f"{value!r} is not a rate limit: write COUNT/PERIOD, e.g. 100/second, 3000/minute or "
            "50/second;3000/minute (several separated by ';'), or off for none."
        ) from None


def storage_url(settings: Settings) -> str:
    """The ``limits`` storage URL for ``settings``: explicit, else the queue's Redis, else memory."""
    explicit = settings.rate_limit_storage.strip()
    if explicit:
        return explicit
    queue = settings.queue_url.strip()
    parts = urlsplit(queue)
    if parts.scheme in ("redis", "rediss"):
        return urlunsplit(parts._replace(query="", fragment=""))  # ?queue=… names Dispo's queue
    if parts.scheme == "unix":
        return urlunsplit(parts._replace(scheme="redis+unix", query="", fragment=""))
    return "memory://"


class RateLimits:
    """The limits of one app. ``check`` answers how many seconds to wait, or None to go ahead."""

    def __init__(self, settings: Settings) -> None:
        self.per_key = parse_limits(settings.rate_limit)
        self.expensive = parse_limits(settings.rate_limit_expensive)
        self.per_address = parse_limits(settings.rate_limit_address)
        self.url = storage_url(settings)
        self.in_memory = self.url.startswith("memory://")
        self._limiter: SlidingWindowCounterRateLimiter | None = None
        self._lock = threading.Lock()
        self._warned_at = 0.0

    @property
    def enabled(self) -> bool:
        return bool(self.per_key or self.expensive or self.per_address)

    def _strategy(self) -> SlidingWindowCounterRateLimiter:
        # Made on first use: no storage (and, in memory, no expiry thread) for an app that never counts.
        if self._limiter is None:
            with self._lock:
                if self._limiter is None:
                    storage = storage_from_string(self.url)
                    if not isinstance(storage, Storage):
                        raise ValueError(f"{self.url} is an async storage: give a plain one, e.g. redis://")
                    self._limiter = SlidingWindowCounterRateLimiter(storage)
        return self._limiter

    def check(self, items: tuple[RateLimitItem, ...], *identifiers: str) -> int | None:
        """Count one request against each of ``items``; the seconds to wait if one is spent."""
        if not items:
            return None
        try:
            limiter = self._strategy()
            for item in items:
                if not limiter.hit(item, *identifiers):
                    reset_at, _remaining = limiter.get_window_stats(item, *identifiers)
                    return max(1, math.ceil(reset_at - time.time()))
        except Exception as exc:  # the storage (Redis) is down: let the request through
            now = time.monotonic()
            if now - self._warned_at > 60:
                self._warned_at = now
                where = urlsplit(self.url)
                log.warning(
                    "Rate limits not enforced: %s://%s is unavailable (%s)", where.scheme, where.hostname, exc
                )
        return None


__all__ = ["RateLimits", "parse_limits", "storage_url"]
