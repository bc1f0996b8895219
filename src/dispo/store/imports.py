"""The queries of call imports: which external ids an organization already has, which agents exist."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select

from dispo.store.tables import agents, calls

__all__ = ["existing_agents", "existing_external_ids"]

_CHUNK = 500  # values per IN list


def existing_external_ids(conn: Connection, org_id: str, external_ids: Sequence[str]) -> dict[str, str]:
    """``{external id: call id}`` of the calls of ``org_id`` imported under any of ``external_ids``."""
    wanted = sorted(set(external_ids))
    out: dict[str, str] = {}
    c = calls.c
    for start in range(0, len(wanted), _CHUNK):
        stmt = select(c.external_id, c.call_id).where(
            c.org_id == org_id, c.external_id.in_(wanted[start : start + _CHUNK])
        )
        out.update((str(e), str(cid)) for e, cid in conn.execute(stmt))
    return out


def existing_agents(conn: Connection, org_id: str, agent_ids: Sequence[str]) -> set[str]:
    """Those of ``agent_ids`` that are agents of ``org_id``."""
    wanted = sorted(set(agent_ids))
    if not wanted:
        return set()
    stmt = select(agents.c.id).where(agents.c.org_id == org_id, agents.c.id.in_(wanted))
    return {str(a) for (a,) in conn.execute(stmt)}
