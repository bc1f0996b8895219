"""Request dependencies: the database, the settings, the analytics jobs and the caller's
organization; and :func:`read`, which runs a route's database work.

They are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in the thread pool, a
hop that costs more than the work these do. Blocking work (the key lookup on a cache miss) is
sent to the thread pool explicitly. (Measured with 16 concurrent clients on two cores, a hop cost
~300 µs of CPU per request, the key lookup ~1 µs, a call fetched from SQLite ~50 µs.)
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy import Connection

from dispo.analytics.jobs import Jobs
from dispo.api.auth import authenticate
from dispo.api.guard import ORG_ID_SCOPE_KEY
from dispo.config import Settings
from dispo.store.database import Database


async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_jobs(request: Request) -> Jobs:
    jobs: Jobs = request.app.state.jobs  # created once, by create_app
    return jobs


async def get_org_id(request: Request) -> str:
    org_id: str | None = request.scope.get(ORG_ID_SCOPE_KEY)  # the guard checked the key already
    if org_id is not None:
        return org_id
    return await authenticate(
        request.headers.get("authorization"), request.app.state.db, request.app.state.key_cache
    )


DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
JobsDep = Annotated[Jobs, Depends(get_jobs)]
OrgDep = Annotated[str, Depends(get_org_id)]


T = TypeVar("T")


async def read(
    request: Request, work: Callable[[Connection], T], *, bounded: bool = False, snapshot: bool = True
) -> T:
    """``work(conn)`` in a read of the app's database (``Database.read(snapshot=…)``).

    In the thread pool, so that the event loop keeps serving while the database works; except a
    ``bounded=True`` read on SQLite (a few index lookups, such as one call by id), which runs on the
    loop: the embedded database answers it in less time than the hop to a thread takes.
    """
    db: Database = request.app.state.db

    def run() -> T:
        with db.read(snapshot=snapshot) as conn:
            return work(conn)

    if bounded and db.is_sqlite:
        return run()
    readers: ReadThreads = request.app.state.readers
    return await asyncio.get_running_loop().run_in_executor(
        readers.executor(), contextvars.copy_context().run, run
    )


class ReadThreads:
    """Threads for the routes' database reads, one per pooled connection (more would only wait for
    one), started on first use and stopped with the app. A plain executor: anyio's thread hop
    (``run_in_threadpool``) costs three times the CPU."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.size, thread_name_prefix="dispo-read")
            return self._executor

    def shutdown(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)
