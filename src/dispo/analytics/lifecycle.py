"""Post-call analytics of one call: mark, claim, analyze, record — the job's state machine.

The call row is the durable record of its analytics job (``calls.analytics_*``); the queue
(:mod:`dispo.analytics.jobs`) only carries call pks to workers. This module decides what happens
to a job; every read and write is a named query in :mod:`dispo.store.analytics_jobs`. One attempt
goes:

1. **claim** (``analytics_jobs.claim``) — ``pending → running`` in one conditional UPDATE that
   also counts the attempt and stamps ``analytics_started_at``. Only one worker can win it, so a
   duplicate delivery of a job (a re-enqueue by the sweeper, a retry racing a re-analysis) does
   nothing.
2. **load** (``analytics_jobs.load_job_inputs``) the transcript and the config the call was
   queued with (``analytics_config_id``, fixed when the call ended: a config changed later
   applies to new calls only).
3. **analyze** with the configured LLM backend (:func:`dispo.analytics.engine.analyze`), outside
   any transaction.
4. **complete** (``analytics_jobs.complete``) — ``running → completed`` plus the
   ``analytics_results`` row, in one transaction, and only while the claim is still ours (same
   attempt number and start time). A worker that was presumed dead (its lease expired and the
   sweeper handed the job on) writes nothing when it finally finishes, so a call never gets two
   results from one request.

On an error (or when the sweeper finds the worker's lease expired) the call goes back to
``pending`` with the reason in ``analytics_error`` and the time of the retry in
``analytics_queued_at`` (after an error the delay doubles each attempt; after a dead worker it is
due at once), or to ``failed`` once ``analytics_max_attempts`` are spent: one transition,
:func:`after_failure`. Earlier results are never deleted: re-analysis adds a row and the newest
is the one shown. Calls are marked pending by ``analytics_jobs.mark_pending`` (in the transaction
that ends the call: :func:`dispo.store.calls.end_call`) or ``mark_pending_many`` (re-analysis).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, cast

from sqlalchemy import Connection

from dispo import timeutil
from dispo.analytics import engine
from dispo.analytics.config import AnalyticsConfig, parse_metrics
from dispo.analytics.engine import Analysis, MetricValue, Turn
from dispo.config import Settings
from dispo.errors import AnalysisFailed
from dispo.llm import Backend
from dispo.store import analytics_jobs as store
from dispo.store.analytics_jobs import Claim
from dispo.store.database import Database

__all__ = [
    "ANALYTICS_STATUSES",
    "AnalysisFailed",
    "Claim",
    "Inputs",
    "Outcome",
    "after_failure",
    "attempt",
    "claim",
    "complete",
    "drive",
    "load_inputs",
    "record_failure",
    "sweep_database",
]

log = logging.getLogger("dispo.analytics")

ANALYTICS_STATUSES = ("pending", "running", "completed", "failed")
# A job "pending" this long past its due time with no job for it in the queue was lost (a queue
# wiped, an enqueue that failed after the commit): the sweeper enqueues it again.
STALE_PENDING_MS = 60_000
# Rows the sweeper handles per run and per kind; the next run takes the rest.
SWEEP_BATCH = 1000
_ERROR_MAX = 2000


class _Permanent(Exception):
    """An error that another attempt cannot fix (the call or its config is gone)."""


# --------------------------------------------------------------------------------------------
# One attempt


@dataclass(frozen=True)
class Inputs:
    transcript: list[Turn]
    config: AnalyticsConfig
    config_id: int | None
    config_version: int | None
    call_start: datetime


@dataclass(frozen=True)
class Outcome:
    """What one attempt did. ``retry_in`` (seconds) is set for ``retry``; ``error`` for retry/failed."""

    kind: Literal["skipped", "completed", "discarded", "retry", "failed"]
    retry_in: float | None = None
    error: str | None = None


def claim(db: Database, call_pk: int, *, now_ms: int | None = None) -> Claim | None:
    """Take the call's pending job, or None when it is not pending (done, or another worker has it)."""
    now = timeutil.now_ms() if now_ms is None else now_ms
    with db.write() as conn:
        return store.claim(conn, call_pk, now)


def load_inputs(db: Database, call_pk: int) -> Inputs:
    """The transcript, the config and the start time the analysis of ``call_pk`` needs."""
    with db.read() as conn:
        job = store.load_job_inputs(conn, call_pk)
    if job is None:
        raise _Permanent(f"call {call_pk} no longer exists")
    if job.config_id is not None and job.config is None:
        raise _Permanent(f"analytics config {job.config_id} no longer exists (was its agent deleted?)")
    transcript = [
        cast(Turn, {"role": role, "content": content})
        for role, content in job.messages
        if role in ("user", "agent")
    ]
    row = job.config
    if row is None:
        config = AnalyticsConfig(summary_prompt=None, metrics=())
    else:
        config = AnalyticsConfig(
            summary_prompt=row["summary_prompt"], metrics=parse_metrics(row["disposition_metrics"])
        )
    return Inputs(
        transcript=transcript,
        config=config,
        config_id=None if row is None else int(row["id"]),
        config_version=None if row is None else int(row["version"]),
        call_start=datetime.fromtimestamp(job.started_at / 1000, tz=UTC),
    )


def analyze(backend: Backend, inputs: Inputs) -> Analysis:
    """Run the model on ``inputs``. A call without a transcript (nobody answered) needs no model:
    no summary, and every metric None."""
    if not inputs.transcript:
        return Analysis(
            summary=None,
            metrics=[
                MetricValue(m.identifier, m.type, None, 0.0, "The call has no transcript.")
                for m in inputs.config.metrics
            ],
            model_id="",
        )
    # The backend serialises its own calls. If its worker process dies mid-analysis the error
    # (ModelCrashed) fails this attempt, and the retry runs on the fresh worker.
    return engine.analyze(backend, inputs.transcript, inputs.config, inputs.call_start)


def complete(
    db: Database, claim_: Claim, inputs: Inputs, analysis: Analysis, *, now_ms: int | None = None
) -> bool:
    """Store the result and mark the call completed, if the claim is still ours (else False)."""
    now = timeutil.now_ms() if now_ms is None else now_ms
    with db.write() as conn:
        return store.complete(
            conn,
            claim_,
            config_id=inputs.config_id,
            config_version=inputs.config_version,
            summary=analysis.summary,
            disposition_metrics=[m.to_json() for m in analysis.metrics],
            model=analysis.model_id or None,
            duration_ms=analysis.duration_ms,
            model_ms=analysis.model_ms,
            now=now,
        )


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or "(no message)"
    return f"{type(exc).__name__}: {text}"[:_ERROR_MAX]


def after_failure(
    claim_: Claim, reason: str, *, max_attempts: int, retry_delay: float | None, permanent: bool = False
) -> Outcome:
    """What a failed attempt leads to: ``failed`` when attempts are spent (or the error is
    permanent), else ``retry`` after ``retry_delay * 2**(attempt-1)`` seconds (``retry_delay``
    None: at once, the sweeper's case). The outcome's ``error`` is what ``analytics_error`` keeps."""
    n = claim_.attempt
    if permanent or n >= max_attempts:
        error = f"Failed after {n} attempt{'s' if n > 1 else ''}: {reason}"[:_ERROR_MAX]
        return Outcome("failed", error=error)
    if retry_delay is None:
        delay, when = 0.0, "retrying"
    else:
        delay = retry_delay * 2 ** (n - 1)
        when = f"retrying in {delay:g}s"
    error = f"Attempt {n} of {max_attempts} failed, {when}: {reason}"[:_ERROR_MAX]
    return Outcome("retry", retry_in=delay, error=error)


def _release(conn: Connection, claim_: Claim, outcome: Outcome, now: int) -> bool:
    """Write ``outcome`` (``retry`` or ``failed``) while the claim is still ours."""
    error = outcome.error or ""
    if outcome.kind == "failed":
        return store.fail(conn, claim_, error=error, now=now)
    return store.retry(conn, claim_, error=error, due_at=now + int((outcome.retry_in or 0) * 1000))


def record_failure(
    db: Database,
    claim_: Claim,
    reason: str,
    *,
    max_attempts: int,
    retry_delay: float,
    permanent: bool = False,
    now_ms: int | None = None,
) -> Outcome:
    """Put the call back to ``pending`` for a retry after ``retry_delay * 2**(attempt-1)`` seconds,
    or mark it ``failed`` when attempts are spent (or the error is permanent). The reason is kept
    in ``analytics_error`` either way."""
    now = timeutil.now_ms() if now_ms is None else now_ms
    outcome = after_failure(
        claim_, reason, max_attempts=max_attempts, retry_delay=retry_delay, permanent=permanent
    )
    with db.write() as conn:
        if not _release(conn, claim_, outcome, now):
            return Outcome("discarded", error=reason)
    return outcome


def attempt(db: Database, settings: Settings, call_pk: int, backend: Backend) -> Outcome:
    """One attempt at the call's pending analytics job, analyzed on ``backend``: what a queue
    worker runs (:meth:`dispo.analytics.jobs.Jobs.attempt`)."""
    claim_ = claim(db, call_pk)
    if claim_ is None:
        return Outcome("skipped")
    started = time.perf_counter()
    try:
        inputs = load_inputs(db, call_pk)
        analysis = analyze(backend, inputs)
        if not analysis.duration_ms:
            analysis.duration_ms = (time.perf_counter() - started) * 1000
    except _Permanent as exc:
        log.warning("Analytics of call %s cannot run: %s", call_pk, exc)
        return record_failure(
            db,
            claim_,
            str(exc),
            max_attempts=settings.analytics_max_attempts,
            retry_delay=settings.analytics_retry_delay_seconds,
            permanent=True,
        )
    except Exception as exc:
        log.warning("Analytics of call %s, attempt %s failed: %s", call_pk, claim_.attempt, _describe(exc))
        return record_failure(
            db,
            claim_,
            _describe(exc),
            max_attempts=settings.analytics_max_attempts,
            retry_delay=settings.analytics_retry_delay_seconds,
        )
    if not complete(db, claim_, inputs, analysis):
        log.info("Analytics of call %s finished after its job was handed on; result discarded", call_pk)
        return Outcome("discarded")
    return Outcome("completed")


def drive(db: Database, settings: Settings, call_pk: int, backend: Backend) -> Outcome:
    """Attempt the call's pending job in this process until it completes or fails for good,
    sleeping between attempts as the queue would. Raises :class:`AnalysisFailed` with the reason."""
    while True:
        outcome = attempt(db, settings, call_pk, backend)
        if outcome.kind == "retry":
            time.sleep(outcome.retry_in or 0)
            continue
        if outcome.kind == "failed":
            raise AnalysisFailed(outcome.error or "analysis failed")
        return outcome


# --------------------------------------------------------------------------------------------
# Sweeping: jobs whose worker died, and jobs the queue lost


def sweep_database(
    db: Database, settings: Settings, live: set[int], *, now_ms: int | None = None
) -> list[int]:
    """Find jobs no worker will run and return the call pks to enqueue again.

    - ``running`` with ``analytics_started_at`` older than ``analytics_lease_seconds``: the worker
      died (or hangs). The attempt counts (:func:`after_failure`): the call goes back to
      ``pending`` with the reason, due at once, or to ``failed`` when that was the last attempt.
    - ``pending`` and due more than a minute ago with no job in the queue (``live``: the call pks
      the queue holds): the queue lost the job.

    Each change is a compare-and-set on the row, so sweepers running at once enqueue a call once.
    """
    now = timeutil.now_ms() if now_ms is None else now_ms
    lease_ms = int(settings.analytics_lease_seconds * 1000)
    reason = f"the worker stopped before finishing (no result {settings.analytics_lease_seconds:g}s after it started)"
    out: list[int] = []
    with db.write() as conn:
        for claim_ in store.expired_claims(conn, now - lease_ms, SWEEP_BATCH):
            outcome = after_failure(
                claim_, reason, max_attempts=settings.analytics_max_attempts, retry_delay=None
            )
            if _release(conn, claim_, outcome, now):
                log.warning("Analytics of call %s: %s", claim_.call_pk, outcome.error)
                if outcome.kind == "retry" and claim_.call_pk not in live:
                    out.append(claim_.call_pk)
        for pk, queued_at in store.stale_pending(conn, now - STALE_PENDING_MS, SWEEP_BATCH):
            if pk not in live and store.touch_pending(conn, pk, queued_at, now):
                out.append(pk)
    if out:
        log.info("Sweeper: %d analytics job(s) to enqueue again", len(out))
    return out
