"""Post-call analytics jobs: the queue (Huey), its tasks, enqueueing and the sweeper.

The durable record of a job is the call row itself (a transactional outbox): a call that ends
gets ``analytics_status="pending"`` in the same transaction, and the queue only carries the call's
pk to a worker. Code that ends calls (the dialer, telephony webhooks, imports) does either

- :func:`dispo.store.calls.end_call` (which marks the job with
  :func:`dispo.store.analytics_jobs.mark_pending`) in the transaction that moves the call to a
  terminal status, or :func:`dispo.store.calls.insert_ended_call` for a call stored already
  ended, and then
- ``enqueue(settings, call_pk)`` after the commit. It never raises: if the queue cannot be reached
  the job is still pending in the database and the sweeper enqueues it again.

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
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from huey import PriorityRedisHuey, SqliteHuey, crontab
from huey.api import Huey
from huey.consumer import Consumer
from huey.exceptions import RetryTask

from dispo.analytics import lifecycle
from dispo.config import Settings
from dispo.errors import QueueConfigError
from dispo.store.database import Database, create_private_file, make_private_dir

__all__ = [
    "PRIORITY_NEW",
    "PRIORITY_RERUN",
    "InProcessWorkers",
    "Jobs",
    "QueueConfigError",
    "enqueue",
    "enqueue_many",
    "get_jobs",
    "is_sqlite_queue",
    "make_huey",
    "queue_description",
    "run_worker",
]

log = logging.getLogger("dispo.analytics")

PRIORITY_NEW = 10  # a call that just ended
PRIORITY_RERUN = 0  # re-analysis: runs when no new call waits
DEFAULT_QUEUE_NAME = "dispo"
ANALYZE_TASK = "analyze_call"
SWEEP_TASK = "sweep_analytics"


def _split_queue_name(url: str) -> tuple[str, str | None]:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = [v for k, v in query if k == "queue"]
    rest = urlencode([(k, v) for k, v in query if k != "queue"])
    return urlunsplit(parts._replace(query=rest)), (names[-1] if names else None)


def queue_description(settings: Settings) -> str:
    """The queue in force, for start-up messages (no password)."""
    url = settings.queue_url.strip()
    if not url:
        return f"sqlite ({settings.data_dir / 'queue.db'})"
    if url.startswith("sqlite:///"):
        return f"sqlite ({url.removeprefix('sqlite:///')})"
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return f"redis ({parts.scheme}://{netloc}{parts.path})"


def is_sqlite_queue(settings: Settings) -> bool:
    url = settings.queue_url.strip()
    return not url or url.startswith("sqlite:///")


def make_huey(settings: Settings, *, name: str | None = None) -> Huey:
    """The Huey instance for ``settings.queue_url`` (no tasks registered: see :class:`Jobs`)."""
    url = settings.queue_url.strip()
    if not url or url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///")) if url else settings.data_dir / "queue.db"
        make_private_dir(path.parent)  # data files 0600 in a 0700 directory (store/database.py)
        create_private_file(path)
        # fsync off: a queue entry lost to a power cut is found again by the sweeper (the call row,
        # written durably, is the record of the job), and enqueueing stays cheap in bulk.
        return SqliteHuey(name or DEFAULT_QUEUE_NAME, filename=str(path), results=False, fsync=False)
    if url.startswith(("redis://", "rediss://", "unix://")):
        redis_url, queue_name = _split_queue_name(url)
        return PriorityRedisHuey(name or queue_name or DEFAULT_QUEUE_NAME, url=redis_url, results=False)
    raise QueueConfigError(
        f"DISPO_QUEUE_URL={url!r} is not a queue Dispo knows: leave it empty for the embedded SQLite "
        "queue, or give sqlite:///path/queue.db or redis://host:6379/0."
    )


class Jobs:
    """A queue with Dispo's tasks registered, bound to the database its workers write to.

    Enqueuing needs only the queue; running tasks opens ``db`` (default: the settings' database)
    on first use.
    """

    def __init__(self, settings: Settings, db: Database | None = None, *, name: str | None = None) -> None:
        self.settings = settings
        self.huey = make_huey(settings, name=name)
        self._db = db
        self._db_lock = threading.Lock()
        self.analyze_task = self.huey.task(name=ANALYZE_TASK)(self._analyze)
        self.sweep_task = self.huey.periodic_task(crontab(minute="*"), name=SWEEP_TASK)(self.sweep)

    @property
    def db(self) -> Database:
        with self._db_lock:
            if self._db is None:
                self._db = Database(self.settings.effective_database_url, pool_size=2)
            return self._db

    def use_db(self, db: Database) -> None:
        with self._db_lock:
            if self._db is None:
                self._db = db

    # -- producing -------------------------------------------------------------------------

    def enqueue(self, call_pks: Iterable[int], *, priority: int = PRIORITY_NEW) -> int:
        """Queue the jobs of ``call_pks`` (already marked pending); returns how many."""
        n = 0
        for pk in call_pks:
            self.huey.enqueue(self.analyze_task.s(int(pk), priority=priority))
            n += 1
        return n

    # -- consuming -------------------------------------------------------------------------

    def _analyze(self, call_pk: int) -> None:
        outcome = lifecycle.attempt(self.db, self.settings, call_pk)
        if outcome.kind == "retry":
            # Huey schedules this same task again after the delay (its scheduler enqueues it when due).
            raise RetryTask(delay=outcome.retry_in)

    def live_calls(self) -> set[int]:
        """Call pks that have a job in the queue or scheduled for a retry."""
        live: set[int] = set()
        for task in [*self.huey.pending(), *self.huey.scheduled()]:
            if type(task).__name__ == ANALYZE_TASK and task.args:
                live.add(int(task.args[0]))
        return live

    def sweep(self) -> int:
        """Re-enqueue jobs whose worker died or that the queue lost; returns how many."""
        pks = lifecycle.sweep_database(self.db, self.settings, self.live_calls())
        return self.enqueue(pks)

    def consumer(self, workers: int = 1, *, worker_type: str = "thread", periodic: bool = True) -> Consumer:
        """A Huey consumer for this queue: ``workers`` threads or processes, plus the scheduler
        (retries and the periodic sweep)."""
        consumer: Consumer = self.huey.create_consumer(
            workers=workers,
            worker_type=worker_type,
            periodic=periodic,
            initial_delay=0.1,
            max_delay=1.0,  # idle SQLite workers poll at least once a second; Redis blocks instead
            check_worker_health=True,
            shutdown_timeout=10.0,
        )
        return consumer


_JOBS: dict[tuple[str, str, str], Jobs] = {}
_JOBS_LOCK = threading.Lock()


def get_jobs(settings: Settings, db: Database | None = None) -> Jobs:
    """The process's :class:`Jobs` for these settings (one queue connection per queue)."""
    key = (settings.queue_url.strip(), str(settings.data_dir), settings.effective_database_url)
    with _JOBS_LOCK:
        jobs = _JOBS.get(key)
        if jobs is None:
            jobs = _JOBS[key] = Jobs(settings, db)
    if db is not None:
        jobs.use_db(db)
    return jobs


def enqueue(settings: Settings, call_pk: int) -> bool:
    """Hand a pending call (see :func:`dispo.store.calls.end_call`) to the workers; call it after the commit.

    Never raises: when the queue cannot be reached it logs a warning and returns False, and the
    sweeper enqueues the job within a minute or two of the queue coming back.
    """
    return enqueue_many(settings, [call_pk]) == 1


def enqueue_many(settings: Settings, call_pks: Sequence[int], *, priority: int = PRIORITY_NEW) -> int:
    """:func:`enqueue` for many calls; returns how many were queued (never raises)."""
    try:
        return get_jobs(settings).enqueue(call_pks, priority=priority)
    except Exception as exc:  # the queue is down: the rows are pending and the sweeper has them
        log.warning(
            "Could not enqueue analytics of %d call(s) (%s: %s); the sweeper will enqueue them later.",
            len(call_pks),
            type(exc).__name__,
            exc,
        )
        return 0


class InProcessWorkers:
    """Worker threads inside another process (``dispo serve``): the consumer without its signal
    handling, which belongs to the host process (uvicorn)."""

    def __init__(self, jobs: Jobs, workers: int) -> None:
        self.jobs = jobs
        self._consumer = jobs.consumer(workers)
        self._started = False

    def start(self) -> None:
        try:
            self.jobs.sweep()
        except Exception:
            log.exception("The start-up sweep of analytics jobs failed; the periodic sweep will retry.")
        self._consumer.scheduler.start()
        for _, thread in self._consumer.worker_threads:
            thread.start()
        self._started = True

    def stop(self) -> None:
        """Stop taking jobs; waits up to 10 s for running ones (a job cut short is swept later)."""
        if self._started:
            self._consumer.stop(graceful=True)
            self._started = False


def run_worker(settings: Settings, *, workers: int = 1, worker_type: str = "thread") -> None:
    """Run a consumer in the foreground until SIGINT/SIGTERM (``dispo worker``)."""
    jobs = get_jobs(settings)
    try:
        swept = jobs.sweep()
    except Exception:
        log.exception("The start-up sweep of analytics jobs failed; the periodic sweep will retry.")
    else:
        if swept:
            log.info("Start-up sweep re-enqueued %d analytics job(s).", swept)
    if worker_type == "process":
        jobs.db.dispose()  # forked workers must open their own database connections
    jobs.consumer(workers, worker_type=worker_type).run()
