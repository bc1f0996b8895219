"""Test data builders shared by several test modules."""

from __future__ import annotations

from typing import Any

from dispo.store import synthetic
from dispo.store.database import Database


def seed_calls(
    db: Database, org_id: str, n: int = 120, *, days: int = 20, seed: int = 3, **kwargs: Any
) -> synthetic.Fleet:
    """Insert ``n`` synthetic calls for ``org_id`` through the store (rollup maintained per insert)."""
    with db.write() as conn:
        fleet = synthetic.create_fleet(conn, org_id, seed=seed)
        items = list(synthetic.generate(org_id, fleet, n, days=days, seed=seed, **kwargs))
        synthetic.insert_calls(conn, items)
    return fleet


def all_calls(client: Any, **params: Any) -> list[dict[str, Any]]:
    """Every call matching ``params``, fetched page by page with the API's cursor."""
    out: list[dict[str, Any]] = []
    query: dict[str, Any] = {"limit": 50, **params}
    while True:
        body = client.get("/api/v1/conversation", params=query).json()
        assert body["status"] is True, body
        out.extend(body["data"]["logs"])
        cursor = body["data"]["pagination"]["nextCursor"]
        if not cursor:
            return out
        query = {**query, "cursor": cursor}
        query.pop("page", None)
