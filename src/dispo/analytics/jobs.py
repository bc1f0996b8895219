"""Post-call analytics jobs: :class:`Jobs` (enqueueing, the attempts, the sweeper) over a queue.

The durable record of a job is the call row itself (a transactional outbox): a call that ends
gets ``analytics_status="pending"`` in the same transaction, and the queue only carries the call's
pk to a worker. Code that ends calls (the dialer, telephony webhooks, imports) does either

- :func:`dispo.store.calls.end_call` (which marks the job with
  :func:`dispo.store.analytics_jobs.mark_pending`) in the transaction that moves the call to a
  terminal status, or :func:`dispo.store.calls.insert_ended_call` for a call stored already
  ended, and then
- ``jobs.enqueue(call_pk)`` after the commit, on the process's :class:`Jobs`. It never raises: if
  the queue cannot be reached the job is still pending in the database and the sweeper enqueues it
  again.

One :class:`Jobs` per process, created at start-up and passed to what ends calls: ``create_app``
makes ``app.state.jobs`` (the call runner, chats, the dialer and re-analysis get it from there),
``dispo worker`` and the CLI make their own. It holds the queue (:mod:`dispo.analytics.queue`:
Huey on SQLite or Redis as ``DISPO_QUEUE_URL`` says, or a :class:`~dispo.analytics.queue.MemoryQueue`
in unit tests) and the LLM backend its jobs analyze with.

Queues (``DISPO_QUEUE_URL``): empty means a SQLite queue at ``<data_dir>/queue.db`` (worked by
threads inside ``dispo serve``, or by ``dispo worker``); ``sqlite:///path/queue.db`` names the
file; ``redis://host:6379/0`` uses Redis (worked by ``dispo worker`` processes, on any machine
that reaches Redis and the database). ``?queue=NAME`` on a Redis URL names the queue, so several
Dispo installations can share one Redis (default ``dispo``).

Workers run :func:`dispo.analytics.lifecycle.attempt`: claim, analyze, record. A failed attempt is
retried after ``analytics_retry_delay_seconds``, doubling each time, up to
``analytics_max_attempts``; then the call is ``failed`` with the reason. The sweeper (a periodic
task, every minute, and once when workers start) re-enqueues jobs whose worker died (``running``
past ``analytics_lease_seconds``) and jobs the queue lost (``pending`` a minute past due and not
in the queue), so killing a worker mid-job loses nothing. New calls are queued ahead of
re-analysis (priorities), so a large re-analysis does not delay fresh calls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from dispo.analytics import lifecycle
from dispo.analytics.lifecycle import Outcome
from dispo.analytics.queue import (
    PRIORITY_NEW,
    PRIORITY_RERUN,
    HueyQueue,
    JobQueue,
    MemoryQueue,
    is_sqlite_queue,
    make_huey,
    queue_description,
)
from dispo.config import Settings
from dispo.errors import QueueConfigError
from dispo.llm import Backend, LazyBackend
from dispo.store.database import Database

__all__ = [
    "PRIORITY_NEW",
    "PRIORITY_RERUN",
    "HueyQueue",
    "JobQueue",
    "Jobs",
    "MemoryQueue",
    "QueueConfigError",
    "is_sqlite_queue",
    "make_huey",
    "queue_description",
    "run_worker",
]

log = logging.getLogger("dispo.analytics")


class Jobs:
    """The process's analytics jobs: enqueue ended calls, run their attempts, sweep.

    ``queue`` defaults to the settings' Huey queue; ``backend`` (what the jobs analyze with) to
    the settings' backend, loaded when a job first needs it; ``db`` (what the jobs read and write)
    to the settings' database, opened on first use. Enqueueing needs only the queue.
    """

    def __init__(
        self,
        settings: Settings,
        db: Database | None = None,
        *,
        backend: Backend | None = None,
        queue: JobQueue | None = None,
    ) -> None:
        self.settings = settings
        self.backend: Backend = backend or LazyBackend(settings)
        self.queue: JobQueue = queue or HueyQueue(settings)
        self.queue.bind(self)
        self._db = db
        self._db_lock = threading.Lock()  # guards opening the database

    @property
    def db(self) -> Database:
        with self._db_lock:
            if self._db is None:
                self._db = Database(self.settings.effective_database_url, pool_size=2)
            return self._db

    @property
    def description(self) -> str:
        """The queue in words (no password)."""
        return self.queue.description

    # -- producing -------------------------------------------------------------------------

    def enqueue(self, call_pk: int, *, priority: int = PRIORITY_NEW) -> bool:
        """Hand a pending call (see :func:`dispo.store.calls.end_call`) to the workers; call it after the commit.

        Never raises: when the queue cannot be reached it logs a warning and returns False, and the
        sweeper enqueues the job within a minute or two of the queue coming back.
        """
        return self.enqueue_many([call_pk], priority=priority) == 1

    def enqueue_many(self, call_pks: Sequence[int], *, priority: int = PRIORITY_NEW) -> int:
        """:meth:`enqueue` for many calls; returns how many were queued (never raises)."""
        if not call_pks:
            return 0
        try:
            return self.queue.put(call_pks, priority)
        except Exception as exc:  # the queue is down: the rows are pending and the sweeper has them
            log.warning(
                "Could not enqueue analytics of %d call(s) (%s: %s); the sweeper will enqueue them later.",
                len(call_pks),
                type(exc).__name__,
                exc,
            )
            return 0

    # -- consuming -------------------------------------------------------------------------

    def attempt(self, call_pk: int) -> Outcome:
        """One attempt at the call's pending job, with this object's database and backend."""
        return lifecycle.attempt(self.db, self.settings, call_pk, self.backend)

    def run_job(self, call_pk: int) -> float | None:
        """What a queue's worker runs: one attempt; the delay before a retry, or None when done."""
        outcome = self.attempt(call_pk)
        return (outcome.retry_in or 0.0) if outcome.kind == "retry" else None

    def sweep(self) -> int:
        """Re-enqueue jobs whose worker died or that the queue lost; returns how many."""
        pks = lifecycle.sweep_database(self.db, self.settings, self.queue.live_calls())
        return self.enqueue_many(pks)

    def start(self, workers: int) -> None:
        """Work the queue with ``workers`` threads in this process (``dispo serve``), after a sweep
        for the jobs an earlier process left behind."""
        self.sweep_at_start()
        self.queue.start(workers)

    def stop(self) -> None:
        """Stop taking jobs; waits up to 10 s for running ones (a job cut short is swept later)."""
        self.queue.stop()

    def sweep_at_start(self) -> None:
        """The sweep workers run before their first job; logs, never raises."""
        try:
            swept = self.sweep()
        except Exception:
            log.exception("The start-up sweep of analytics jobs failed; the periodic sweep will retry.")
        else:
            if swept:
                log.info("Start-up sweep re-enqueued %d analytics job(s).", swept)


def run_worker(jobs: Jobs, *, workers: int = 1, worker_type: str = "thread") -> None:
    """Work ``jobs``' queue in the foreground until SIGINT/SIGTERM (``dispo worker``)."""
    queue = jobs.queue
    if not isinstance(queue, HueyQueue):
        raise QueueConfigError(
            f"`dispo worker` works a Huey queue (SQLite or Redis), not {queue.description}."
        )
    jobs.sweep_at_start()
    if worker_type == "process":
        jobs.db.dispose()  # forked workers must open their own database connections
    queue.run(workers, worker_type)
