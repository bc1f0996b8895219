"""Audiences (contact lists) and their members.

Deleting an audience removes its members and marks the audience deleted: campaigns that called it
keep their reference (and show its name), but it is gone from every list and lookup.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, String, cast, func, or_, select

from dispo.ids import new_object_id
from dispo.store.filters import contains
from dispo.store.tables import audience_members, audiences, campaigns
from dispo.timeutil import now_ms
from dispo.types import Row

# A campaign in any other status holds on to its audience: DELETE /audience is refused.
RELEASING_CAMPAIGN_STATUSES = ("completed", "deleted")
_CHUNK = 500  # rows per INSERT and ids per IN (…): well inside both databases' parameter limits


def create_audience(
    conn: Connection,
    org_id: str,
    *,
    name: str,
    description: str,
    phone_number_column_name: str,
    members: Sequence[tuple[str, dict[str, Any]]],
) -> str:
    """A new audience with ``members`` (``(e164, data)`` pairs, numbers already unique)."""
    audience_id = new_object_id()
    now = now_ms()
    conn.execute(
        audiences.insert().values(
            id=audience_id,
            org_id=org_id,
            name=name,
            description=description,
            phone_number_column_name=phone_number_column_name,
            created_at=now,
            updated_at=now,
        )
    )
    _insert_members(conn, audience_id, members, now)
    return audience_id


def _insert_members(
    conn: Connection, audience_id: str, members: Sequence[tuple[str, dict[str, Any]]], now: int
) -> None:
    # One timestamp and random part per batch and a counting suffix, as a MongoDB process numbers
    # its ObjectIds: ordered by (created_at, id), members list in the order they were given.
    prefix = new_object_id(now)[:18]
    rows = [
        {
            "id": f"{prefix}{i:06x}",
            "audience_id": audience_id,
            "phone_number": phone,
            "data": data,
            "created_at": now,
        }
        for i, (phone, data) in enumerate(members)
    ]
    for start in range(0, len(rows), _CHUNK):
        conn.execute(audience_members.insert(), rows[start : start + _CHUNK])


def get_audience(conn: Connection, org_id: str, audience_id: str) -> Row | None:
    a = audiences.c
    stmt = select(audiences).where(a.id == audience_id, a.org_id == org_id, a.deleted_at.is_(None))
    return conn.execute(stmt).mappings().first()


def list_audiences(conn: Connection, org_id: str) -> list[Row]:
    """Every audience of the organization, newest first, with ``members_count``."""
    a, m = audiences.c, audience_members.c
    counts = select(m.audience_id, func.count().label("n")).group_by(m.audience_id).subquery("member_counts")
    stmt = (
        select(audiences, func.coalesce(counts.c.n, 0).label("members_count"))
        .outerjoin(counts, counts.c.audience_id == a.id)
        .where(a.org_id == org_id, a.deleted_at.is_(None))
        .order_by(a.created_at.desc(), a.id.desc())
    )
    return list(conn.execute(stmt).mappings())


def count_members(conn: Connection, audience_id: str) -> int:
    m = audience_members.c
    return int(conn.execute(select(func.count()).where(m.audience_id == audience_id)).scalar_one())


def list_members(
    conn: Connection, audience_id: str, *, limit: int, offset: int, search: str | None = None
) -> tuple[list[Row], int]:
    """One page of members in the order they were added, and how many match in all.

    ``search`` matches a phone-number prefix or any text in the member's data, ignoring case.
    """
    m = audience_members.c
    where: list[Any] = [m.audience_id == audience_id]
    if search:
        term = search.strip().lower()
        digits = "".join(ch for ch in term if ch.isdigit())
        matches = [contains(func.lower(cast(m.data, String)), term)]
        if digits and all(ch.isdigit() or ch in "+-() ." for ch in term):
            matches.append(m.phone_number.like(f"+{digits}%"))
        where.append(or_(*matches))
    total = int(conn.execute(select(func.count()).select_from(audience_members).where(*where)).scalar_one())
    stmt = select(audience_members).where(*where).order_by(m.created_at, m.id).limit(limit).offset(offset)
    return list(conn.execute(stmt).mappings()), total


def existing_numbers(conn: Connection, audience_id: str, numbers: Iterable[str]) -> set[str]:
    m = audience_members.c
    wanted = list(numbers)
    found: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        stmt = select(m.phone_number).where(
            m.audience_id == audience_id, m.phone_number.in_(wanted[start : start + _CHUNK])
        )
        found.update(conn.execute(stmt).scalars())
    return found


def add_members(conn: Connection, audience_id: str, members: Sequence[tuple[str, dict[str, Any]]]) -> int:
    """Add the members whose number the audience lacks (first of repeats wins); returns how many."""
    present = existing_numbers(conn, audience_id, (phone for phone, _ in members))
    fresh: list[tuple[str, dict[str, Any]]] = []
    for phone, data in members:
        if phone not in present:
            present.add(phone)
            fresh.append((phone, data))
    now = now_ms()
    _insert_members(conn, audience_id, fresh, now)
    if fresh:
        conn.execute(audiences.update().where(audiences.c.id == audience_id).values(updated_at=now))
    return len(fresh)


def delete_members(conn: Connection, audience_id: str, member_ids: Sequence[str]) -> int:
    """Delete the audience's members among ``member_ids``; returns how many went."""
    m = audience_members.c
    deleted = 0
    for start in range(0, len(member_ids), _CHUNK):
        chunk = list(member_ids[start : start + _CHUNK])
        result = conn.execute(audience_members.delete().where(m.audience_id == audience_id, m.id.in_(chunk)))
        deleted += result.rowcount
    if deleted:
        conn.execute(audiences.update().where(audiences.c.id == audience_id).values(updated_at=now_ms()))
    return deleted


def campaigns_holding(conn: Connection, audience_id: str) -> list[Row]:
    """Campaigns that keep the audience from being deleted: ``[{id, name, status}]``."""
    c = campaigns.c
    stmt = (
        select(c.id, c.name, c.status)
        .where(c.audience_id == audience_id, c.status.not_in(RELEASING_CAMPAIGN_STATUSES))
        .order_by(c.created_at)
    )
    return list(conn.execute(stmt).mappings())


def delete_audience(conn: Connection, audience_id: str) -> None:
    """Remove the members and mark the audience deleted (finished campaigns still refer to it)."""
    conn.execute(audience_members.delete().where(audience_members.c.audience_id == audience_id))
    now = now_ms()
    conn.execute(
        audiences.update().where(audiences.c.id == audience_id).values(deleted_at=now, updated_at=now)
    )
