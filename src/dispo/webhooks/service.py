"""The process's webhook deliveries: :class:`Webhooks` relays due outbox rows to the job queue,
runs the attempts the queue hands its workers, and sweeps rows whose job was lost.

- **relay** (:meth:`Webhooks.relay`): pending deliveries that are due are marked ``queued`` and put
  on the queue. ``dispo serve`` runs it every ``DISPO_WEBHOOK_POLL_SECONDS`` in a thread; Huey's
  periodic sweep (every minute, in any worker) runs it too.
- **attempts** (:meth:`Webhooks.run_job`): one POST per job (:func:`dispo.webhooks.delivery.attempt`);
  a failed attempt writes the next due time into the row, and the relay queues it when it is due.
- **sweep**: deliveries queued or in flight for longer than ``DISPO_WEBHOOK_LEASE_SECONDS`` (a
  worker killed, a queue wiped) go back to pending and are relayed again.

The queue is a second Huey queue next to the analytics one (same ``DISPO_QUEUE_URL``, name
``<queue>-webhooks``), through the same :class:`~dispo.analytics.queue.JobQueue` protocol, so
``MemoryQueue`` serves unit tests. The schedule lives in the database, not in the queue: a
delivery survives a SIGKILL of every process and the loss of the queue.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Sequence

import httpx

from dispo import timeutil
from dispo.analytics.queue import PRIORITY_NEW, HueyQueue, JobQueue
from dispo.config import Settings
from dispo.store import webhook_deliveries as store
from dispo.store.database import Database
from dispo.webhooks import delivery

__all__ = ["Webhooks", "queue_name"]

log = logging.getLogger("dispo.webhooks")

BATCH = 500  # deliveries the relay queues per run; the next run takes the rest


def queue_name(settings: Settings) -> str:
    """The webhook queue's name: the analytics queue's (``?queue=`` or ``dispo``) + ``-webhooks``."""
    from dispo.analytics.queue import DEFAULT_QUEUE_NAME, _split_queue_name

    base = _split_queue_name(settings.queue_url.strip())[1] if settings.queue_url.strip() else None
    return f"{base or DEFAULT_QUEUE_NAME}-webhooks"


class Webhooks:
    """Relay, attempts and sweep of webhook deliveries over a queue (default: the settings' Huey)."""

    def __init__(
        self,
        settings: Settings,
        db: Database | None = None,
        *,
        queue: JobQueue | None = None,
        client: httpx.Client | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.queue: JobQueue = queue or HueyQueue(settings, name=queue_name(settings), task="deliver_webhook")
        self.queue.bind(self)
        self._db = db
        self._client = client
        self._rng = rng
        self._lock = threading.Lock()  # guards opening the database and the HTTP client
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._workers = 0

    @property
    def db(self) -> Database:
        with self._lock:
            if self._db is None:
                self._db = Database(self.settings.effective_database_url, pool_size=2)
            return self._db

    @property
    def client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.settings.webhook_timeout_seconds),
                    follow_redirects=False,  # a signed POST is not re-sent elsewhere
                )
            return self._client

    # -- the queue's handler (JobHandler) --------------------------------------------------

    def run_job(self, call_pk: int) -> float | None:
        """One attempt at delivery ``call_pk`` (the queue's jobs carry delivery pks). Never asks
        the queue for a retry: the next due time is in the row, and the relay queues it."""
        delivery.attempt(self.db, self.settings, call_pk, self.client, self._rng)
        return None

    def sweep(self) -> int:
        """Release deliveries whose lease ran out, then relay the due ones; returns how many were queued."""
        now = timeutil.now_ms()
        lease_ms = int(self.settings.webhook_lease_seconds * 1000)
        with self.db.read() as conn:  # a read first: most sweeps find nothing, and write nothing
            lost = store.expired(conn, now - lease_ms, BATCH)
        if lost:
            with self.db.write() as conn:
                released = sum(store.release(conn, pk, status, at, now) for pk, status, at in lost)
            log.warning("Webhooks: %d delivery(ies) lost by a worker or the queue, queued again.", released)
        return self.relay()

    def relay(self) -> int:
        """Queue the pending deliveries that are due; returns how many."""
        now = timeutil.now_ms()
        with self.db.read() as conn:
            due = store.due(conn, now, BATCH)
        if not due:
            return 0
        with self.db.write() as conn:
            taken = [pk for pk, at in due if store.mark_queued(conn, pk, at, now)]
        return self._put(taken)

    def _put(self, pks: Sequence[int]) -> int:
        if not pks:
            return 0
        try:
            return self.queue.put(pks, PRIORITY_NEW)
        except Exception as exc:  # the rows are queued in the database: the lease sweep frees them
            log.warning(
                "Could not queue %d webhook delivery(ies) (%s); retrying after the lease.", len(pks), exc
            )
            return 0

    # -- in this process ----------------------------------------------------------------------

    def start(self, workers: int, *, relay: bool = True) -> None:
        """Work the queue with ``workers`` threads (0: none) and, with ``relay``, relay and sweep
        every ``DISPO_WEBHOOK_POLL_SECONDS`` in a thread (the first run at once: what an earlier
        process left behind is delivered after a restart)."""
        self._workers = workers
        if workers:
            self.queue.start(workers)
        if relay:
            self._stop.clear()
            self._thread = threading.Thread(target=self._relay_loop, name="dispo-webhook-relay", daemon=True)
            self._thread.start()

    def _relay_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sweep()
            except Exception:
                log.exception("The webhook relay failed; it runs again in a moment.")
            self._stop.wait(self.settings.webhook_poll_seconds)

    def stop(self) -> None:
        """Stop the relay and the worker threads (a delivery cut short is swept after its lease)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._workers:
            self.queue.stop()
            self._workers = 0
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
