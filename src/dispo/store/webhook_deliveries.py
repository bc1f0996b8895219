"""The queries of webhook deliveries: the outbox rows' state machine and their attempt log.

A delivery moves ``pending → queued → running → delivered | pending | dead``; every move is one
conditional UPDATE naming the state it expects (the pattern of :mod:`dispo.store.analytics_jobs`),
so the relay, the workers and the sweeper can never act twice on one row:

- :func:`due` and :func:`mark_queued`: the relay takes pending rows that are due and hands them
  to the queue.
- :func:`claim`: ``queued → running``, counting the attempt; the :class:`Claim` is the worker's
  hold on the row, and :func:`record` writes the outcome (and the attempt's log row) only while
  the row still shows it.
- :func:`expired` and :func:`release`: rows queued or running past their lease (the queue lost
  the job, the worker died) go back to ``pending``, due at once.
- :func:`replay` / :func:`replay_many`: a delivery (delivered or dead) goes back to ``pending``
  with its attempts reset; its id (the idempotency key) and frozen payload stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, func, select

from dispo.store.tables import webhook_attempts, webhook_deliveries, webhooks
from dispo.types import Row

__all__ = [
    "DELIVERY_STATUSES",
    "AttemptLog",
    "Claim",
    "attempts_of",
    "claim",
    "count_deliveries",
    "delivery_for_attempt",
    "due",
    "expired",
    "get_delivery",
    "list_deliveries",
    "mark_queued",
    "record",
    "release",
    "replay",
    "replay_many",
    "set_payload",
]

DELIVERY_STATUSES = ("pending", "queued", "running", "delivered", "dead")
d, a = webhook_deliveries.c, webhook_attempts.c


def due(conn: Connection, now: int, limit: int) -> list[tuple[int, int]]:
    """``(pk, next_attempt_at)`` of pending deliveries due at ``now``, oldest first."""
    rows = conn.execute(
        select(d.pk, d.next_attempt_at)
        .where(d.status == "pending", d.next_attempt_at <= now)
        .order_by(d.next_attempt_at)
        .limit(limit)
    ).all()
    return [(int(pk), int(at)) for pk, at in rows]


def mark_queued(conn: Connection, pk: int, next_attempt_at: int, now: int) -> bool:
    """``pending → queued`` if the row is still as :func:`due` saw it."""
    changed = conn.execute(
        webhook_deliveries.update()
        .where(d.pk == pk, d.status == "pending", d.next_attempt_at == next_attempt_at)
        .values(status="queued", claimed_at=now, updated_at=now)
    )
    return bool(changed.rowcount == 1)


@dataclass(frozen=True)
class Claim:
    """A worker's hold on a delivery: valid while the row still shows this attempt and time."""

    pk: int
    attempt: int
    claimed_at: int


def claim(conn: Connection, pk: int, now: int) -> Claim | None:
    """``queued → running`` (counting the attempt), or None when it is not queued any more."""
    row = conn.execute(select(d.status, d.attempts, d.claimed_at).where(d.pk == pk)).first()
    if row is None or row.status != "queued":
        return None
    claimed = max(now, (row.claimed_at or 0) + 1)  # never the same (attempt, time) twice
    attempt = int(row.attempts) + 1
    changed = conn.execute(
        webhook_deliveries.update()
        .where(d.pk == pk, d.status == "queued", d.attempts == row.attempts)
        .values(status="running", attempts=attempt, claimed_at=claimed, updated_at=now)
    )
    return Claim(pk, attempt, claimed) if changed.rowcount == 1 else None


def delivery_for_attempt(conn: Connection, pk: int) -> Row | None:
    """The delivery with its webhook's endpoint and secrets (None if either is gone)."""
    w = webhooks.c
    stmt = (
        select(
            webhook_deliveries,
            w.org_id,
            w.endpoint,
            w.secret,
            w.previous_secret,
            w.previous_secret_until,
        )
        .join(webhooks, w.id == d.webhook_id)
        .where(d.pk == pk)
    )
    return conn.execute(stmt).mappings().first()


def set_payload(conn: Connection, pk: int, payload: Row) -> None:
    """Freeze the payload every later attempt sends."""
    conn.execute(webhook_deliveries.update().where(d.pk == pk, d.payload.is_(None)).values(payload=payload))


@dataclass(frozen=True)
class AttemptLog:
    """What one attempt saw: ``outcome`` is ``delivered`` or ``failed``."""

    outcome: str
    status_code: int | None
    latency_ms: float | None
    response_excerpt: str | None
    error: str | None


def record(
    conn: Connection, claim_: Claim, log: AttemptLog, *, status: str, next_attempt_at: int, now: int
) -> bool:
    """Log the attempt and move the row to ``status`` (``delivered``, ``pending`` for a retry due at
    ``next_attempt_at``, or ``dead``), if the claim is still ours (else False, nothing written)."""
    changed = conn.execute(
        webhook_deliveries.update()
        .where(
            d.pk == claim_.pk,
            d.status == "running",
            d.attempts == claim_.attempt,
            d.claimed_at == claim_.claimed_at,
        )
        .values(
            status=status,
            next_attempt_at=next_attempt_at,
            last_status_code=log.status_code,
            last_error=log.error,
            delivered_at=now if status == "delivered" else None,
            updated_at=now,
        )
    )
    if changed.rowcount != 1:
        return False
    number = conn.execute(select(func.count()).where(a.delivery_pk == claim_.pk)).scalar_one()
    conn.execute(
        webhook_attempts.insert().values(
            delivery_pk=claim_.pk,
            attempt=int(number) + 1,
            outcome=log.outcome,
            status_code=log.status_code,
            latency_ms=log.latency_ms,
            response_excerpt=log.response_excerpt,
            error=log.error,
            created_at=now,
        )
    )
    return True


def expired(conn: Connection, claimed_before: int, limit: int) -> list[tuple[int, str, int]]:
    """``(pk, status, claimed_at)`` of rows queued or running since before ``claimed_before``."""
    rows = conn.execute(
        select(d.pk, d.status, d.claimed_at)
        .where(d.status.in_(("queued", "running")), d.claimed_at < claimed_before)
        .limit(limit)
    ).all()
    return [(int(pk), str(status), int(claimed_at)) for pk, status, claimed_at in rows]


def release(conn: Connection, pk: int, status: str, claimed_at: int, now: int) -> bool:
    """An :func:`expired` row back to ``pending``, due now, if it is still as it was seen."""
    changed = conn.execute(
        webhook_deliveries.update()
        .where(d.pk == pk, d.status == status, d.claimed_at == claimed_at)
        .values(status="pending", next_attempt_at=now, updated_at=now)
    )
    return bool(changed.rowcount == 1)


# ---------------------------------------------------------------------------------------------
# The delivery log and replays, per webhook


def _filtered(
    webhook_id: str, statuses: Sequence[str], date_from: int | None, date_to: int | None
) -> list[ColumnElement[bool]]:
    where = [d.webhook_id == webhook_id]
    if statuses:
        where.append(d.status.in_(list(statuses)))
    if date_from is not None:
        where.append(d.created_at >= date_from)
    if date_to is not None:
        where.append(d.created_at <= date_to)
    return where


def list_deliveries(
    conn: Connection, webhook_id: str, *, statuses: Sequence[str], limit: int, offset: int
) -> list[Row]:
    """The webhook's deliveries, newest first."""
    stmt = (
        select(webhook_deliveries)
        .where(*_filtered(webhook_id, statuses, None, None))
        .order_by(d.created_at.desc(), d.pk.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(conn.execute(stmt).mappings())


def count_deliveries(conn: Connection, webhook_id: str, statuses: Sequence[str]) -> int:
    stmt = select(func.count()).where(*_filtered(webhook_id, statuses, None, None))
    return int(conn.execute(stmt).scalar_one())


def attempts_of(conn: Connection, delivery_pks: Sequence[int]) -> dict[int, list[Row]]:
    """``{delivery pk: [attempt rows, oldest first]}``."""
    out: dict[int, list[Row]] = {pk: [] for pk in delivery_pks}
    if not delivery_pks:
        return out
    stmt = select(webhook_attempts).where(a.delivery_pk.in_(list(delivery_pks))).order_by(a.delivery_pk, a.id)
    for row in conn.execute(stmt).mappings():
        out[int(row["delivery_pk"])].append(row)
    return out


def get_delivery(conn: Connection, webhook_id: str, delivery_id: str) -> Row | None:
    stmt = select(webhook_deliveries).where(d.webhook_id == webhook_id, d.id == delivery_id)
    return conn.execute(stmt).mappings().first()


_REPLAYABLE = ("delivered", "dead")


def replay(conn: Connection, webhook_id: str, delivery_id: str, now: int) -> bool:
    """A delivered or dead delivery back to ``pending``, due now; False when it is not one."""
    changed = conn.execute(
        webhook_deliveries.update()
        .where(d.webhook_id == webhook_id, d.id == delivery_id, d.status.in_(_REPLAYABLE))
        .values(status="pending", attempts=0, next_attempt_at=now, delivered_at=None, updated_at=now)
    )
    return bool(changed.rowcount == 1)


def replay_many(
    conn: Connection,
    webhook_id: str,
    statuses: Sequence[str],
    date_from: int | None,
    date_to: int | None,
    now: int,
) -> int:
    """:func:`replay` every delivery of the webhook in ``statuses`` (delivered and/or dead)
    created in the date range; returns how many."""
    wanted = [st for st in statuses if st in _REPLAYABLE]
    if not wanted:
        return 0
    changed = conn.execute(
        webhook_deliveries.update()
        .where(*_filtered(webhook_id, wanted, date_from, date_to))
        .values(status="pending", attempts=0, next_attempt_at=now, delivered_at=None, updated_at=now)
    )
    return int(changed.rowcount)
