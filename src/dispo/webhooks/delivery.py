"""One attempt at a webhook delivery: claim, build or load the payload, POST it signed, record.

What a queue worker runs (:meth:`dispo.webhooks.service.Webhooks.run_job`). The delivery row is
the durable record: the attempt is claimed (``queued → running``) and its outcome recorded
(``delivered``, ``pending`` again with the next due time, or ``dead`` once the attempts are
spent) by compare-and-set updates in :mod:`dispo.store.webhook_deliveries`; the POST itself
happens outside any transaction, with httpx and a timeout.

A 2xx answer is a delivery; anything else (another status, a refused connection, a timeout, a
TLS error) is a failed attempt, logged with what was seen.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx

from dispo import timeutil
from dispo.config import Settings
from dispo.store import webhook_deliveries as store
from dispo.store.database import Database
from dispo.store.webhook_deliveries import AttemptLog, Claim
from dispo.types import Row
from dispo.webhooks import payloads, schedule, signing

__all__ = ["EXCERPT_CHARS", "attempt", "body_of", "headers_for"]

log = logging.getLogger("dispo.webhooks")

EXCERPT_CHARS = 1000  # of the endpoint's answer, kept in the delivery log
USER_AGENT = "Dispo-Webhooks/1"


def body_of(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact JSON with sorted keys, the same on every attempt."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def headers_for(delivery: Row, body: bytes, now_ms: int) -> dict[str, str]:
    """The request headers: content type, event, idempotency key, timestamp and signatures."""
    timestamp = str(now_ms // 1000)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Dispo-Event": delivery["event_type"],
        "X-Dispo-Delivery": delivery["id"],
        "Idempotency-Key": delivery["id"],
        "X-Dispo-Timestamp": timestamp,
        "X-Signature": signing.sign(delivery["secret"], timestamp, body),
        "X-Signature-Body": signing.body_signature(delivery["secret"], body),
    }
    previous, until = delivery["previous_secret"], delivery["previous_secret_until"]
    if previous and until is not None and now_ms < until:
        headers["X-Signature-Previous"] = signing.sign(previous, timestamp, body)
        headers["X-Signature-Body-Previous"] = signing.body_signature(previous, body)
    return headers


@dataclass(frozen=True)
class _Sent:
    log: AttemptLog

    @property
    def ok(self) -> bool:
        return self.log.outcome == "delivered"


def _post(client: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> _Sent:
    started = time.perf_counter()
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        latency = round((time.perf_counter() - started) * 1000, 1)
        error = f"{type(exc).__name__}: {exc}"[:EXCERPT_CHARS]
        return _Sent(AttemptLog("failed", None, latency, None, error))
    latency = round((time.perf_counter() - started) * 1000, 1)
    excerpt = response.text[:EXCERPT_CHARS]
    if response.is_success:
        return _Sent(AttemptLog("delivered", response.status_code, latency, excerpt, None))
    error = f"The endpoint answered HTTP {response.status_code}."
    return _Sent(AttemptLog("failed", response.status_code, latency, excerpt, error))


def _payload(db: Database, delivery: Row) -> dict[str, Any] | None:
    if delivery["payload"] is not None:
        return dict(delivery["payload"])
    with db.read() as conn:
        payload = payloads.build(conn, delivery)
    if payload is not None:
        with db.write() as conn:
            store.set_payload(conn, int(delivery["pk"]), payload)
    return payload


def _settle(db: Database, settings: Settings, claim_: Claim, sent: _Sent, rng: random.Random | None) -> str:
    now = timeutil.now_ms()
    if sent.ok:
        status, due = "delivered", now
    elif claim_.attempt >= settings.webhook_max_attempts:
        status, due = "dead", now
    else:
        status, due = "pending", now + int(schedule.retry_delay(settings, claim_.attempt, rng) * 1000)
    with db.write() as conn:
        if not store.record(conn, claim_, sent.log, status=status, next_attempt_at=due, now=now):
            return "discarded"
    return status


def attempt(
    db: Database, settings: Settings, pk: int, client: httpx.Client, rng: random.Random | None = None
) -> str:
    """One attempt at delivery ``pk``; returns what became of it: ``delivered``, ``pending`` (a
    retry is scheduled), ``dead``, ``skipped`` (not queued: another worker has it, or it is gone)
    or ``discarded`` (its lease ran out meanwhile and it was handed on)."""
    with db.write() as conn:
        claim_ = store.claim(conn, pk, timeutil.now_ms())
    if claim_ is None:
        return "skipped"
    with db.read() as conn:
        delivery = store.delivery_for_attempt(conn, pk)
    if delivery is None:
        return "skipped"
    payload = _payload(db, delivery)
    if payload is None:
        gone = AttemptLog("failed", None, None, None, "What the event is about was deleted: nothing to send.")
        now = timeutil.now_ms()
        with db.write() as conn:
            store.record(conn, claim_, gone, status="dead", next_attempt_at=now, now=now)
        return "dead"
    body = body_of(payload)
    sent = _post(client, delivery["endpoint"], body, headers_for(delivery, body, timeutil.now_ms()))
    outcome = _settle(db, settings, claim_, sent, rng)
    if outcome == "dead":
        log.warning(
            "Webhook delivery %s dead-lettered after %d attempts: %s",
            delivery["id"],
            claim_.attempt,
            sent.log.error,
        )
    return outcome
