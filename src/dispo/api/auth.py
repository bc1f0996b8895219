"""Who is calling: the Bearer key to organization lookup, with a short-lived cache.

Every request needs this answer, and a database round trip for it costs as much as fetching a
call. So valid keys are remembered for ``auth_cache_seconds`` (at most 1 s). A key revoked in this
process (``orgs.revoke_key``) is dropped from every cache here at once, and not cached again for
a while, so that a request racing the revocation's commit cannot put it back; revoked from
another process (``dispo keys revoke`` next to a running server), it stops working within the
cache time. Unknown keys are never cached, so a new key works at once.
"""

from __future__ import annotations

import threading
import time
import weakref

from starlette.concurrency import run_in_threadpool

from dispo.errors import Unauthorized
from dispo.store.database import Database
from dispo.store.orgs import KEY_PREFIX, hash_key, on_revoke, org_for_key_hash

MAX_CACHED_KEYS = 10_000
_TOMBSTONE_SECONDS = 5.0  # how long a key revoked here is not cached again

_caches: weakref.WeakSet[KeyCache] = weakref.WeakSet()
_caches_lock = threading.Lock()


class KeyCache:
    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._entries: dict[str, tuple[str, float]] = {}
        self._revoked: dict[str, float] = {}  # key hash -> until when it may not be cached
        with _caches_lock:
            _caches.add(self)

    def forget(self, key_hash: str) -> None:
        """Drop a revoked key now, and refuse to cache it again for a while."""
        self._entries.pop(key_hash, None)
        now = time.monotonic()
        self._revoked = {h: t for h, t in self._revoked.items() if t > now}
        self._revoked[key_hash] = now + max(self.ttl, _TOMBSTONE_SECONDS)

    def get(self, key_hash: str) -> str | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        org_id, expires = entry
        if time.monotonic() >= expires:
            self._entries.pop(key_hash, None)
            return None
        return org_id

    def put(self, key_hash: str, org_id: str) -> None:
        if self.ttl <= 0:
            return
        if key_hash in self._revoked and self._revoked[key_hash] > time.monotonic():
            return  # revoked here a moment ago: this answer may predate the revocation's commit
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


def forget_revoked_key(key_hash: str) -> None:
    """Every key cache in this process drops ``key_hash`` (called by ``orgs.revoke_key``)."""
    with _caches_lock:
        caches = list(_caches)
    for cache in caches:
        cache.forget(key_hash)


on_revoke(forget_revoked_key)


def _lookup(db: Database, key_hash: str) -> str | None:
    with db.read() as conn:
        return org_for_key_hash(conn, key_hash)
