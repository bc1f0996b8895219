"""Hot-path reads on the DB-API cursor: SQL text in, the driver's row tuples out.

SQLAlchemy's execution layer costs more than the queries the call log runs. For every statement
it builds a result object and reads ``cursor.description`` (psycopg makes one Python object per
column: ~100 µs for a 33-column call row), while SQLite answers a primary-key lookup in ~10 µs.
So the call log's reads (``store.calls``, ``store.counts``) run on the cursor of the
transaction's own connection instead, inside the same ``Database.read()`` transaction:

* SQL is written once with ``:name`` parameters, which sqlite3 takes as they are; for psycopg
  they become ``%(name)s`` (converted once per statement text). Write no ``%`` and no ``::`` in it.
* Rows come back as the driver's tuples, without SQLAlchemy's result processing: a JSON column is
  text on SQLite and already decoded on PostgreSQL (:func:`json_value` reads both).
* ``before_cursor_execute`` listeners still see every statement (context ``None``), so tools that
  record SQL, such as the benchmark's, keep working.
* A DB-API error is raised as SQLAlchemy's ``DBAPIError``, and a connection found dead is
  invalidated, as ``Connection.execute`` would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

Params = Mapping[str, Any]
_NAMED = re.compile(r"(?<![:\w]):(\w+)")


def fetch_all(conn: Connection, sql: str, params: Params) -> list[tuple[Any, ...]]:
    """Every row of ``sql``, as tuples."""
    rows: list[tuple[Any, ...]] = _run(conn, sql, params, _ALL)
    return rows


def fetch_one(conn: Connection, sql: str, params: Params) -> tuple[Any, ...] | None:
    """The first row of ``sql`` (the statement should match at most one), or None."""
    row: tuple[Any, ...] | None = _run(conn, sql, params, _ONE)
    return row


def fetch_scalar(conn: Connection, sql: str, params: Params) -> Any:
    """The first column of the first row of ``sql``."""
    row = fetch_one(conn, sql, params)
    if row is None:
        raise LookupError(f"no row from {sql[:80]!r}")
    return row[0]


def execute(conn: Connection, sql: str, params: Params | None = None) -> None:
    """Run ``sql`` and discard any rows (e.g. ``BEGIN``)."""
    _run(conn, sql, params or {}, _NONE)


def json_value(conn: Connection, value: Any) -> Any:
    """A JSON column's value as Python: SQLite hands over the stored text, psycopg decodes it."""
    return json_loads(value) if type(value) is str and conn.dialect.name == "sqlite" else value


def json_loads(text: str) -> Any:
    """What ``json.loads`` (SQLAlchemy's decoder) makes of ``text``, 5x faster: orjson, and the
    standard library for what orjson refuses (``NaN``, lone surrogates). One difference, in values
    no response could carry anyway (orjson refuses to encode them): an integer beyond 64 bits comes
    back as a float instead of an int."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


@lru_cache(maxsize=1024)
def _pyformat(sql: str) -> str:
    if "%" in sql or "::" in sql:
        raise ValueError(f"write store SQL without '%' or '::' (bind a parameter instead): {sql[:80]!r}")
    return _NAMED.sub(r"%(\1)s", sql)


_ALL, _ONE, _NONE = 0, 1, 2


def _run(conn: Connection, sql: str, params: Params, fetch: int) -> Any:
    dbapi_conn = conn.connection.driver_connection
    assert dbapi_conn is not None
    if conn.dialect.paramstyle == "pyformat":
        sql = _pyformat(sql)
    cursor = dbapi_conn.cursor()
    try:
        listeners = conn.dispatch.before_cursor_execute
        if listeners:
            for listener in listeners:
                sql, params = listener(conn, cursor, sql, params, None, False)
        cursor.execute(sql, params)
        return cursor.fetchall() if fetch == _ALL else cursor.fetchone() if fetch == _ONE else None
    except conn.dialect.loaded_dbapi.Error as exc:
        lost = conn.dialect.is_disconnect(exc, dbapi_conn, cursor)
        if lost:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            sql, params, exc, conn.dialect.loaded_dbapi.Error, connection_invalidated=lost
        ) from exc
    finally:
        cursor.close()
