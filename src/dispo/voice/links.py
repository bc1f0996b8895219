"""Signed, expiring links to recordings: ``/recordings/<key>?expires=<epoch s>&signature=<hmac>``.

The signature is an HMAC-SHA256 (itsdangerous's :class:`~itsdangerous.Signer`) of the key and
the expiry under ``DISPO_RECORDING_SECRET``: a link works until it expires, for anyone who has it
(an audio player cannot send an API key), and changing its key or expiry breaks the signature.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from itsdangerous import Signer

from dispo.errors import Forbidden

_SALT = "dispo.recording"


def load_secret(configured: str, data_dir: Path) -> str:
    """The configured secret, else the one kept in ``<data_dir>/recording-secret`` (created now
    when missing)."""
    if configured:
        return configured
    path = data_dir / "recording-secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(32)
        try:
            with path.open("x") as f:  # two servers starting at once: the first one's wins
                f.write(secret)
        except FileExistsError:
            return path.read_text().strip()
        return secret


class RecordingLinks:
    """Signs and checks links. ``secret`` is the key, or a function that gives it, called when a
    link is first made or checked (so that an app that never serves a recording writes nothing)."""

    def __init__(self, secret: str | Callable[[], str], lifetime_s: int) -> None:
        self._secret = secret
        self._made: Signer | None = None
        self.lifetime_s = lifetime_s

    @property
    def _signer(self) -> Signer:
        if self._made is None:
            secret = self._secret if isinstance(self._secret, str) else self._secret()
            self._made = Signer(secret, salt=_SALT, digest_method=hashlib.sha256)
        return self._made

    def query(self, key: str, *, now: float | None = None) -> str:
        """The query string of a fresh link to ``key``."""
        expires = int((now if now is not None else time.time()) + self.lifetime_s)
        signature = self._signer.get_signature(f"{key}:{expires}").decode()
        return urlencode({"expires": expires, "signature": signature})

    def url(self, base_url: str, key: str) -> str:
        return f"{base_url.rstrip('/')}/recordings/{key}?{self.query(key)}"

    def check(self, key: str, expires: str | None, signature: str | None) -> None:
        """Raise :class:`Forbidden` unless the link is genuine and has not expired."""
        if not expires or not signature or not expires.isdigit():
            raise Forbidden(
                "This recording link is incomplete (it needs expires and signature): take a fresh "
                "recordingUrl from GET /conversation/{callId}."
            )
        if not self._signer.verify_signature(f"{key}:{expires}", signature):
            raise Forbidden(
                "This recording link's signature does not match (the link was altered): take a fresh "
                "recordingUrl from GET /conversation/{callId}."
            )
        if int(expires) < time.time():
            raise Forbidden(
                "This recording link has expired: take a fresh recordingUrl from GET /conversation/{callId}."
            )
