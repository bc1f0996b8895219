"""Phone numbers an organization calls from (``GET /product/phone-numbers``).

Numbers come from configuration (``DISPO_PHONE_NUMBERS``, added to every organization at start-up)
and from ``dispo numbers add``; both are idempotent: a number is stored once per organization.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from dispo.ids import new_object_id
from dispo.phones import country_of
from dispo.store.tables import organizations, phone_numbers
from dispo.timeutil import now_ms
from dispo.types import Row

DEFAULT_PROVIDER = "test"


def get_by_number(conn: Connection, org_id: str, number: str) -> Row | None:
    p = phone_numbers.c
    stmt = select(phone_numbers).where(p.org_id == org_id, p.phone_number == number)
    return conn.execute(stmt).mappings().first()


def find_number(conn: Connection, number: str) -> Row | None:
    """The active number ``number`` of whichever organization holds it (an inbound call to it)."""
    p = phone_numbers.c
    stmt = select(phone_numbers).where(p.phone_number == number, p.is_active.is_(True)).order_by(p.created_at)
    return conn.execute(stmt).mappings().first()


def add_number(
    conn: Connection,
    org_id: str,
    number: str,
    *,
    provider: str = DEFAULT_PROVIDER,
    agent_id: str | None = None,
) -> tuple[Row, bool]:
    """Add an E.164 ``number`` unless the organization has it: ``(row, created)``.

    An existing number keeps its provider; ``agent_id``, when given, is assigned either way.
    """
    existing = get_by_number(conn, org_id, number)
    now = now_ms()
    if existing is None:
        conn.execute(
            phone_numbers.insert().values(
                id=new_object_id(),
                org_id=org_id,
                phone_number=number,
                country_code=country_of(number),
                provider=provider,
                agent_id=agent_id,
                is_active=True,
                created_at=now,
                updated_at=now,
            )
        )
    elif agent_id is not None and existing["agent_id"] != agent_id:
        conn.execute(
            phone_numbers.update()
            .where(phone_numbers.c.id == existing["id"])
            .values(agent_id=agent_id, updated_at=now)
        )
    row = get_by_number(conn, org_id, number)
    assert row is not None
    return row, existing is None


def provision(conn: Connection, numbers: list[str], *, provider: str = DEFAULT_PROVIDER) -> int:
    """Give every organization each of ``numbers`` it lacks; returns how many rows were added."""
    if not numbers:
        return 0
    added = 0
    for org_id in conn.execute(select(organizations.c.id)).scalars():
        for number in numbers:
            _, created = add_number(conn, str(org_id), number, provider=provider)
            added += created
    return added


def list_numbers(conn: Connection, org_id: str | None = None) -> list[Row]:
    """The organization's numbers (every organization's with ``None``), oldest first."""
    p = phone_numbers.c
    stmt = select(phone_numbers).order_by(p.created_at, p.id)
    if org_id is not None:
        stmt = stmt.where(p.org_id == org_id)
    return list(conn.execute(stmt).mappings())


def get_many(conn: Connection, org_id: str, ids: list[str]) -> dict[str, Row]:
    """The organization's numbers among ``ids``, by id."""
    if not ids:
        return {}
    p = phone_numbers.c
    stmt = select(phone_numbers).where(p.org_id == org_id, p.id.in_(ids))
    return {row["id"]: row for row in conn.execute(stmt).mappings()}


def active_ids(conn: Connection, org_id: str) -> list[str]:
    p = phone_numbers.c
    stmt = select(p.id).where(p.org_id == org_id, p.is_active.is_(True)).order_by(p.created_at, p.id)
    return [str(i) for i in conn.execute(stmt).scalars()]
