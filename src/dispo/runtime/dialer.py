"""The dialer: running campaigns call their members, ``concurrency`` calls at a time.

One thread polls every ``dialer_poll_seconds``:

1. starts scheduled campaigns that are due (``campaigns.start_due``);
2. every ``dialer_lease_seconds / 3``, renews the leases of the members it is calling, and
   reconciles expired leases (members a dead dialer left ``dialing``, see ``store/members.py``);
3. claims due members of running campaigns, round-robin, up to its free slots, and hands each
   to the :class:`~dispo.runtime.runner.CallRunner`. The member's call row is inserted in the claim's
   transaction; the call's end settles the member (retry after ``retryDelay`` minutes while
   ``attempts <= maxRetries`` for no_answer, busy and failed) and completes the campaign when
   nobody is left (``campaigns.complete_if_done``).

Pausing or stopping a campaign stops new claims at once; calls already ringing finish normally.
Stopping the dialer (server shutdown) waits for calls in progress; if the process dies instead,
their leases expire and the next dialer reconciles them, so a restart neither skips a member nor
calls one twice. Several servers may run dialers on one PostgreSQL database: claims skip rows
another dialer holds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from sqlalchemy import Connection

from dispo.calls import TERMINAL_STATUSES, CallEnding
from dispo.config import Settings
from dispo.runtime.runner import CallRunner, PlannedCall, new_call_values
from dispo.store import calls as call_store
from dispo.store import campaigns as campaign_store
from dispo.store import members
from dispo.store import phone_numbers as phone_store
from dispo.store.database import Database
from dispo.timeutil import now_ms
from dispo.types import Row

log = logging.getLogger("dispo.runtime.dialer")

LOST_CALL = (
    "Dispo stopped while this call was in progress (server restart); the member is not called again "
    "automatically, to avoid calling twice."
)


@dataclass(frozen=True)
class InFlight:
    campaign_id: str
    member_id: str
    call_id: str


class Dialer:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        runner: CallRunner | None = None,
        *,
        concurrency: int | None = None,
        poll_seconds: float | None = None,
        lease_seconds: float | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.db = db
        self.settings = settings
        self.runner = runner or CallRunner(db, settings)
        self.concurrency = concurrency or settings.dialer_concurrency
        self.poll_seconds = poll_seconds if poll_seconds is not None else settings.dialer_poll_seconds
        self.lease_ms = int((lease_seconds or settings.dialer_lease_seconds) * 1000)
        self.clock = clock
        self._inflight: dict[Future[str], InFlight] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_maintenance = 0.0
        self._rotation = 0
        self.placed = 0  # calls this dialer started (for tests and the bench)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="dispo-dialer", daemon=True)
        self._thread.start()

    def stop(self, *, wait: bool = True, timeout: float = 60.0) -> None:
        """Stop claiming; with ``wait``, let calls in progress finish (up to ``timeout`` seconds)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if wait:
            deadline = time.monotonic() + timeout
            while self.in_flight and time.monotonic() < deadline:
                time.sleep(0.01)

    def wake(self) -> None:
        """Look for work now (a campaign just started) instead of at the next poll."""
        self._wake.set()

    @property
    def in_flight(self) -> int:
        with self._lock:
            return sum(1 for f in self._inflight if not f.done())

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("Dialer pass failed; retrying in %.1f s", self.poll_seconds)
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    # ------------------------------------------------------------------ one pass

    def run_once(self) -> int:
        """One pass: maintenance when due, then claim and start calls; returns calls started."""
        if time.monotonic() - self._last_maintenance >= self.lease_ms / 3000:
            self._last_maintenance = time.monotonic()
            self.maintain()
        return self.dial_due()

    def maintain(self) -> None:
        now = self.clock()
        with self.db.write() as conn:
            campaign_store.start_due(conn, now)
        self.renew_leases()
        self.reconcile()

    def renew_leases(self) -> None:
        with self._lock:
            leases = [
                (i.campaign_id, i.member_id, i.call_id) for f, i in self._inflight.items() if not f.done()
            ]
        if leases:
            with self.db.write() as conn:
                members.renew(conn, leases, self.clock() + self.lease_ms)

    def reconcile(self) -> int:
        """Settle members whose dialer died (lease expired); returns how many were settled."""
        now = self.clock()
        with self.db.read() as conn:
            expired = members.expired_leases(conn, now)
        done = 0
        for e in expired:
            settled, marked = self._reconcile_one(e, now)
            done += settled
            if marked and e.call_pk is not None:
                self.runner.jobs.enqueue(e.call_pk)
        if done:
            log.warning("Reconciled %d campaign member(s) left dialing by a dialer that stopped.", done)
        return done

    def _reconcile_one(self, e: members.Expired, now: int) -> tuple[bool, bool]:
        """Settle one member from its call row: ``(settled, analytics marked)``."""
        with self.db.write() as conn:
            if e.call_pk is None:
                return members.requeue_unplaced(conn, e, now), False
            assert e.call_id is not None
            status, retry, marked = str(e.call_status), True, False
            if e.call_status not in TERMINAL_STATUSES:
                # In progress when its dialer died: recorded failed, and the member is not called
                # again (unless the call ended meanwhile: then its row decides, as below).
                ended = call_store.end_call(conn, e.call_pk, CallEnding.system_error(LOST_CALL, now))
                status, retry, marked = ended.status, not ended.changed, ended.marked
            settled = members.settle(
                conn, e.campaign_id, e.member_id, e.call_id, status, now=now, retry=retry
            )
            if settled is not None:
                campaign_store.complete_if_done(conn, e.campaign_id)
            return settled is not None, marked

    def dial_due(self) -> int:
        free = self.concurrency - self.in_flight
        if free <= 0 or self._stop.is_set():
            return 0
        with self.db.read() as conn:
            running = members.running_campaigns(conn)
        if not running:
            return 0
        # Round-robin: each pass starts with the next campaign, so one large campaign cannot starve others.
        self._rotation = (self._rotation + 1) % len(running)
        ordered = running[self._rotation :] + running[: self._rotation]
        started = 0
        for index, campaign in enumerate(ordered):
            if free <= 0 or self._stop.is_set():
                break
            share = max(1, free // (len(ordered) - index))
            planned = self._claim(campaign, share)
            for call, claimed in planned:
                self._submit(call, claimed)
            free -= len(planned)
            started += len(planned)
        return started

    def _claim(self, campaign: Row, limit: int) -> list[tuple[PlannedCall, members.Claimed]]:
        now = self.clock()
        out: list[tuple[PlannedCall, members.Claimed]] = []
        with self.db.write() as conn:
            claimed = members.claim_due(conn, campaign["id"], limit=limit, now=now, lease_ms=self.lease_ms)
            if not claimed:
                return out
            numbers = _phone_numbers(conn, campaign)
            data = members.member_data(conn, [c.member_id for c in claimed])
            for i, c in enumerate(claimed):
                number = numbers[(self.placed + i) % len(numbers)] if numbers else None
                variables = data.get(c.member_id, {})
                values = new_call_values(
                    org_id=campaign["org_id"],
                    agent_id=campaign["agent_id"],
                    to_number=c.phone_number,
                    from_number=number["phone_number"] if number else None,
                    campaign_id=campaign["id"],
                    variables=variables,
                    retry_count=c.attempts - 1,
                )
                pk = call_store.insert_call(conn, values)
                members.attach_call(conn, c, values["call_id"])
                provider = (number["provider"] if number else None) or self.settings.telephony_provider
                call = PlannedCall(
                    call_pk=pk,
                    call_id=values["call_id"],
                    agent_id=campaign["agent_id"],
                    to_number=c.phone_number,
                    from_number=values["from_number"],
                    provider=provider,
                    variables=variables,
                    attempt=c.attempts - 1,
                )
                out.append((call, c))
        return out

    def _submit(self, call: PlannedCall, claimed: members.Claimed) -> None:
        def settle(conn: Connection, status: str) -> None:
            members.settle(
                conn, claimed.campaign_id, claimed.member_id, call.call_id, status, now=self.clock()
            )
            campaign_store.complete_if_done(conn, claimed.campaign_id)

        future = self.runner.submit(call, settle)
        with self._lock:
            self._inflight[future] = InFlight(claimed.campaign_id, claimed.member_id, call.call_id)
            self.placed += 1
        future.add_done_callback(self._done)

    def _done(self, future: Future[str]) -> None:
        with self._lock:
            self._inflight.pop(future, None)
        self._wake.set()  # a slot is free: claim the next member now rather than at the next poll


def _phone_numbers(conn: Connection, campaign: Row) -> list[Row]:
    """The campaign's numbers to call from, in its order (numbers since removed are skipped)."""
    ids = list(campaign["phone_number_ids"] or [])
    by_id = phone_store.get_many(conn, campaign["org_id"], ids)
    return [by_id[i] for i in ids if i in by_id]
