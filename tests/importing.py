"""Builders for the import, search, metric-query and export tests: calls as another stack reports
them, and analyses recorded through the store path a worker uses."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from dispo.store import analytics_jobs
from dispo.store.database import Database
from dispo.store.tables import calls
from dispo.timeutil import now_ms

START = 1_796_029_200_000  # 2026-11-30T09:00:00Z

PHRASES = (
    "I would like a refund for the broken panel",
    "Can you send the brochure by email",
    "We are planning a new roof next spring",
    "My budget is around five thousand dollars",
    "Please call me back on Friday afternoon",
)


def import_call(i: int, *, words: str | None = None, **extra: Any) -> dict[str, Any]:
    """A finished call as another stack would report it, its start ``i`` minutes after START."""
    at = START + i * 60_000
    said = words if words is not None else PHRASES[i % len(PHRASES)]
    return {
        "externalId": f"ext-{i}",
        "type": "telephony_inbound",
        "from": "+14155550123",
        "to": "+14155550199",
        "startedAt": at,
        "endedAt": at + 90_000,
        "disconnectionReason": "user_hangup",
        "callCost": 0.25,
        "transcript": [
            {
                "role": "agent",
                "content": "Hello, this is Maya from Brightline Solar.",
                "timestamp": at + 1000,
            },
            {"role": "user", "content": said, "timestamp": at + 5000},
            {"role": "agent", "content": "Thanks, noted.", "timestamp": at + 9000, "latencyMs": 420},
        ],
        **extra,
    }


def batches(items: Sequence[dict[str, Any]], size: int = 1000) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def record_analysis(db: Database, call_pks: Sequence[int], metrics_of: Any) -> None:
    """Complete each pending call's analysis with ``metrics_of(pk)`` (a ``disposition_metrics``
    list), through ``store.analytics_jobs`` as a worker does, without running a model."""
    now = now_ms()
    with db.write() as conn:
        for pk in call_pks:
            claim = analytics_jobs.claim(conn, pk, now)
            assert claim is not None, f"call {pk} is not pending"
            done = analytics_jobs.complete(
                conn,
                claim,
                config_id=None,
                config_version=None,
                summary="recorded by the test",
                disposition_metrics=metrics_of(pk),
                model="test",
                duration_ms=None,
                model_ms=None,
                now=now,
            )
            assert done


@pytest.fixture
def no_pending_jobs_left(db: Database, org: Any) -> Iterator[None]:
    """After the test, take the organization's imported calls off the analytics queue's books: the
    session database is shared, and the sweeper tests (tests/test_jobs.py) scan the pending jobs of
    every organization, oldest first, a limited number at a time."""
    yield
    with db.write() as conn:
        conn.execute(
            calls.update()
            .where(calls.c.org_id == org.id, calls.c.analytics_status == "pending")
            .values(analytics_status=None)
        )
