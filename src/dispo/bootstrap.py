"""First start: make sure an organization and an API key exist, so a new user can call the API."""

from __future__ import annotations

from dataclasses import dataclass

from dispo.config import Settings
from dispo.store import orgs, phone_numbers
from dispo.store.database import Database
from dispo.store.migrate import migrate


@dataclass(frozen=True)
class Bootstrap:
    org_id: str
    new_key: str | None  # the plaintext key, only when this start created it


def prepare(settings: Settings, db: Database) -> Bootstrap:
    """Migrate, and on an empty database create the first organization and its first key.

    Every start also gives every organization the configured phone numbers it lacks
    (``DISPO_PHONE_NUMBERS``); numbers already there are left as they are.
    """
    migrate(db)
    with db.write() as conn:
        existing = orgs.list_orgs(conn)
        if existing:
            boot = Bootstrap(org_id=existing[0]["id"], new_key=None)
        else:
            org_id = orgs.create_org(conn, settings.bootstrap_org_name)
            key = orgs.create_key(conn, org_id, name="first key")
            boot = Bootstrap(org_id=org_id, new_key=key.secret)
        phone_numbers.provision(conn, settings.phone_number_list)
    return boot
