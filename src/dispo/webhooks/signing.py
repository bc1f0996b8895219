"""Signing webhook deliveries, and checking a signature on the receiving side.

Each delivery carries ``X-Dispo-Timestamp`` (Unix seconds) and ``X-Signature``: the hex
HMAC-SHA256, keyed by the webhook's secret, of ``f"{timestamp}.{body}"`` (the raw body bytes).
Signing the timestamp with the body lets a receiver refuse an old delivery replayed by someone who
captured it (:func:`verify`'s ``tolerance_seconds``). ``X-Signature-Body`` is Atoms' signature, the
HMAC of the body alone, for receivers written for Atoms. During a secret rotation's grace period
``X-Signature-Previous`` (and ``X-Signature-Body-Previous``) carry the same made with the old secret.

The standard library's :mod:`hmac` does the cryptography; this module only fixes what is signed.
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["body_signature", "sign", "verify"]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Signature`` of ``body`` sent at ``timestamp`` (the ``X-Dispo-Timestamp`` value)."""
    message = timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def body_signature(secret: str, body: bytes) -> str:
    """Atoms' signature: the hex HMAC-SHA256 of the body alone (``X-Signature-Body``)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    tolerance_seconds: float = 300.0,
    now: float | None = None,
) -> bool:
    """Whether ``signature`` (``X-Signature``) is the secret's signature of ``body`` at
    ``timestamp`` (``X-Dispo-Timestamp``), and the timestamp within ``tolerance_seconds`` of now.

    ``body`` must be the raw bytes received, before any JSON parsing. Compares in constant time.
    """
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature.strip().lower())
