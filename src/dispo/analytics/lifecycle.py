"""Post-call analytics of one call against the database: mark, claim, analyze, record.

The call row is the durable record of its analytics job (``calls.analytics_*``); the queue
(:mod:`dispo.analytics.jobs`) only carries call pks to workers. One attempt goes:

1. **claim** — ``pending → running`` in one conditional UPDATE that also counts the attempt and
   stamps ``analytics_started_at``. Only one worker can win it, so a duplicate delivery of a job
   (a re-enqueue by the sweeper, a retry racing a re-analysis) does nothing.
2. **load** the transcript and the config the call was queued with (``analytics_config_id``,
   fixed when the call ended: a config changed later applies to new calls only).
3. **analyze** with the configured LLM backend (:func:`dispo.analytics.engine.analyze`), outside
   any transaction.
4. **complete** — ``running → completed`` plus the ``analytics_results`` row, in one transaction,
   and only while the claim is still ours (same attempt number and start time). A worker that was
   presumed dead (its lease expired and the sweeper handed the job on) writes nothing when it
   finally finishes, so a call never gets two results from one request.

On an error the call goes back to ``pending`` with the reason in ``analytics_error`` and the time
of the retry in ``analytics_queued_at`` (the delay doubles each attempt), or to ``failed`` once
``analytics_max_attempts`` are spent. Earlier results are never deleted: re-analysis adds a row
and the newest is the one shown.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, cast

from sqlalchemy import Connection, func, select

from dispo import timeutil
from dispo.analytics import engine
from dispo.analytics.config import AnalyticsConfig, parse_metrics
from dispo.analytics.engine import Analysis, MetricValue, Turn
from dispo.config import Settings
from dispo.errors import AnalysisFailed
from dispo.llm import Backend
from dispo.store.database import Database
from dispo.store.tables import analytics_configs, analytics_results, calls, transcript_messages
from dispo.types import Row

__all__ = [
    "ANALYTICS_STATUSES",
    "TERMINAL_STATUSES",
    "AnalysisFailed",
    "Claim",
    "Inputs",
    "Outcome",
    "attempt",
    "claim",
    "complete",
    "drive",
    "failed_calls",
    "latest_config_ids",
    "load_inputs",
    "mark_pending",
    "mark_pending_many",
    "record_failure",
    "status_counts",
    "sweep_database",
]

log = logging.getLogger("dispo.analytics")

ANALYTICS_STATUSES = ("pending", "running", "completed", "failed")
# Call statuses after which nothing more happens to a call: its analytics can run.
TERMINAL_STATUSES = ("completed", "failed", "no_answer", "busy", "cancelled")
# A job "pending" this long past its due time with no job for it in the queue was lost (a queue
# wiped, an enqueue that failed after the commit): the sweeper enqueues it again.
STALE_PENDING_MS = 60_000
# Rows the sweeper handles per run and per kind; the next run takes the rest.
SWEEP_BATCH = 1000
_ERROR_MAX = 2000

c = calls.c


class _Permanent(Exception):
    """An error that another attempt cannot fix (the call or its config is gone)."""


# --------------------------------------------------------------------------------------------
# Marking calls pending: inside the transaction that ends the call, or a re-analysis request.


def latest_config_ids(conn: Connection, agent_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
    """``{agent_id: (config id, version)}`` of each agent's newest analytics config (agents with one)."""
    wanted = sorted({a for a in agent_ids if a})
    if not wanted:
        return {}
    ac = analytics_configs.c
    out: dict[str, tuple[int, int]] = {}
    stmt = select(ac.agent_id, ac.id, ac.version).where(ac.agent_id.in_(wanted)).order_by(ac.version)
    for agent_id, config_id, version in conn.execute(stmt):
        out[agent_id] = (int(config_id), int(version))  # ascending: the newest wins
    return out


def _pending_values(now: int) -> dict[str, object]:
    # analytics_started_at is kept: with the attempt number it makes each claim unique (see claim).
    return {
        "analytics_status": "pending",
        "analytics_queued_at": now,
        "analytics_finished_at": None,
        "analytics_attempts": 0,
        "analytics_error": None,
    }


def mark_pending(conn: Connection, call_pk: int, now_ms: int | None = None) -> bool:
    """Record that ``call_pk`` needs its analytics; call it inside the transaction that ends the call.

    Sets ``analytics_status="pending"`` and ``analytics_queued_at``, and fixes the config the job
    will use: the call's ``analytics_config_id`` if already set, otherwise the agent's newest config
    (none: a default summary and no metrics). Returns False when there is no such call. After the
    commit, hand the call to a worker with :meth:`dispo.analytics.jobs.Jobs.enqueue`.
    """
    row = conn.execute(select(c.agent_id, c.analytics_config_id).where(c.pk == call_pk)).first()
    if row is None:
        return False
    config_id = row.analytics_config_id
    if config_id is None and row.agent_id:
        latest = latest_config_ids(conn, [row.agent_id]).get(row.agent_id)
        config_id = latest[0] if latest else None
    now = timeutil.now_ms() if now_ms is None else now_ms
    conn.execute(
        calls.update().where(c.pk == call_pk).values(analytics_config_id=config_id, **_pending_values(now))
    )
    return True


def mark_pending_many(
    conn: Connection, rows: Sequence[Row], config_ids: dict[str | None, int | None], now_ms: int | None = None
) -> None:
    """Mark calls for re-analysis: ``rows`` carry ``pk`` and ``agent_id``; ``config_ids`` maps each
    agent id (None: calls without an agent) to the config to use (None: the default summary)."""
    now = timeutil.now_ms() if now_ms is None else now_ms
    groups: dict[int | None, list[int]] = {}
    for row in rows:
        groups.setdefault(config_ids.get(row["agent_id"]), []).append(int(row["pk"]))
    for config_id, pks in groups.items():
        for start in range(0, len(pks), 500):
            chunk = pks[start : start + 500]
            conn.execute(
                calls.update()
                .where(c.pk.in_(chunk))
                .values(analytics_config_id=config_id, **_pending_values(now))
            )


# --------------------------------------------------------------------------------------------
# One attempt


@dataclass(frozen=True)
class Claim:
    """A worker's hold on a call's job: valid while the row still shows this attempt and start."""

    call_pk: int
    attempt: int
    started_at: int


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
        row = conn.execute(
            select(c.analytics_status, c.analytics_attempts, c.analytics_started_at).where(c.pk == call_pk)
        ).first()
        if row is None or row.analytics_status != "pending":
            return None
        # Strictly later than any earlier claim of this call, so (attempt, started_at) never repeats
        # even when a re-analysis restarts the attempt count.
        started = max(now, (row.analytics_started_at or 0) + 1)
        attempt_no = int(row.analytics_attempts) + 1
        result = conn.execute(
            calls.update()
            .where(
                c.pk == call_pk,
                c.analytics_status == "pending",
                c.analytics_attempts == row.analytics_attempts,
            )
            .values(
                analytics_status="running",
                analytics_attempts=attempt_no,
                analytics_started_at=started,
                analytics_finished_at=None,
            )
        )
        if result.rowcount != 1:
            return None
    return Claim(call_pk, attempt_no, started)


def _still_ours(claim_: Claim) -> list[object]:
    return [
        c.pk == claim_.call_pk,
        c.analytics_status == "running",
        c.analytics_attempts == claim_.attempt,
        c.analytics_started_at == claim_.started_at,
    ]


def load_inputs(db: Database, call_pk: int) -> Inputs:
    """The transcript, the config and the start time the analysis of ``call_pk`` needs."""
    with db.read() as conn:
        call = conn.execute(
            select(c.analytics_config_id, c.started_at, c.created_at).where(c.pk == call_pk)
        ).first()
        if call is None:
            raise _Permanent(f"call {call_pk} no longer exists")
        t = transcript_messages.c
        messages = conn.execute(select(t.role, t.content).where(t.call_pk == call_pk).order_by(t.seq)).all()
        config_row = None
        if call.analytics_config_id is not None:
            config_row = (
                conn.execute(
                    select(analytics_configs).where(analytics_configs.c.id == call.analytics_config_id)
                )
                .mappings()
                .first()
            )
            if config_row is None:
                raise _Permanent(
                    f"analytics config {call.analytics_config_id} no longer exists (was its agent deleted?)"
                )
    transcript = [
        cast(Turn, {"role": role, "content": content})
        for role, content in messages
        if role in ("user", "agent")
    ]
    if config_row is None:
        config = AnalyticsConfig(summary_prompt=None, metrics=())
    else:
        config = AnalyticsConfig(
            summary_prompt=config_row["summary_prompt"],
            metrics=parse_metrics(config_row["disposition_metrics"]),
        )
    start_ms = call.started_at if call.started_at is not None else call.created_at
    return Inputs(
        transcript=transcript,
        config=config,
        config_id=None if config_row is None else int(config_row["id"]),
        config_version=None if config_row is None else int(config_row["version"]),
        call_start=datetime.fromtimestamp(start_ms / 1000, tz=UTC),
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
        done = conn.execute(
            calls.update()
            .where(*_still_ours(claim_))  # type: ignore[arg-type]
            .values(analytics_status="completed", analytics_finished_at=now, analytics_error=None)
        )
        if done.rowcount != 1:
            return False
        conn.execute(
            analytics_results.insert().values(
                call_pk=claim_.call_pk,
                config_id=inputs.config_id,
                config_version=inputs.config_version,
                summary=analysis.summary,
                disposition_metrics=[m.to_json() for m in analysis.metrics],
                model=analysis.model_id or None,
                duration_ms=analysis.duration_ms,
                model_ms=analysis.model_ms,
                created_at=now,
            )
        )
    return True


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or "(no message)"
    return f"{type(exc).__name__}: {text}"[:_ERROR_MAX]


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
    n = claim_.attempt
    if permanent or n >= max_attempts:
        error = f"Failed after {n} attempt{'s' if n > 1 else ''}: {reason}"[:_ERROR_MAX]
        values: dict[str, object] = {
            "analytics_status": "failed",
            "analytics_finished_at": now,
            "analytics_error": error,
        }
        outcome = Outcome("failed", error=error)
    else:
        delay = retry_delay * 2 ** (n - 1)
        error = f"Attempt {n} of {max_attempts} failed, retrying in {delay:g}s: {reason}"[:_ERROR_MAX]
        values = {
            "analytics_status": "pending",
            "analytics_queued_at": now + int(delay * 1000),
            "analytics_error": error,
        }
        outcome = Outcome("retry", retry_in=delay, error=error)
    with db.write() as conn:
        changed = conn.execute(
            calls.update().where(*_still_ours(claim_)).values(**values)  # type: ignore[arg-type]
        )
    if changed.rowcount != 1:
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


def status_counts(conn: Connection, call_pks: Sequence[int]) -> dict[str | None, int]:
    """``{analytics_status: calls}`` among ``call_pks``."""
    out: dict[str | None, int] = {}
    for start in range(0, len(call_pks), 500):
        stmt = (
            select(c.analytics_status, func.count())
            .where(c.pk.in_(call_pks[start : start + 500]))
            .group_by(c.analytics_status)
        )
        for status, n in conn.execute(stmt):
            out[status] = out.get(status, 0) + int(n)
    return out


def failed_calls(conn: Connection, call_pks: Sequence[int]) -> list[Row]:
    """``call_id`` and ``analytics_error`` of the calls among ``call_pks`` whose analytics failed."""
    out: list[Row] = []
    for start in range(0, len(call_pks), 500):
        stmt = select(c.call_id, c.analytics_error).where(
            c.pk.in_(call_pks[start : start + 500]), c.analytics_status == "failed"
        )
        out.extend(conn.execute(stmt).mappings())
    return out


# --------------------------------------------------------------------------------------------
# Sweeping: jobs whose worker died, and jobs the queue lost


def sweep_database(
    db: Database, settings: Settings, live: set[int], *, now_ms: int | None = None
) -> list[int]:
    """Find jobs no worker will run and return the call pks to enqueue again.

    - ``running`` with ``analytics_started_at`` older than ``analytics_lease_seconds``: the worker
      died (or hangs). The attempt counts; the call goes back to ``pending`` with the reason, or to
      ``failed`` when that was the last attempt.
    - ``pending`` and due more than a minute ago with no job in the queue (``live``: the call pks
      the queue holds): the queue lost the job.

    Each change is a compare-and-set on the row, so sweepers running at once enqueue a call once.
    """
    now = timeutil.now_ms() if now_ms is None else now_ms
    lease_ms = int(settings.analytics_lease_seconds * 1000)
    out: list[int] = []
    with db.write() as conn:
        expired = conn.execute(
            select(c.pk, c.analytics_attempts, c.analytics_started_at)
            .where(c.analytics_status == "running", c.analytics_started_at < now - lease_ms)
            .limit(SWEEP_BATCH)
        ).all()
        for pk, attempts, started_at in expired:
            reason = (
                f"the worker stopped before finishing (no result {settings.analytics_lease_seconds:g}s "
                "after it started)"
            )
            if attempts >= settings.analytics_max_attempts:
                values: dict[str, object] = {
                    "analytics_status": "failed",
                    "analytics_finished_at": now,
                    "analytics_error": f"Failed after {attempts} attempts: {reason}",
                }
            else:
                values = {
                    "analytics_status": "pending",
                    "analytics_queued_at": now,
                    "analytics_error": f"Attempt {attempts} of {settings.analytics_max_attempts} failed, retrying: {reason}",
                }
            changed = conn.execute(
                calls.update()
                .where(
                    c.pk == pk,
                    c.analytics_status == "running",
                    c.analytics_attempts == attempts,
                    c.analytics_started_at == started_at,
                )
                .values(**values)
            )
            if changed.rowcount == 1:
                log.warning("Analytics of call %s: %s", pk, values["analytics_error"])
                if values["analytics_status"] == "pending" and pk not in live:
                    out.append(int(pk))
        stale = conn.execute(
            select(c.pk, c.analytics_queued_at)
            .where(c.analytics_status == "pending", c.analytics_queued_at < now - STALE_PENDING_MS)
            .order_by(c.analytics_queued_at)
            .limit(SWEEP_BATCH)
        ).all()
        for pk, queued_at in stale:
            if pk in live:
                continue
            changed = conn.execute(
                calls.update()
                .where(c.pk == pk, c.analytics_status == "pending", c.analytics_queued_at == queued_at)
                .values(analytics_queued_at=now)
            )
            if changed.rowcount == 1:
                out.append(int(pk))
    if out:
        log.info("Sweeper: %d analytics job(s) to enqueue again", len(out))
    return out
