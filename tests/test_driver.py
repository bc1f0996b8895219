"""store.driver: the call log's reads on the DB-API cursor behave like SQLAlchemy's own execution."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError

from dispo.store import driver
from dispo.store.database import Database


def test_rows_come_back_as_tuples_with_named_parameters(db: Database) -> None:
    with db.read() as conn:
        rows = driver.fetch_all(conn, "SELECT :a, :b UNION ALL SELECT :b, :a", {"a": 1, "b": 2})
        assert [tuple(r) for r in rows] == [(1, 2), (2, 1)]
        assert driver.fetch_one(conn, "SELECT :x", {"x": "text"}) == ("text",)
        assert driver.fetch_scalar(conn, "SELECT 41 + :n", {"n": 1}) == 42


def test_statements_reach_cursor_listeners(db: Database) -> None:
    seen: list[tuple[str, Any]] = []

    def listen(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", listen)
    try:
        with db.read() as conn:
            driver.fetch_all(conn, "SELECT :a", {"a": 7})
    finally:
        event.remove(db.engine, "before_cursor_execute", listen)
    assert any(parameters == {"a": 7} for _statement, parameters in seen), seen


def test_errors_are_sqlalchemy_errors_and_the_connection_stays_usable(db: Database) -> None:
    with pytest.raises(DBAPIError), db.read() as conn:
        driver.fetch_all(conn, "SELECT * FROM no_such_table", {})
    with db.read() as conn:
        assert driver.fetch_scalar(conn, "SELECT 1", {}) == 1


def test_sql_with_percent_signs_is_refused_for_psycopg() -> None:
    with pytest.raises(ValueError, match="without '%'"):
        driver._pyformat("SELECT 1 WHERE 'a' LIKE 'a%'")
