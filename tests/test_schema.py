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
