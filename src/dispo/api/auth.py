"""Who is calling: the Bearer key to organization lookup, with a short-lived cache.

Every request needs this answer, and a database round trip for it costs as much as fetching a
call. So valid keys are remembered for ``auth_cache_seconds``: a key revoked with
``dispo keys revoke`` (another process) stops working within that time. Unknown keys are never
cached, so a new key works at once.
"""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool

from dispo.errors import Unauthorized
from dispo.store.database import Database
from dispo.store.orgs import KEY_PREFIX, hash_key, org_for_key_hash

MAX_CACHED_KEYS = 10_000


class KeyCache:
    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._entries: dict[str, tuple[str, float]] = {}

    def get(self, key_hash: str) -> str | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        org_id, expires = entry
        if time.monotonic() >= expires:
            del self._entries[key_hash]
            return None
        return org_id

    def put(self, key_hash: str, org_id: str) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= MAX_CACHED_KEYS:
            self._entries.clear()  # crude, but bounded; a full cache only costs one lookup per key
        self._entries[key_hash] = (org_id, time.monotonic() + self.ttl)


async def authenticate(header: str | None, db: Database, cache: KeyCache) -> str:
    """The organization of the request's ``Authorization: Bearer sk_…`` key, or ``Unauthorized``."""
    if not header:
        raise Unauthorized(
            "Missing API key: send 'Authorization: Bearer sk_…'. Create a key with `dispo keys create`."
        )
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise Unauthorized(
            "Authorization must be 'Bearer sk_…' (the word Bearer, a space, then the key). "
            "Create a key with `dispo keys create`."
        )
    if not secret.startswith(KEY_PREFIX):
        raise Unauthorized(
            "That is not a Dispo API key: keys start with 'sk_'. Create one with `dispo keys create`."
        )
    key_hash = hash_key(secret)
    org_id = cache.get(key_hash)
    if org_id is None:
        org_id = await run_in_threadpool(_lookup, db, key_hash)
        if org_id is None:
            raise Unauthorized(
                "Unknown or revoked API key: check the key, or create one with `dispo keys create`."
            )
        cache.put(key_hash, org_id)
    return org_id


def _lookup(db: Database, key_hash: str) -> str | None:
    with db.read() as conn:
        return org_for_key_hash(conn, key_hash)
