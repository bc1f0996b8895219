"""The analytics job queue behind one small interface: Huey (SQLite or Redis), or in memory.

The split is procrastinate's manager and connector. :class:`dispo.analytics.jobs.Jobs` is the
manager — what a job does, the database and the model it uses, enqueueing that never raises, the
sweeper — and it talks to a :class:`JobQueue`, the connector, which only carries call pks to
workers and runs them there:

- :class:`HueyQueue` — Huey on SQLite (``DISPO_QUEUE_URL`` empty: ``<data_dir>/queue.db``, or
  ``sqlite:///path``) or Redis (``redis://host:6379/0``): what ``dispo serve`` and ``dispo worker``
  use, worked by threads in the server or by ``dispo worker`` processes;
- :class:`MemoryQueue` — a plain queue in this process, for unit tests: nothing runs until the test
  calls :meth:`MemoryQueue.run_pending` (deterministic, in the test's thread), or worker threads
  run the jobs once :meth:`MemoryQueue.start` is called, as with Huey.

A queue carries call pks only: the call row is the durable record of its job, so a queue that loses
a job (a wiped Redis, a process that held a MemoryQueue) loses nothing the sweeper does not find.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from huey import PriorityRedisHuey, SqliteHuey, crontab
from huey.api import Huey
from huey.consumer import Consumer
from huey.exceptions import RetryTask

from dispo.config import Settings
from dispo.errors import QueueConfigError
from dispo.store.database import create_private_file, make_private_dir

__all__ = [
    "PRIORITY_NEW",
    "PRIORITY_RERUN",
    "HueyQueue",
    "JobHandler",
    "JobQueue",
    "MemoryQueue",
    "is_sqlite_queue",
    "make_huey",
    "queue_description",
]

log = logging.getLogger("dispo.analytics")

PRIORITY_NEW = 10  # a call that just ended
PRIORITY_RERUN = 0  # re-analysis: runs when no new call waits
DEFAULT_QUEUE_NAME = "dispo"
ANALYZE_TASK = "analyze_call"
SWEEP_TASK = "sweep_analytics"
SWEEP_EVERY_S = 60.0  # the periodic sweep (Huey's is a crontab: every minute)


class JobHandler(Protocol):
    """What a queue's workers call (:class:`dispo.analytics.jobs.Jobs`)."""

    def run_job(self, call_pk: int) -> float | None:
        """One attempt at the call's job: the delay in seconds before the queue runs it again, or
        None when the job is done (completed, failed for good, or not this worker's)."""
        ...

    def sweep(self) -> int:
        """Enqueue again the jobs no worker will run; returns how many (the periodic sweep)."""
        ...


class JobQueue(Protocol):
    """Carries call pks to workers. Implementations: :class:`HueyQueue`, :class:`MemoryQueue`."""

    @property
    def description(self) -> str:
        """The queue in words, for start-up messages, ``dispo doctor`` and logs (no password)."""
        ...

    def bind(self, handler: JobHandler) -> None:
        """Set what the workers call; :class:`~dispo.analytics.jobs.Jobs` binds itself."""
        ...

    def put(self, call_pks: Sequence[int], priority: int) -> int:
        """Queue the jobs of ``call_pks``; returns how many. Raises when the queue is unreachable
        (``Jobs.enqueue_many`` turns that into a warning: the sweeper enqueues them later)."""
        ...

    def live_calls(self) -> set[int]:
        """Call pks with a job waiting in the queue or scheduled for a retry: the sweeper leaves
        those alone."""
        ...

    def start(self, workers: int) -> None:
        """Work the queue with ``workers`` threads in this process, and sweep periodically."""
        ...

    def stop(self) -> None:
        """Stop the worker threads; running jobs get a few seconds (a job cut short is swept later)."""
        ...


# -- Huey ----------------------------------------------------------------------------------------


def _split_queue_name(url: str) -> tuple[str, str | None]:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = [v for k, v in query if k == "queue"]
    rest = urlencode([(k, v) for k, v in query if k != "queue"])
    return urlunsplit(parts._replace(query=rest)), (names[-1] if names else None)


def queue_description(settings: Settings) -> str:
    """The queue of ``settings.queue_url``, for start-up messages (no password)."""
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
    """The Huey instance for ``settings.queue_url`` (no tasks registered: see :class:`HueyQueue`)."""
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


class HueyQueue:
    """Huey on SQLite or Redis, as ``settings.queue_url`` says.

    The Huey instance is made on first use (a server that never ends a call never opens its
    queue), with two tasks: the analysis of a call (retried by Huey's scheduler after the delay
    the handler returns) and the sweep, every minute.
    """

    def __init__(self, settings: Settings, *, name: str | None = None, task: str = ANALYZE_TASK) -> None:
        self.settings = settings
        self._name = name
        self._task = task  # the name of the job's task in Huey's logs (the webhook queue's: deliver)
        self._huey: Huey | None = None
        self.analyze_task: Any = None  # registered with the Huey instance
        self._handler: JobHandler | None = None
        self._consumer: Consumer | None = None
        self._init_lock = threading.Lock()  # guards the creation of the Huey instance

    @property
    def description(self) -> str:
        return queue_description(self.settings)

    @property
    def huey(self) -> Huey:
        with self._init_lock:
            if self._huey is None:
                huey = make_huey(self.settings, name=self._name)
                self.analyze_task = huey.task(name=self._task)(self._analyze)
                huey.periodic_task(crontab(minute="*"), name=SWEEP_TASK)(self._sweep)
                self._huey = huey
            return self._huey

    def bind(self, handler: JobHandler) -> None:
        self._handler = handler

    def _bound(self) -> JobHandler:
        if self._handler is None:
            raise QueueConfigError(
                "This queue has no job handler: create it through dispo.analytics.jobs.Jobs."
            )
        return self._handler

    def _analyze(self, call_pk: int) -> None:
        retry_in = self._bound().run_job(call_pk)
        if retry_in is not None:
            # Huey schedules this same task again after the delay (its scheduler enqueues it when due).
            raise RetryTask(delay=retry_in)

    def _sweep(self) -> int:
        return self._bound().sweep()

    def put(self, call_pks: Sequence[int], priority: int) -> int:
        huey = self.huey
        for pk in call_pks:
            huey.enqueue(self.analyze_task.s(int(pk), priority=priority))
        return len(call_pks)

    def live_calls(self) -> set[int]:
        live: set[int] = set()
        for task in [*self.huey.pending(), *self.huey.scheduled()]:
            if type(task).__name__ == self._task and task.args:
                live.add(int(task.args[0]))
        return live

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

    def start(self, workers: int) -> None:
        # The consumer without its signal handling, which belongs to the host process (uvicorn).
        consumer = self.consumer(workers)
        consumer.scheduler.start()
        for _, thread in consumer.worker_threads:
            thread.start()
        self._consumer = consumer

    def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.stop(graceful=True)

    def run(self, workers: int, worker_type: str) -> None:
        """Work the queue in the foreground until SIGINT/SIGTERM (``dispo worker``)."""
        self.consumer(workers, worker_type=worker_type).run()


# -- in memory -----------------------------------------------------------------------------------


class MemoryQueue:
    """Jobs in a list of this process, run in priority order (new calls before re-analysis, then
    first in, first out).

    For unit tests: nothing runs until :meth:`run_pending` runs every job that is due, in the
    caller's thread; a retry is due ``delay`` seconds later on ``clock`` (pass a fake clock to move
    time on). Or :meth:`start` worker threads that run jobs as they come, and sweep every
    ``sweep_every`` seconds, like Huey's consumer.
    """

    description = "memory (this process)"

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, sweep_every: float = SWEEP_EVERY_S
    ) -> None:
        self.clock = clock
        self.sweep_every = sweep_every
        self._ready: list[tuple[int, int, int]] = []  # heap of (-priority, order, call pk)
        self._retries: list[tuple[float, int, int, int]] = []  # heap of (due, order, priority, call pk)
        self._order = itertools.count()
        self._cond = threading.Condition()  # guards both heaps and wakes the worker threads
        self._handler: JobHandler | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._next_sweep = 0.0

    def bind(self, handler: JobHandler) -> None:
        self._handler = handler

    def put(self, call_pks: Sequence[int], priority: int) -> int:
        with self._cond:
            for pk in call_pks:
                heapq.heappush(self._ready, (-priority, next(self._order), int(pk)))
            self._cond.notify(len(call_pks))
        return len(call_pks)

    def live_calls(self) -> set[int]:
        with self._cond:
            return {pk for *_, pk in self._ready} | {pk for *_, pk in self._retries}

    def pending(self) -> list[int]:
        """Call pks waiting to run now, in the order they will run (retries not yet due excluded)."""
        with self._cond:
            self._promote_due()
            return [pk for *_, pk in sorted(self._ready)]

    def run_pending(self) -> int:
        """Run every job that is due, in this thread, until none is; returns how many ran. A retry
        comes due on the clock, so it runs in a later call once the clock has passed its delay."""
        ran = 0
        while (job := self._take()) is not None:
            self._run(*job)
            ran += 1
        return ran

    def _take(self) -> tuple[int, int] | None:
        with self._cond:
            self._promote_due()
            if not self._ready:
                return None
            priority, _, pk = heapq.heappop(self._ready)
            return pk, -priority

    def _promote_due(self) -> None:
        now = self.clock()
        while self._retries and self._retries[0][0] <= now:
            _, order, priority, pk = heapq.heappop(self._retries)
            heapq.heappush(self._ready, (-priority, order, pk))

    def _run(self, call_pk: int, priority: int) -> None:
        if self._handler is None:
            raise QueueConfigError(
                "This queue has no job handler: create it through dispo.analytics.jobs.Jobs."
            )
        try:
            retry_in = self._handler.run_job(call_pk)
        except Exception:  # as Huey does: the job's error is logged, the worker goes on
            log.exception("The analytics job of call %s raised; the sweeper will find it.", call_pk)
            return
        if retry_in is not None:
            with self._cond:
                due = self.clock() + retry_in
                heapq.heappush(self._retries, (due, next(self._order), priority, call_pk))
                self._cond.notify()

    def _sweep(self) -> None:
        try:
            if self._handler is not None:
                self._handler.sweep()
        except Exception:
            log.exception("The periodic sweep of analytics jobs failed; the next one will retry.")

    # -- worker threads --------------------------------------------------------------------------

    def start(self, workers: int) -> None:
        with self._cond:
            self._stopping = False
            self._next_sweep = self.clock() + self.sweep_every
        self._threads = [
            threading.Thread(target=self._work, name=f"dispo-jobs-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=10.0)
        self._threads = []

    def _work(self) -> None:
        while (job := self._wait()) is not None:
            if job == "sweep":
                self._sweep()
            else:
                self._run(*job)

    def _wait(self) -> tuple[int, int] | str | None:
        """The next thing a worker thread does: a job, ``"sweep"``, or None to stop."""
        with self._cond:
            while not self._stopping:
                now = self.clock()
                if now >= self._next_sweep:
                    self._next_sweep = now + self.sweep_every
                    return "sweep"
                self._promote_due()
                if self._ready:
                    priority, _, pk = heapq.heappop(self._ready)
                    return pk, -priority
                wake = min([self._next_sweep, *(due for due, *_ in self._retries[:1])])
                self._cond.wait(timeout=max(0.01, wake - now))
        return None


if TYPE_CHECKING:  # both implement the protocol: mypy checks it here
    _IMPLEMENTATIONS: tuple[JobQueue, ...] = (HueyQueue(Settings()), MemoryQueue())
