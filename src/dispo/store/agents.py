"""Agents and their versioned post-call analytics configurations."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, or_, select

from dispo.ids import new_object_id
from dispo.store.filters import contains
from dispo.store.tables import agents, analytics_configs, campaigns
from dispo.timeutil import now_ms
from dispo.types import Row

ACTIVE_CAMPAIGN_STATUSES = ("scheduled", "processing", "running", "paused")


def create_agent(conn: Connection, org_id: str, values: Row) -> str:
    agent_id = new_object_id()
    now = now_ms()
    conn.execute(agents.insert().values(id=agent_id, org_id=org_id, created_at=now, updated_at=now, **values))
    return agent_id


def get_agent(conn: Connection, org_id: str, agent_id: str) -> Row | None:
    stmt = select(agents).where(agents.c.id == agent_id, agents.c.org_id == org_id)
    return conn.execute(stmt).mappings().first()


def agent_by_id(conn: Connection, agent_id: str) -> Row:
    """The agent a call names, whatever its organization (raises when there is none)."""
    return conn.execute(select(agents).where(agents.c.id == agent_id)).mappings().one()


def list_agents(
    conn: Connection,
    org_id: str,
    *,
    limit: int,
    offset: int,
    search: str | None = None,
    archived: bool = False,
) -> tuple[list[Row], int]:
    a = agents.c
    where = [a.org_id == org_id, a.archived_at.is_not(None) if archived else a.archived_at.is_(None)]
    if search:
        term = search.lower()
        where.append(or_(contains(func.lower(a.name), term), contains(func.lower(a.description), term)))
    total = int(conn.execute(select(func.count()).select_from(agents).where(*where)).scalar_one())
    stmt = select(agents).where(*where).order_by(a.created_at.desc(), a.id.desc()).limit(limit).offset(offset)
    return list(conn.execute(stmt).mappings()), total


def update_agent(conn: Connection, agent_id: str, values: Row) -> None:
    conn.execute(agents.update().where(agents.c.id == agent_id).values(updated_at=now_ms(), **values))


def set_archived(conn: Connection, agent_id: str, archived: bool) -> None:
    now = now_ms()
    conn.execute(
        agents.update()
        .where(agents.c.id == agent_id)
        .values(archived_at=now if archived else None, updated_at=now)
    )


def active_campaign_names(conn: Connection, agent_id: str) -> list[str]:
    c = campaigns.c
    stmt = select(c.name).where(c.agent_id == agent_id, c.status.in_(ACTIVE_CAMPAIGN_STATUSES))
    return [str(name) for name in conn.execute(stmt).scalars()]


def latest_analytics_config(conn: Connection, agent_id: str) -> Row | None:
    c = analytics_configs.c
    stmt = select(analytics_configs).where(c.agent_id == agent_id).order_by(c.version.desc()).limit(1)
    return conn.execute(stmt).mappings().first()


def analytics_config_versions(conn: Connection, agent_id: str) -> list[Row]:
    c = analytics_configs.c
    stmt = select(analytics_configs).where(c.agent_id == agent_id).order_by(c.version.desc())
    return list(conn.execute(stmt).mappings())


def add_analytics_config(
    conn: Connection,
    org_id: str,
    agent_id: str,
    *,
    summary_prompt: str | None,
    disposition_metrics: list[dict[str, Any]],
) -> Row:
    """Store a new version of the agent's config. Versions count up from 1 and are never edited."""
    c = analytics_configs.c
    current = conn.execute(select(func.max(c.version)).where(c.agent_id == agent_id)).scalar_one()
    version = (current or 0) + 1
    conn.execute(
        analytics_configs.insert().values(
            org_id=org_id,
            agent_id=agent_id,
            version=version,
            summary_prompt=summary_prompt,
            disposition_metrics=disposition_metrics,
            created_at=now_ms(),
        )
    )
    row = latest_analytics_config(conn, agent_id)
    assert row is not None
    return row
