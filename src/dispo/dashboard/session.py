"""The dashboard's session: a signed cookie, the organization it logged in to, and CSRF tokens.

The cookie holds ``{"kh": API key hash, "csrf": token, "flash": message}``, signed and time-stamped
with itsdangerous (the signing Flask and Starlette's own session use): the browser can read it but
not alter it. It never holds the key itself. Every request checks the key hash again (through the
API's key cache), so revoking the key logs its dashboard sessions out within a second.

CSRF: every form carries the session's token in a hidden ``csrf_token`` field and every POST is
checked against it (:func:`check_csrf`); a request without the right token gets a 403 that says
to reload the page. The login form has a token too: the first page visit starts an anonymous
session that carries one.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from dispo.api.auth import KeyCache
from dispo.config import Settings
from dispo.errors import Forbidden
from dispo.store.database import Database
from dispo.store.orgs import org_for_key_hash

COOKIE = "dispo_session"
CSRF_FIELD = "csrf_token"
_SALT = "dispo.dashboard.session"


@dataclass
class Session:
    """What the cookie carries, plus the organization its key belongs to (looked up, not stored)."""

    csrf: str
    key_hash: str | None = None
    flash: str | None = None
    org_id: str | None = None
    changed: bool = False

    def set_flash(self, message: str) -> None:
        self.flash, self.changed = message, True

    def pop_flash(self) -> str | None:
        message, self.flash = self.flash, None
        if message is not None:
            self.changed = True
        return message


def secret_key(settings: Settings) -> str:
    """``DISPO_SESSION_SECRET``, or a random secret kept in ``<data_dir>/session-secret`` (made on
    first use, readable by its owner only): sessions survive restarts without any setting."""
    if settings.session_secret:
        return settings.session_secret
    path = Path(settings.data_dir) / "session-secret"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole to a private file, then linked into place, which fails if the name exists: two
    # servers starting together agree on the first one's secret, and none reads half a file.
    draft = path.with_name(f".session-secret.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secrets.token_urlsafe(32))
    try:
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text(encoding="utf-8").strip()


class Sessions:
    """Loads and saves sessions for one app (its settings, database and key cache)."""

    def __init__(self, settings: Settings, db: Database, cache: KeyCache) -> None:
        self.serializer = URLSafeTimedSerializer(secret_key(settings), salt=_SALT)
        self.max_age = int(settings.session_hours * 3600)
        self.db = db
        self.cache = cache

    def load(self, request: Request) -> Session:
        raw = request.cookies.get(COOKIE)
        data: dict[str, Any] | None = None
        if raw:
            try:
                loaded = self.serializer.loads(raw, max_age=self.max_age)
                data = loaded if isinstance(loaded, dict) else None
            except BadSignature:  # also SignatureExpired
                data = None
        if data is None or not isinstance(data.get("csrf"), str):
            return Session(csrf=secrets.token_urlsafe(24), changed=True)
        session = Session(csrf=data["csrf"], key_hash=data.get("kh"), flash=data.get("flash"))
        if session.key_hash:
            session.org_id = self._org_of(session.key_hash)
            if session.org_id is None:  # the key was revoked: the session ends
                session.key_hash, session.changed = None, True
        return session

    def _org_of(self, key_hash: str) -> str | None:
        org_id = self.cache.get(key_hash)
        if org_id is None:
            with self.db.read() as conn:
                org_id = org_for_key_hash(conn, key_hash)
            if org_id is not None:
                self.cache.put(key_hash, org_id)
        return org_id

    def login(self, session: Session, key_hash: str, org_id: str) -> None:
        """A new token on login, so a token seen before it (a fixed session) is worth nothing."""
        session.key_hash, session.org_id = key_hash, org_id
        session.csrf, session.changed = secrets.token_urlsafe(24), True

    def logout(self, session: Session) -> None:
        session.key_hash, session.org_id = None, None
        session.csrf, session.changed = secrets.token_urlsafe(24), True

    def save(self, request: Request, response: Response, session: Session) -> None:
        if not session.changed:
            return
        data: dict[str, Any] = {"csrf": session.csrf}
        if session.key_hash:
            data["kh"] = session.key_hash
        if session.flash:
            data["flash"] = session.flash
        response.set_cookie(
            COOKIE,
            self.serializer.dumps(data),
            max_age=self.max_age,
            path="/dashboard",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )


def check_csrf(session: Session, submitted: object) -> None:
    """Refuse a POST whose form token is missing or is not this session's (403)."""
    if not isinstance(submitted, str) or not hmac.compare_digest(submitted, session.csrf):
        raise Forbidden(
            "This form's security token is missing or out of date (CSRF protection): reload the page "
            "and submit the form again."
        )
