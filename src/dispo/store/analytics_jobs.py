"""The queries of post-call analytics jobs: the ``calls.analytics_*`` columns and ``analytics_results``.

A call row is the durable record of its analytics job (the queue only carries call pks), and a
job moves ``pending → running → completed | failed`` (or back to ``pending`` for a retry). Every
move is one conditional UPDATE that names the state it expects, so two workers (or a worker and
the sweeper) can never both act on a job:

- :func:`mark_pending` / :func:`mark_pending_many`: a call that ended, or a re-analysis request,
  gets ``pending`` with the config its job will use.
- :func:`claim`: ``pending → running``, counting the attempt and stamping the start. The
  :class:`Claim` (attempt number and start) is the worker's hold on the job; :func:`complete`,
  :func:`retry` and :func:`fail` change the row only while it still shows that claim, so a worker
  presumed dead writes nothing when it finally finishes.
- :func:`expired_claims`, :func:`stale_pending` and :func:`touch_pending`: what the sweeper reads
  and re-stamps.

What to do with a job (when to retry, the error texts) is decided in
:mod:`dispo.analytics.lifecycle`; these functions only read and write.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Update, func, select

from dispo import timeutil
from dispo.store.metric_values import replace_metric_values
from dispo.store.tables import analytics_configs, analytics_results, calls, transcript_messages
from dispo.store.webhooks import emit_for_call
from dispo.types import Row

__all__ = [
    "Claim",
    "JobInputs",
    "claim",
    "complete",
    "config_ids_of_version",
    "expired_claims",
    "fail",
    "failed_calls",
    "latest_config_ids",
    "load_job_inputs",
    "mark_pending",
    "mark_pending_many",
    "pending_values",
    "retry",
    "stale_pending",
    "status_counts",
    "touch_pending",
]

_CHUNK = 500  # pks per IN (...) list

c = calls.c
ac = analytics_configs.c


# --------------------------------------------------------------------------------------------
# Configs, and marking calls pending: inside the transaction that ends the call, or a re-analysis


def latest_config_ids(conn: Connection, agent_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
    """``{agent_id: (config id, version)}`` of each agent's newest analytics config (agents with one)."""
    wanted = sorted({a for a in agent_ids if a})
    if not wanted:
        return {}
    out: dict[str, tuple[int, int]] = {}
    stmt = select(ac.agent_id, ac.id, ac.version).where(ac.agent_id.in_(wanted)).order_by(ac.version)
    for agent_id, config_id, version in conn.execute(stmt):
        out[agent_id] = (int(config_id), int(version))  # ascending: the newest wins
    return out


def config_ids_of_version(conn: Connection, agent_ids: Sequence[str], version: int) -> dict[str, int]:
    """``{agent_id: config id}`` of version ``version`` of each agent's config (agents that have it)."""
    stmt = select(ac.agent_id, ac.id).where(ac.agent_id.in_(agent_ids), ac.version == version)
    return {row.agent_id: int(row.id) for row in conn.execute(stmt)}


def _pending_values(now: int) -> dict[str, object]:
    # analytics_started_at is kept: with the attempt number it makes each claim unique (see claim).
    return {
        "analytics_status": "pending",
        "analytics_queued_at": now,
        "analytics_finished_at": None,
        "analytics_attempts": 0,
        "analytics_error": None,
    }


def pending_values(config_id: int | None, now: int) -> dict[str, object]:
    """The ``calls`` columns of a call inserted with its analytics pending (bulk imports)."""
    return {"analytics_config_id": config_id, **_pending_values(now)}


def mark_pending(conn: Connection, call_pk: int, now_ms: int | None = None) -> bool:
    """Record that ``call_pk`` needs its analytics; call it inside the transaction that ends the call.

    Sets ``analytics_status="pending"`` and ``analytics_queued_at``, and fixes the config the job
    will use: the call's ``analytics_config_id`` if already set, otherwise the agent's newest config
    (none: a default summary and no metrics). Returns False when there is no such call. After the
    commit, hand the call to a worker with :func:`dispo.analytics.jobs.enqueue`.
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
        for start in range(0, len(pks), _CHUNK):
            conn.execute(
                calls.update()
                .where(c.pk.in_(pks[start : start + _CHUNK]))
                .values(analytics_config_id=config_id, **_pending_values(now))
            )


# --------------------------------------------------------------------------------------------
# One attempt: claim, load, then complete, retry or fail while the claim is still ours


@dataclass(frozen=True)
class Claim:
    """A worker's hold on a call's job: valid while the row still shows this attempt and start."""

    call_pk: int
    attempt: int
    started_at: int


def claim(conn: Connection, call_pk: int, now: int) -> Claim | None:
    """Take the call's pending job, or None when it is not pending (done, or another worker has it)."""
    row = conn.execute(
        select(c.analytics_status, c.analytics_attempts, c.analytics_started_at).where(c.pk == call_pk)
    ).first()
    if row is None or row.analytics_status != "pending":
        return None
    # Strictly later than any earlier claim of this call, so (attempt, started_at) never repeats
    # even when a re-analysis restarts the attempt count.
    started = max(now, (row.analytics_started_at or 0) + 1)
    attempt = int(row.analytics_attempts) + 1
    result = conn.execute(
        calls.update()
        .where(
            c.pk == call_pk, c.analytics_status == "pending", c.analytics_attempts == row.analytics_attempts
        )
        .values(
            analytics_status="running",
            analytics_attempts=attempt,
            analytics_started_at=started,
            analytics_finished_at=None,
        )
    )
    return Claim(call_pk, attempt, started) if result.rowcount == 1 else None


def _while_ours(claim_: Claim, **values: Any) -> Update:
    return (
        calls.update()
        .where(
            c.pk == claim_.call_pk,
            c.analytics_status == "running",
            c.analytics_attempts == claim_.attempt,
            c.analytics_started_at == claim_.started_at,
        )
        .values(**values)
    )


@dataclass(frozen=True)
class JobInputs:
    """What the analysis of a call reads: its transcript, its config row and when it started."""

    messages: list[tuple[str, str]]  # (role, content), in order
    config_id: int | None  # the config the job was queued with (None: the default analysis)
    config: Row | None  # its row; None also when the config is gone (config_id is then set)
    started_at: int  # the call's start, or its creation when it never started


def load_job_inputs(conn: Connection, call_pk: int) -> JobInputs | None:
    """The inputs of ``call_pk``'s analysis, or None when the call no longer exists."""
    call = conn.execute(
        select(c.analytics_config_id, c.started_at, c.created_at).where(c.pk == call_pk)
    ).first()
    if call is None:
        return None
    t = transcript_messages.c
    messages = conn.execute(select(t.role, t.content).where(t.call_pk == call_pk).order_by(t.seq)).all()
    config = None
    if call.analytics_config_id is not None:
        stmt = select(analytics_configs).where(ac.id == call.analytics_config_id)
        config = conn.execute(stmt).mappings().first()
    return JobInputs(
        messages=[(role, content) for role, content in messages],
        config_id=call.analytics_config_id,
        config=config,
        started_at=call.started_at if call.started_at is not None else call.created_at,
    )


def complete(
    conn: Connection,
    claim_: Claim,
    *,
    config_id: int | None,
    config_version: int | None,
    summary: str | None,
    disposition_metrics: list[Row],
    model: str | None,
    duration_ms: float | None,
    model_ms: float | None,
    now: int,
) -> bool:
    """``running → completed`` and the ``analytics_results`` row, if the claim is still ours (else False)."""
    done = conn.execute(
        _while_ours(claim_, analytics_status="completed", analytics_finished_at=now, analytics_error=None)
    )
    if done.rowcount != 1:
        return False
    conn.execute(
        analytics_results.insert().values(
            call_pk=claim_.call_pk,
            config_id=config_id,
            config_version=config_version,
            summary=summary,
            disposition_metrics=disposition_metrics,
            model=model,
            duration_ms=duration_ms,
            model_ms=model_ms,
            created_at=now,
        )
    )
    org_id = conn.execute(select(c.org_id).where(c.pk == claim_.call_pk)).scalar_one()
    replace_metric_values(conn, claim_.call_pk, str(org_id), disposition_metrics)
    emit_for_call(conn, claim_.call_pk, "analytics-completed")  # the webhooks' outbox, same transaction
    return True


def retry(conn: Connection, claim_: Claim, *, error: str, due_at: int) -> bool:
    """``running → pending``, due at ``due_at``, with the reason; False when the claim is not ours."""
    changed = conn.execute(
        _while_ours(claim_, analytics_status="pending", analytics_queued_at=due_at, analytics_error=error)
    )
    return bool(changed.rowcount == 1)


def fail(conn: Connection, claim_: Claim, *, error: str, now: int) -> bool:
    """``running → failed`` for good, with the reason; False when the claim is not ours."""
    changed = conn.execute(
        _while_ours(claim_, analytics_status="failed", analytics_finished_at=now, analytics_error=error)
    )
    return bool(changed.rowcount == 1)


# --------------------------------------------------------------------------------------------
# What the sweeper reads: jobs whose worker died, and jobs the queue lost


def expired_claims(conn: Connection, started_before: int, limit: int) -> list[Claim]:
    """Claims of ``running`` jobs started before ``started_before`` (their worker's lease is over)."""
    rows = conn.execute(
        select(c.pk, c.analytics_attempts, c.analytics_started_at)
        .where(c.analytics_status == "running", c.analytics_started_at < started_before)
        .limit(limit)
    ).all()
    return [Claim(int(pk), int(attempts), int(started)) for pk, attempts, started in rows]


def stale_pending(conn: Connection, due_before: int, limit: int) -> list[tuple[int, int]]:
    """``(call pk, analytics_queued_at)`` of ``pending`` jobs due before ``due_before``, oldest first."""
    rows = conn.execute(
        select(c.pk, c.analytics_queued_at)
        .where(c.analytics_status == "pending", c.analytics_queued_at < due_before)
        .order_by(c.analytics_queued_at)
        .limit(limit)
    ).all()
    return [(int(pk), int(queued_at)) for pk, queued_at in rows]


def touch_pending(conn: Connection, call_pk: int, queued_at: int, now: int) -> bool:
    """Move a pending job's due time from ``queued_at`` to ``now``; False when it changed meanwhile
    (another sweeper took it, or a worker claimed it)."""
    changed = conn.execute(
        calls.update()
        .where(c.pk == call_pk, c.analytics_status == "pending", c.analytics_queued_at == queued_at)
        .values(analytics_queued_at=now)
    )
    return bool(changed.rowcount == 1)


# --------------------------------------------------------------------------------------------
# Progress of a batch (``dispo analytics rerun --wait``)


def status_counts(conn: Connection, call_pks: Sequence[int]) -> dict[str | None, int]:
    """``{analytics_status: calls}`` among ``call_pks``."""
    out: dict[str | None, int] = {}
    for start in range(0, len(call_pks), _CHUNK):
        stmt = (
            select(c.analytics_status, func.count())
            .where(c.pk.in_(call_pks[start : start + _CHUNK]))
            .group_by(c.analytics_status)
        )
        for status, n in conn.execute(stmt):
            out[status] = out.get(status, 0) + int(n)
    return out


def failed_calls(conn: Connection, call_pks: Sequence[int]) -> list[Row]:
    """``call_id`` and ``analytics_error`` of the calls among ``call_pks`` whose analytics failed."""
    out: list[Row] = []
    for start in range(0, len(call_pks), _CHUNK):
        stmt = select(c.call_id, c.analytics_error).where(
            c.pk.in_(call_pks[start : start + _CHUNK]), c.analytics_status == "failed"
        )
        out.extend(conn.execute(stmt).mappings())
    return out
