"""The migrated schema equals the declared one, on both databases."""

from __future__ import annotations

from dispo.store.database import Database
from dispo.store.migrate import current_revision, migrate, schema_diff


def test_migrations_produce_the_declared_schema(empty_db_url: str) -> None:
    db = Database(empty_db_url)
    try:
        assert current_revision(db) is None
        migrate(db)
        assert current_revision(db) is not None
        assert schema_diff(db) == []
    finally:
        db.dispose()


def test_migrate_twice_is_a_no_op(empty_db_url: str) -> None:
    db = Database(empty_db_url)
    try:
        migrate(db)
        first = current_revision(db)
        migrate(db)
        assert current_revision(db) == first
    finally:
        db.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.dispose()


def test_postgresql_sessions_run_without_jit(db: Database) -> None:
    # JIT-compiling generic plans of large IN lists made 1000-call pages 10x slower (BENCHMARKS.md).
    if db.is_sqlite:
        return
    with db.read() as conn:
        assert conn.exec_driver_sql("SHOW jit").scalar() == "off"


def test_postgresql_replaces_a_pooled_connection_the_server_closed(db: Database) -> None:
    # The pool checks a connection's socket at checkout instead of pinging the server each time.
    if db.is_sqlite:
        return
    from sqlalchemy import create_engine

    from dispo.store import driver

    one = Database(db.url.render_as_string(hide_password=False), pool_size=1)
    admin = create_engine(db.url, isolation_level="AUTOCOMMIT")
    try:
        with one.read() as conn:
            pid = driver.fetch_scalar(conn, "SELECT pg_backend_pid()", {})
        with admin.connect() as conn:
            assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})").scalar()
        for _ in range(100):  # the backend exits (closing the socket) a moment after answering
            with admin.connect() as conn:
                if not conn.exec_driver_sql(f"SELECT 1 FROM pg_stat_activity WHERE pid = {int(pid)}").first():
                    break
        with one.read() as conn:  # no error: the pool noticed and connected again
            assert driver.fetch_scalar(conn, "SELECT pg_backend_pid()", {}) != pid
    finally:
        admin.dispose()
        one.dispose()


def test_migration_0002_fills_weekly_counts_from_daily_ones(empty_db_url: str) -> None:
    from sqlalchemy import insert, select

    from dispo.store.tables import call_counts, call_counts_weekly

    db = Database(empty_db_url)
    try:
        migrate(db, "0001")
        cell = {
            "org_id": "o" * 24,
            "agent_id": "",
            "campaign_id": "",
            "status": "completed",
            "type": "chat",
            "disconnection_reason": "",
            "duration_bucket": "0-30",
        }
        with db.write() as conn:
            # Days 14..20 are week 2; day 21 starts week 3.
            conn.execute(
                insert(call_counts), [{**cell, "day": d, "calls": n} for d, n in ((14, 2), (20, 3), (21, 5))]
            )
        migrate(db)
        with db.read() as conn:
            rows = conn.execute(select(call_counts_weekly.c.week, call_counts_weekly.c.calls)).all()
        assert sorted(tuple(r) for r in rows) == [(2, 5), (3, 5)]
    finally:
        db.dispose()
