"""Organizations and their API keys.

A key is ``sk_`` plus 43 URL-safe characters (256 random bits). Only its SHA-256 is stored; the
plaintext is shown once, when it is created.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select

from dispo.errors import NotFound
from dispo.ids import new_object_id
from dispo.store.tables import api_keys, organizations
from dispo.timeutil import now_ms
from dispo.types import Row

KEY_PREFIX = "sk_"

_revoke_listeners: list[Callable[[str], None]] = []


def on_revoke(listener: Callable[[str], None]) -> None:
    """Call ``listener(key_hash)`` whenever this process revokes a key (the API's key caches)."""
    _revoke_listeners.append(listener)


@dataclass(frozen=True)
class NewKey:
    id: str
    org_id: str
    name: str
    secret: str  # the plaintext: shown once, never stored


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_org(conn: Connection, name: str) -> str:
    org_id = new_object_id()
    conn.execute(organizations.insert().values(id=org_id, name=name, created_at=now_ms()))
    return org_id


def get_org(conn: Connection, org_id: str) -> Row | None:
    return conn.execute(select(organizations).where(organizations.c.id == org_id)).mappings().first()


def list_orgs(conn: Connection) -> list[Row]:
    return list(conn.execute(select(organizations).order_by(organizations.c.created_at)).mappings())


def create_key(conn: Connection, org_id: str, name: str = "default") -> NewKey:
    if get_org(conn, org_id) is None:
        raise NotFound(f"No organization {org_id}: list them with `dispo orgs list`.")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = new_object_id()
    conn.execute(
        api_keys.insert().values(
            id=key_id,
            org_id=org_id,
            name=name,
            prefix=secret[:10],
            key_hash=hash_key(secret),
            created_at=now_ms(),
        )
    )
    return NewKey(id=key_id, org_id=org_id, name=name, secret=secret)


def list_keys(conn: Connection, org_id: str | None = None) -> list[Row]:
    stmt = select(api_keys).order_by(api_keys.c.created_at)
    if org_id is not None:
        stmt = stmt.where(api_keys.c.org_id == org_id)
    return list(conn.execute(stmt).mappings())


def revoke_key(conn: Connection, key_id_or_prefix: str) -> Row:
    """Revoke a key by its id or the prefix `dispo keys list` shows."""
    k = api_keys.c
    rows = list(
        conn.execute(
            select(api_keys).where((k.id == key_id_or_prefix) | (k.prefix == key_id_or_prefix))
        ).mappings()
    )
    if not rows:
        raise NotFound(f"No API key {key_id_or_prefix!r}: `dispo keys list` shows ids and prefixes.")
    if len(rows) > 1:
        raise NotFound(f"{key_id_or_prefix!r} matches {len(rows)} keys: revoke by id instead.")
    conn.execute(api_keys.update().where(k.id == rows[0]["id"]).values(revoked_at=now_ms()))
    for listener in _revoke_listeners:
        listener(rows[0]["key_hash"])
    return rows[0]


_ORG_FOR_KEY = select(api_keys.c.org_id).where(
    api_keys.c.key_hash == bindparam("key_hash"), api_keys.c.revoked_at.is_(None)
)


def org_for_key_hash(conn: Connection, key_hash: str) -> str | None:
    """The organization of a live key (by ``hash_key`` of it), or None if unknown or revoked."""
    row = conn.execute(_ORG_FOR_KEY, {"key_hash": key_hash}).first()
    return None if row is None else str(row[0])
