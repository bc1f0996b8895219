"""One database handle for SQLite (embedded) and PostgreSQL, with the habits each needs.

SQLite: WAL so readers never block the writer, ``synchronous=NORMAL`` (durable across process
crashes, and fast), foreign keys on, and write transactions opened with ``BEGIN IMMEDIATE`` so two
writers queue on the busy timeout instead of failing with "database is locked" half-way through.
The database file is created readable by its owner only (0600), in a directory created 0700;
SQLite gives its WAL and shared-memory files the database file's permissions.
"""

from __future__ import annotations

import os
import select
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError

from dispo.store.driver import execute

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    "PRAGMA cache_size=-65536",  # 64 MiB page cache per connection
    "PRAGMA mmap_size=1073741824",
    "PRAGMA temp_store=MEMORY",
)


class Database:
    """An engine plus ``read()`` and ``write()`` transactions."""

    def __init__(self, url: str, *, pool_size: int = 8, echo: bool = False) -> None:
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            if self.url.database and self.url.database != ":memory:":
                path = Path(self.url.database)
                make_private_dir(path.parent)
                create_private_file(path)
            kwargs["connect_args"] = {"check_same_thread": False}
            kwargs["pool_size"] = pool_size
        else:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
            # psycopg prepares a statement after 5 runs; PostgreSQL then tries a generic plan whose
            # estimated cost for IN (<many binds>) passes jit_above_cost, and JIT-compiles it on
            # every execution (measured: a 1000-call page's transcript query 14 ms -> ~190 ms).
            kwargs["connect_args"] = {"options": "-c jit=off"}
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine)
        else:
            _configure_postgresql(self.engine)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def read(self, *, snapshot: bool = True) -> Iterator[Connection]:
        """A read transaction: one consistent snapshot for everything it runs.

        ``snapshot=False`` is for reads whose statements need no common snapshot: on PostgreSQL
        they then run without a transaction (autocommit), each seeing a snapshot of its own, which
        saves the BEGIN and COMMIT round trips (a read of one statement: one round trip, not
        three). SQLite reads in a transaction either way: in process, it costs next to nothing.
        """
        if snapshot or self.is_sqlite:
            with self.engine.connect() as conn, conn.begin():
                yield conn
            return
        with self.engine.connect() as conn:
            dbapi_connection: Any = conn.connection.driver_connection
            dbapi_connection.autocommit = True
            try:
                yield conn
            finally:
                if not (dbapi_connection.closed or dbapi_connection.broken):
                    dbapi_connection.autocommit = False

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, committed on success and rolled back on any exception."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(dispo_write=True)
            with conn.begin():
                yield conn

    def ping(self) -> None:
        """Run a trivial query: raises when the database cannot be reached."""
        with self.read() as conn:
            conn.exec_driver_sql("SELECT 1")

    def dispose(self) -> None:
        self.engine.dispose()


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and its parents) if missing; the directory itself 0700. An existing one is
    left as it is: its owner chose its permissions."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty and 0600 if it does not exist (SQLite takes an empty file as a new
    database), so that a data file is never readable by others, not even for a moment."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _configure_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # A pooled connection the server has closed (a restart, an idle timeout) is replaced
        # before use (the pool retries the checkout on DisconnectionError). Checked on the socket,
        # not by a ping: a ping is a round trip on every request, as much as a query costs.
        if connection_closed(dbapi_connection):
            raise DisconnectionError("the server closed this connection")


def connection_closed(dbapi_connection: Any) -> bool:
    """Whether an idle psycopg connection is closed, known to be broken, or has something to read:
    an idle connection is sent nothing but a server's goodbye (an error, then end of file)."""
    if dbapi_connection.closed or dbapi_connection.broken:
        return True
    poller = select.poll()  # not select.select(): it takes no descriptor above 1023
    try:
        poller.register(dbapi_connection.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so that we can say BEGIN IMMEDIATE ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # On the DB-API cursor (store.driver): through exec_driver_sql this cost more than a read.
        execute(conn, "BEGIN IMMEDIATE" if conn.get_execution_options().get("dispo_write") else "BEGIN")
