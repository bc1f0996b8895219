"""First start: make sure an organization and an API key exist, so a new user can call the API."""

from __future__ import annotations

from dataclasses import dataclass

from dispo.config import Settings
from dispo.store import orgs
from dispo.store.database import Database
from dispo.store.migrate import migrate


@dataclass(frozen=True)
class Bootstrap:
    org_id: str
    new_key: str | None  # the plaintext key, only when this start created it


def prepare(settings: Settings, db: Database) -> Bootstrap:
    """Migrate, and on an empty database create the first organization and its first key."""
    migrate(db)
    with db.write() as conn:
        existing = orgs.list_orgs(conn)
        if existing:
            return Bootstrap(org_id=existing[0]["id"], new_key=None)
        org_id = orgs.create_org(conn, settings.bootstrap_org_name)
        key = orgs.create_key(conn, org_id, name="first key")
    return Bootstrap(org_id=org_id, new_key=key.secret)
