"""The dialer's queries on ``campaign_members``: claim, attach a call, renew, settle, reconcile.

A member moves ``queued → dialing → completed | no_answer | busy | failed`` (or back to ``queued``
for a retry). Every move is one conditional UPDATE that names the state it expects, so two dialers
(or a dialer and its restarted self) can never both act on a member:

- **claim**: ``queued`` and due → ``dialing`` with a lease and ``attempts + 1``; in the same
  transaction the call row is inserted and its id recorded in ``last_call_id``. So every dial has
  a call row before any phone rings, and a member in ``dialing`` always names its call.
- **settle**: ``dialing`` with that ``last_call_id`` → the outcome, in the transaction that writes
  the call's terminal status. A dialer whose lease was taken over settles nothing.
- **reconcile** (expired leases: the dialer died): the member's call row decides. Ended → settle
  from it. Still in progress → the person may have been talking to the agent when the server
  died; the call is recorded ``failed`` (``system_error``) and the member is *not* dialled again,
  because calling somebody twice is worse than one lost attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, exists, select, update

from dispo.store.tables import audience_members, calls, campaign_members, campaigns
from dispo.types import Row

m = campaign_members.c

RETRYABLE = ("no_answer", "busy", "failed")
# Campaign states in which a failed attempt is queued again (a paused one resumes later).
RETRYING_CAMPAIGN_STATUSES = ("running", "paused")


@dataclass(frozen=True)
class Claimed:
    campaign_id: str
    member_id: str
    phone_number: str
    attempts: int  # including this one


def running_campaigns(conn: Connection) -> list[Row]:
    c = campaigns.c
    stmt = select(campaigns).where(c.status == "running").order_by(c.started_at, c.id)
    return list(conn.execute(stmt).mappings())


def claim_due(conn: Connection, campaign_id: str, *, limit: int, now: int, lease_ms: int) -> list[Claimed]:
    """Claim up to ``limit`` queued members due by ``now``, oldest due first.

    The candidates are read first (on PostgreSQL locked with SKIP LOCKED, so concurrent dialers
    take different ones), then claimed by one UPDATE that re-checks ``status = 'queued'``: only a
    member still queued at that moment is claimed. (One ``UPDATE … WHERE id IN (SELECT … LIMIT n
    FOR UPDATE SKIP LOCKED)`` is not enough on PostgreSQL: the planner may run the subquery once
    per row, and each run skips the rows the previous one locked, so it claims more than n.)
    """
    # Checked in the claim's own transaction: once a pause or stop commits, nobody new is claimed.
    running = exists().where(campaigns.c.id == campaign_id, campaigns.c.status == "running")
    due = (
        select(m.member_id)
        .where(m.campaign_id == campaign_id, m.status == "queued", m.next_attempt_at <= now, running)
        .order_by(m.next_attempt_at, m.member_id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = list(conn.execute(due).scalars())
    if not ids:
        return []
    stmt = (
        update(campaign_members)
        .where(m.campaign_id == campaign_id, m.member_id.in_(ids), m.status == "queued", running)
        .values(status="dialing", lease_until=now + lease_ms, attempts=m.attempts + 1, updated_at=now)
        .returning(m.member_id, m.phone_number, m.attempts)
    )
    rows = conn.execute(stmt).all()
    claimed = [Claimed(campaign_id, r.member_id, r.phone_number, int(r.attempts)) for r in rows]
    return sorted(claimed, key=lambda c: c.member_id)


def attach_call(conn: Connection, claimed: Claimed, call_id: str) -> None:
    conn.execute(
        update(campaign_members)
        .where(m.campaign_id == claimed.campaign_id, m.member_id == claimed.member_id, m.status == "dialing")
        .values(last_call_id=call_id)
    )


def member_data(conn: Connection, member_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    if not member_ids:
        return {}
    am = audience_members.c
    rows = conn.execute(select(am.id, am.data).where(am.id.in_(list(member_ids))))
    return {r.id: dict(r.data or {}) for r in rows}


def renew(conn: Connection, leases: Sequence[tuple[str, str, str]], until: int) -> int:
    """Extend the leases of members being called now: ``(campaign_id, member_id, call_id)``."""
    renewed = 0
    for campaign_id, member_id, call_id in leases:
        result = conn.execute(
            update(campaign_members)
            .where(
                m.campaign_id == campaign_id,
                m.member_id == member_id,
                m.status == "dialing",
                m.last_call_id == call_id,
            )
            .values(lease_until=until)
        )
        renewed += result.rowcount
    return renewed


def settle(
    conn: Connection,
    campaign_id: str,
    member_id: str,
    call_id: str,
    outcome: str,
    *,
    now: int,
    retry: bool = True,
) -> str | None:
    """Record the outcome of the member's call ``call_id``; returns the member's new status, or
    None when the member was not waiting on that call (its lease was reconciled meanwhile)."""
    member = conn.execute(
        select(m.attempts).where(
            m.campaign_id == campaign_id,
            m.member_id == member_id,
            m.status == "dialing",
            m.last_call_id == call_id,
        )
    ).first()
    if member is None:
        return None
    campaign = conn.execute(
        select(campaigns.c.status, campaigns.c.max_retries, campaigns.c.retry_delay).where(
            campaigns.c.id == campaign_id
        )
    ).one()
    values: dict[str, Any] = {
        "status": outcome,
        "lease_until": None,
        "last_outcome": outcome,
        "updated_at": now,
    }
    if (
        retry
        and outcome in RETRYABLE
        and member.attempts <= campaign.max_retries
        and campaign.status in RETRYING_CAMPAIGN_STATUSES
    ):
        values["status"] = "queued"
        values["next_attempt_at"] = now + int(campaign.retry_delay) * 60_000
    result = conn.execute(
        update(campaign_members)
        .where(
            m.campaign_id == campaign_id,
            m.member_id == member_id,
            m.status == "dialing",
            m.last_call_id == call_id,
        )
        .values(**values)
    )
    return str(values["status"]) if result.rowcount == 1 else None


@dataclass(frozen=True)
class Expired:
    campaign_id: str
    member_id: str
    call_id: str | None
    call_pk: int | None
    call_status: str | None


def expired_leases(conn: Connection, now: int, limit: int = 500) -> list[Expired]:
    """Members left ``dialing`` by a dialer that stopped renewing their lease, with their call."""
    started = select(campaigns.c.id).where(campaigns.c.status.not_in(("draft", "scheduled")))
    stmt = (
        select(m.campaign_id, m.member_id, m.last_call_id, calls.c.pk, calls.c.status)
        .select_from(campaign_members.outerjoin(calls, calls.c.call_id == m.last_call_id))
        .where(m.campaign_id.in_(started), m.status == "dialing", m.lease_until < now)
        .limit(limit)
    )
    return [Expired(r[0], r[1], r[2], r[3], r[4]) for r in conn.execute(stmt).all()]


def requeue_unplaced(conn: Connection, expired: Expired, now: int) -> bool:
    """A claim whose call row never got written (no dial happened): back to the queue, attempt undone."""
    result = conn.execute(
        update(campaign_members)
        .where(
            m.campaign_id == expired.campaign_id,
            m.member_id == expired.member_id,
            m.status == "dialing",
            m.last_call_id.is_(None) if expired.call_id is None else m.last_call_id == expired.call_id,
            m.lease_until < now,
        )
        .values(status="queued", lease_until=None, attempts=m.attempts - 1, updated_at=now)
    )
    return result.rowcount == 1
