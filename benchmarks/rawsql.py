"""The same work without the API: the SQL a request runs, replayed on a bare DB-API connection.

``Recorder`` runs a request's call-log code (``calllog.parse_list_query`` and the store's
``list_statements``, ``count_calls``, ``call_log_entry``, ``call_log_entries``, …) once, in the
same kind of read as the route (``Database.read``, with ``snapshot=False`` for one call by id), and
keeps every statement with its parameters exactly as the driver received them, and whether they
ran in a transaction. ``Replayer`` runs those on a plain ``sqlite3`` or ``psycopg`` connection,
in one read transaction where the app had one, and fetches every row: the database's share of a
request, with no routing, auth, SQLAlchemy, rendering or JSON on top.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import event

from benchmarks.cases import Sample
from dispo.api import calllog
from dispo.store.database import _SQLITE_PRAGMAS, Database


@dataclass(frozen=True)
class Statement:
    sql: str
    params: Any  # a tuple for sqlite3 (qmark), a dict for psycopg (pyformat)


@dataclass(frozen=True)
class Recording:
    statements: tuple[Statement, ...]
    data: dict[str, Any]  # what the API would answer with, e.g. to follow nextCursor
    transaction: bool = True  # the statements ran in one transaction (BEGIN … COMMIT)


class Recorder:
    """Runs samples through the call-log code and records the SQL they send."""

    def __init__(self, db: Database, org_id: str) -> None:
        self.db = db
        self.org_id = org_id
        self._statements: list[Statement] | None = None
        self._transaction = False
        event.listen(db.engine, "before_cursor_execute", self._on_execute)

    def _on_execute(
        self, _conn: Any, cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        if self._statements is None:
            return
        # BEGIN is Dispo's SQLite transaction opener; psycopg opens one itself unless in autocommit.
        # The replay opens its own transaction where the app had one.
        if statement.strip().upper() == "BEGIN":
            self._transaction = True
            return
        if not self.db.is_sqlite and not cursor.connection.autocommit:
            self._transaction = True
        self._statements.append(Statement(statement, parameters))

    def record(self, sample: Sample) -> Recording:
        self._statements = []
        self._transaction = False
        try:
            # As the route reads: one call by id needs no common snapshot (routes/conversations.py).
            with self.db.read(snapshot=sample.kind != "get") as conn:
                data = run_sample(conn, self.org_id, sample)
            return Recording(tuple(self._statements), data, self._transaction)
        finally:
            self._statements = None


def run_sample(conn: Any, org_id: str, sample: Sample) -> dict[str, Any]:
    """What the API's handler does for ``sample`` once it has a connection."""
    if sample.kind == "list":
        return calllog.list_calls(conn, calllog.parse_list_query(org_id, sample.params))
    if sample.kind == "get":
        data = calllog.get_call(conn, org_id, sample.call_id)
        if data is None:
            raise LookupError(f"no call {sample.call_id} in the bench organization")
        return data
    return calllog.search_calls(conn, org_id, list(sample.call_ids))


class Replayer:
    """Replays recorded statements on a raw connection; ``run`` returns milliseconds."""

    def run(self, statements: tuple[Statement, ...], transaction: bool = True) -> float:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    @staticmethod
    def open(db: Database) -> Replayer:
        if db.is_sqlite:
            assert db.url.database
            return SqliteReplayer(db.url.database)
        return PostgresReplayer(db.url.set(drivername="postgresql").render_as_string(hide_password=False))


class SqliteReplayer(Replayer):
    def __init__(self, path: str) -> None:
        # Autocommit mode and the server's own pragmas, so both sides read the database alike.
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in _SQLITE_PRAGMAS:
            self.conn.execute(pragma)

    def run(self, statements: tuple[Statement, ...], transaction: bool = True) -> float:
        conn = self.conn
        started = time.perf_counter()
        if transaction:
            conn.execute("BEGIN")
        for s in statements:
            conn.execute(s.sql, s.params).fetchall()
        if transaction:
            conn.execute("COMMIT")
        return (time.perf_counter() - started) * 1000

    def close(self) -> None:
        self.conn.close()


class PostgresReplayer(Replayer):
    def __init__(self, conninfo: str) -> None:
        # Not autocommit: the first statement opens a transaction, as the server's read() does.
        # Session settings as the server's (store/database.py): JIT off.
        self.conn = psycopg.connect(conninfo, options="-c jit=off")

    def run(self, statements: tuple[Statement, ...], transaction: bool = True) -> float:
        conn = self.conn
        conn.autocommit = not transaction  # as the app ran them (Database.read(snapshot=False))
        started = time.perf_counter()
        with conn.cursor() as cur:
            for s in statements:
                cur.execute(s.sql, s.params)
                cur.fetchall()
        if transaction:
            conn.commit()
        return (time.perf_counter() - started) * 1000

    def close(self) -> None:
        self.conn.close()
