"""Campaigns: an agent calling an audience from the organization's numbers.

Lifecycle (``campaigns.status``)::

    draft ──start──▶ running ◀──start (resume)── paused
      │                │  ╰──pause──────────────▶ ▲
    scheduled ──start / start_due──▶ running       │
                       ├──stop──▶ completed   (queued members cancelled)
                       ╰── last member done ──▶ completed   (complete_if_done, called by the dialer)
    any state but deleted ──delete──▶ deleted   (queued members cancelled; the row stays for history)

Starting copies the audience into ``campaign_members`` (status ``queued``, due now) in the same
transaction that sets ``running``, so the dialer never sees a running campaign without its work
list; resuming adds only members that joined the audience since, and keeps every existing row.
Calls already being dialled when a campaign is paused, stopped or deleted finish normally.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    String,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
)

from dispo.ids import new_object_id
from dispo.store.filters import contains
from dispo.store.tables import (
    agents,
    audience_members,
    audiences,
    campaign_events,
    campaign_members,
    campaigns,
)
from dispo.store.webhooks import emit_for_campaign
from dispo.timeutil import now_ms
from dispo.types import Row

STATUSES = ("draft", "scheduled", "processing", "running", "paused", "completed", "failed", "deleted")
STARTABLE = ("draft", "scheduled", "paused")
PAUSABLE = ("running", "scheduled")
STOPPABLE = ("running", "paused", "scheduled")
# Members still to be called, or being called now: a campaign with none of these is done.
OPEN_MEMBER_STATUSES = ("queued", "dialing")


def _event(conn: Connection, campaign_id: str, event: str, at: int) -> None:
    conn.execute(campaign_events.insert().values(campaign_id=campaign_id, event=event, created_at=at))


def create_campaign(conn: Connection, org_id: str, values: dict[str, Any]) -> str:
    """A new campaign (``draft``, or ``scheduled`` when ``scheduled_at`` is set)."""
    campaign_id = new_object_id()
    now = now_ms()
    status = "scheduled" if values.get("scheduled_at") is not None else "draft"
    conn.execute(
        campaigns.insert().values(
            id=campaign_id, org_id=org_id, status=status, created_at=now, updated_at=now, **values
        )
    )
    _event(conn, campaign_id, "created", now)
    if status == "scheduled":
        _event(conn, campaign_id, "scheduled", now)
    return campaign_id


def _with_names() -> Any:
    c, a, au = campaigns.c, agents.c, audiences.c
    return (
        select(campaigns, a.name.label("agent_name"), au.name.label("audience_name"))
        .outerjoin(agents, a.id == c.agent_id)
        .outerjoin(audiences, au.id == c.audience_id)
    )


def get_campaign(conn: Connection, org_id: str, campaign_id: str) -> Row | None:
    """The campaign (deleted ones too), with ``agent_name`` and ``audience_name``."""
    c = campaigns.c
    stmt = _with_names().where(c.id == campaign_id, c.org_id == org_id)
    return conn.execute(stmt).mappings().first()


def list_campaigns(
    conn: Connection,
    org_id: str,
    *,
    limit: int,
    offset: int,
    statuses: tuple[str, ...] = (),
    search: str | None = None,
) -> tuple[list[Row], int]:
    """A page of campaigns, newest first, and the total. Deleted ones only when asked for by status."""
    c = campaigns.c
    where: list[Any] = [c.org_id == org_id]
    where.append(c.status.in_(statuses) if statuses else c.status != "deleted")
    if search:
        term = search.lower()
        where.append(or_(contains(func.lower(c.name), term), contains(func.lower(c.description), term)))
    total = int(conn.execute(select(func.count()).select_from(campaigns).where(*where)).scalar_one())
    stmt = _with_names().where(*where).order_by(c.created_at.desc(), c.id.desc()).limit(limit).offset(offset)
    return list(conn.execute(stmt).mappings()), total


def events(conn: Connection, campaign_id: str) -> list[Row]:
    e = campaign_events.c
    stmt = select(e.event, e.created_at).where(e.campaign_id == campaign_id).order_by(e.id)
    return list(conn.execute(stmt).mappings())


def metrics(conn: Connection, campaign: Row) -> dict[str, int]:
    """``{total_participants, contacts_called, contacts_connected}`` from ``campaign_members``.

    Before the first start there are no member rows: the participants are the audience's members.
    """
    m = campaign_members.c
    stmt = select(
        func.count(),
        func.coalesce(func.sum(case((m.attempts > 0, 1), else_=0)), 0),
        func.coalesce(func.sum(case((m.status == "completed", 1), else_=0)), 0),
    ).where(m.campaign_id == campaign["id"])
    total, called, connected = conn.execute(stmt).one()
    if campaign["started_at"] is None and campaign["status"] != "deleted":
        am = audience_members.c
        total = conn.execute(
            select(func.count()).where(am.audience_id == campaign["audience_id"])
        ).scalar_one()
    return {
        "total_participants": int(total),
        "contacts_called": int(called),
        "contacts_connected": int(connected),
    }


def _set_status(conn: Connection, campaign_id: str, from_statuses: tuple[str, ...], **values: Any) -> bool:
    """Move the campaign to ``values`` if its status is one of ``from_statuses`` (checked in the
    UPDATE itself, so two concurrent requests cannot both succeed)."""
    c = campaigns.c
    result = conn.execute(
        campaigns.update().where(c.id == campaign_id, c.status.in_(from_statuses)).values(**values)
    )
    return result.rowcount == 1


def start(conn: Connection, campaign: Row) -> bool:
    """Set the campaign running and queue every audience member it has no row for yet.

    Returns False (and changes nothing) if the campaign was no longer startable.
    """
    now = now_ms()
    campaign_id = campaign["id"]
    values: dict[str, Any] = {"status": "running", "updated_at": now}
    if campaign["started_at"] is None:
        values["started_at"] = now
    if not _set_status(conn, campaign_id, STARTABLE, **values):
        return False
    am, m = audience_members.c, campaign_members.c
    already = exists().where(m.campaign_id == campaign_id, m.member_id == am.id)
    rows = select(
        literal(campaign_id, String(24)),
        am.id,
        am.phone_number,
        literal("queued", String(16)),
        literal(0, Integer),
        literal(now, BigInteger),
        literal(now, BigInteger),
    ).where(am.audience_id == campaign["audience_id"], ~already)
    conn.execute(
        campaign_members.insert().from_select(
            [
                "campaign_id",
                "member_id",
                "phone_number",
                "status",
                "attempts",
                "next_attempt_at",
                "updated_at",
            ],
            rows,
        )
    )
    _event(conn, campaign_id, "resumed" if campaign["status"] == "paused" else "started", now)
    complete_if_done(conn, campaign_id)  # resuming a campaign whose last call ended while paused
    return True


def start_due(conn: Connection, now: int | None = None) -> list[str]:
    """Start every scheduled campaign whose ``scheduledAt`` has come; returns their ids.

    For the dialer's loop: a campaign created with ``scheduledAt`` waits in ``scheduled`` until then.
    """
    c = campaigns.c
    due = conn.execute(
        select(campaigns).where(
            c.status == "scheduled", c.scheduled_at <= (now if now is not None else now_ms())
        )
    ).mappings()
    return [row["id"] for row in list(due) if start(conn, row)]


def pause(conn: Connection, campaign_id: str) -> bool:
    now = now_ms()
    if not _set_status(conn, campaign_id, PAUSABLE, status="paused", updated_at=now):
        return False
    _event(conn, campaign_id, "paused", now)
    return True


def _cancel_queued(conn: Connection, campaign_id: str, now: int) -> int:
    m = campaign_members.c
    result = conn.execute(
        campaign_members.update()
        .where(m.campaign_id == campaign_id, m.status == "queued")
        .values(status="cancelled", updated_at=now)
    )
    return int(result.rowcount)


def stop(conn: Connection, campaign_id: str) -> bool:
    """Stop for good: queued members are cancelled and the campaign is ``completed``."""
    now = now_ms()
    if not _set_status(conn, campaign_id, STOPPABLE, status="completed", completed_at=now, updated_at=now):
        return False
    _cancel_queued(conn, campaign_id, now)
    _event(conn, campaign_id, "stopped", now)
    emit_for_campaign(conn, campaign_id, "campaign-completed")
    return True


def delete(conn: Connection, campaign_id: str) -> bool:
    """Mark the campaign deleted (queued members cancelled); its calls and history stay."""
    now = now_ms()
    others = tuple(s for s in STATUSES if s != "deleted")
    if not _set_status(conn, campaign_id, others, status="deleted", updated_at=now):
        return False
    _cancel_queued(conn, campaign_id, now)
    _event(conn, campaign_id, "deleted", now)
    return True


def complete_if_done(conn: Connection, campaign_id: str) -> bool:
    """Mark a running campaign ``completed`` when no member is queued or being dialled.

    For the dialer, after it settles a member's call. Returns True if this call completed it; safe
    to call any time and from several processes (the check is part of the UPDATE).
    """
    c, m = campaigns.c, campaign_members.c
    now = now_ms()
    still_open = exists().where(m.campaign_id == campaign_id, m.status.in_(OPEN_MEMBER_STATUSES))
    result = conn.execute(
        campaigns.update()
        .where(and_(c.id == campaign_id, c.status == "running", ~still_open))
        .values(status="completed", completed_at=now, updated_at=now)
    )
    if result.rowcount != 1:
        return False
    _event(conn, campaign_id, "completed", now)
    emit_for_campaign(conn, campaign_id, "campaign-completed")  # the webhooks' outbox, same transaction
    return True
