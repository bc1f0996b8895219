"""Test doubles and builders for the analytics job tests: a fake engine and calls that end.

The fake engine answers at once (no model), so tests exercise the queue, the retries and the
bookkeeping; ``tests/test_jobs.py::test_real_model_through_the_queue`` runs the real one. The jobs
get their backend injected (:data:`BACKEND`, the scripted backend in this process) like the
server's; the fake engine records which backend reached it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from dispo.analytics import engine, lifecycle
from dispo.analytics.config import AnalyticsConfig, parse_metrics
from dispo.analytics.engine import Analysis, MetricValue
from dispo.ids import new_call_id, new_object_id
from dispo.llm.testing import ScriptedBackend
from dispo.store import agents
from dispo.store.calls import insert_ended_call
from dispo.store.database import Database
from dispo.store.tables import analytics_results, calls
from dispo.timeutil import now_ms
from dispo.types import Row

METRICS = [
    {
        "identifier": "user_interested",
        "dispositionMetricPrompt": "Was the user interested?",
        "dispositionValues": {"type": "ENUM"},
        "choices": ["yes", "no", "unclear"],
    }
]
TRANSCRIPT = [
    {"role": "agent", "content": "Hi, this is Dispo. Do you have a minute?", "timestamp": None},
    {"role": "user", "content": "Sure, I am interested in the premium plan.", "timestamp": None},
]


# The backend the jobs in these tests are given (the fake engine does not call it).
BACKEND = ScriptedBackend()


@dataclass
class FakeEngine:
    """Stands in for ``engine.analyze``: counts calls, can fail the first N, can be slow; keeps the
    backends it was handed."""

    fail_first: int = 0
    error: Exception = field(default_factory=lambda: RuntimeError("model exploded"))
    delay: float = 0.0
    calls: int = 0
    seen_versions: list[int] = field(default_factory=list)
    backends: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(
        self, backend: Any, transcript: Sequence[Any], config: AnalyticsConfig, call_start: datetime
    ) -> Analysis:
        with self.lock:
            self.calls += 1
            self.backends.append(backend)
            n = self.calls
        if self.delay:
            time.sleep(self.delay)
        if n <= self.fail_first:
            raise self.error
        return Analysis(
            summary=f"{len(transcript)} turns; prompt={config.summary_prompt}",
            metrics=[
                MetricValue(m.identifier, m.type, (m.choices or ("x",))[0], 0.9, "fake reasoning")
                for m in config.metrics
            ],
            model_id="fake-model",
            duration_ms=1.5,
            model_ms=1.0,
        )


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    fake = FakeEngine()
    monkeypatch.setattr(engine, "analyze", fake)
    return fake


def attempt(db: Database, settings: Any, call_pk: int) -> lifecycle.Outcome:
    """One attempt at the call's job, on :data:`BACKEND` (what a worker's ``Jobs`` does)."""
    return lifecycle.attempt(db, settings, call_pk, BACKEND)


def make_agent(db: Database, org_id: str, *, summary_prompt: str | None = "Summarize briefly.") -> str:
    with db.write() as conn:
        agent_id = agents.create_agent(conn, org_id, {"name": "Sales"})
        if summary_prompt is not None:
            set_config(conn, org_id, agent_id, summary_prompt)
    return agent_id


def set_config(conn: Any, org_id: str, agent_id: str, summary_prompt: str) -> Row:
    metrics = [m.to_json() for m in parse_metrics(METRICS)]
    return agents.add_analytics_config(
        conn, org_id, agent_id, summary_prompt=summary_prompt, disposition_metrics=metrics
    )


def end_call(
    db: Database,
    org_id: str,
    agent_id: str | None,
    *,
    status: str = "completed",
    created_at: int | None = None,
    transcript: Sequence[Row] = TRANSCRIPT,
) -> int:
    """A call stored already ended, its analytics marked pending in the same transaction."""
    at = created_at if created_at is not None else now_ms()
    values = {
        "id": new_object_id(at),
        "call_id": new_call_id(at),
        "org_id": org_id,
        "agent_id": agent_id,
        "campaign_id": None,
        "type": "telephony_outbound",
        "status": status,
        "disconnection_reason": "user_hangup" if status == "completed" else None,
        "from_number": "+14155550100",
        "to_number": "+14155550199",
        "duration": 42.0,
        "started_at": at,
        "ended_at": at + 42_000,
        "created_at": at,
        "updated_at": at + 42_000,
    }
    with db.write() as conn:
        pk, _ = insert_ended_call(conn, values, transcript if status == "completed" else ())
    return pk


def call_row(db: Database, pk: int) -> Row:
    with db.read() as conn:
        return dict(conn.execute(select(calls).where(calls.c.pk == pk)).mappings().one())


def results(db: Database, pk: int) -> list[Row]:
    with db.read() as conn:
        stmt = (
            select(analytics_results)
            .where(analytics_results.c.call_pk == pk)
            .order_by(analytics_results.c.created_at, analytics_results.c.id)
        )
        return [dict(r) for r in conn.execute(stmt).mappings()]


def result_count(db: Database, pk: int) -> int:
    with db.read() as conn:
        stmt = select(func.count()).select_from(analytics_results).where(analytics_results.c.call_pk == pk)
        return int(conn.execute(stmt).scalar_one())


def wait_for(predicate: Callable[[], bool], *, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)
