"""Bench databases: one per backend, loaded once with synthetic calls and reused while N and seed match.

A loaded database carries a marker row (table ``bench_dataset``) written only after the load and
ANALYZE finished, so an interrupted load is never mistaken for a finished one. ``--fresh`` ignores
the marker and rebuilds.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlalchemy as sa

from dispo.store import orgs, synthetic
from dispo.store.database import Database
from dispo.store.migrate import current_revision, migrate

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "bench-data"
SQLITE_PATH = DATA_DIR / "bench.db"
# BENCH_PG_DATABASE names another database, so a quick run at a smaller N keeps the 1M one.
PG_DATABASE = os.environ.get("BENCH_PG_DATABASE", "dispo_bench")
DEFAULT_POSTGRES_ADMIN_URL = "postgresql://127.0.0.1:5432/test"

FORMAT = 2  # bump when the dataset's shape changes, so that older bench databases are rebuilt
DAYS = 90
# The calls end at a fixed instant rather than at load time, so that what a bench database holds
# does not depend on the day it was loaded.
END_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
AGENTS = 5
CAMPAIGNS = 12
MARKER_TABLE = "bench_dataset"

BACKENDS = ("sqlite", "postgresql")

Log = Callable[[str], None]


class Unavailable(Exception):
    """This backend cannot be benchmarked on this machine; the message says why."""


@dataclass(frozen=True)
class Dataset:
    """What a bench database holds, as recorded by the load that filled it."""

    format: int
    calls: int
    seed: int
    days: int
    end_ms: int
    org_id: str
    transcript_messages: int
    analytics_results: int
    insert_s: float  # generate + insert + rebuild call_counts
    analyze_s: float

    @property
    def load_s(self) -> float:
        return self.insert_s + self.analyze_s


@dataclass(frozen=True)
class BenchDatabase:
    backend: str
    url: str  # SQLAlchemy URL
    dataset: Dataset
    reused: bool
    size_bytes: int
    server_version: str

    def open(self, pool_size: int = 2) -> Database:
        return Database(self.url, pool_size=pool_size)


def prepare(backend: str, *, calls: int, seed: int, fresh: bool, log: Log) -> BenchDatabase:
    """A bench database for ``backend`` holding ``calls`` synthetic calls from ``seed``."""
    if backend == "sqlite":
        return _prepare_sqlite(calls=calls, seed=seed, fresh=fresh, log=log)
    if backend == "postgresql":
        return _prepare_postgres(calls=calls, seed=seed, fresh=fresh, log=log)
    raise ValueError(f"unknown backend {backend!r}: use {', '.join(BACKENDS)}")


# ---------------------------------------------------------------------------------------------
# SQLite


def _prepare_sqlite(*, calls: int, seed: int, fresh: bool, log: Log) -> BenchDatabase:
    import sqlite3

    url = f"sqlite:///{SQLITE_PATH}"
    dataset = None
    if SQLITE_PATH.exists() and not fresh:
        dataset = _matching_marker(url, calls=calls, seed=seed)
    reused = dataset is not None
    if reused:
        _upgrade(url, log)
    if dataset is None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{SQLITE_PATH}{suffix}").unlink(missing_ok=True)
        dataset = _load(url, calls=calls, seed=seed, log=log)
    size = sum(
        Path(f"{SQLITE_PATH}{suffix}").stat().st_size
        for suffix in ("", "-wal")
        if Path(f"{SQLITE_PATH}{suffix}").exists()
    )
    return BenchDatabase("sqlite", url, dataset, reused, size, f"SQLite {sqlite3.sqlite_version}")


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def postgres_admin_url() -> sa.URL:
    """The admin connection (``BENCH_POSTGRES_URL``), with the psycopg 3 driver named."""
    raw = os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES_ADMIN_URL)
    for prefix in ("postgresql://", "postgres://"):
        if raw.startswith(prefix):
            raw = "postgresql+psycopg://" + raw[len(prefix) :]
    return sa.make_url(raw)


def _prepare_postgres(*, calls: int, seed: int, fresh: bool, log: Log) -> BenchDatabase:
    admin_url = postgres_admin_url()
    shown = admin_url.render_as_string(hide_password=True)
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            version = str(conn.exec_driver_sql("SHOW server_version").scalar_one())
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": PG_DATABASE}
            ).first()
    except Exception as exc:  # any failure to reach the server means "skip PostgreSQL"
        admin.dispose()
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise Unavailable(
            f"PostgreSQL not reachable at {shown} ({type(exc).__name__}: {first_line}); "
            "set BENCH_POSTGRES_URL to an admin connection to include it."
        ) from exc
    url = admin_url.set(database=PG_DATABASE).render_as_string(hide_password=False)
    try:
        dataset = None
        if exists and not fresh:
            dataset = _matching_marker(url, calls=calls, seed=seed)
        reused = dataset is not None
        if reused:
            _upgrade(url, log)
        if dataset is None:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
                conn.exec_driver_sql(f'CREATE DATABASE "{PG_DATABASE}"')
            dataset = _load(url, calls=calls, seed=seed, log=log)
    finally:
        admin.dispose()
    db = Database(url, pool_size=1)
    try:
        with db.read() as conn:
            size = int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one())
    finally:
        db.dispose()
    return BenchDatabase("postgresql", url, dataset, reused, size, f"PostgreSQL {version}")


# ---------------------------------------------------------------------------------------------
# Shared: marker, load, ANALYZE


def _matching_marker(url: str, *, calls: int, seed: int) -> Dataset | None:
    db = Database(url, pool_size=1)
    try:
        with db.read() as conn:
            raw = conn.exec_driver_sql(f"SELECT value FROM {MARKER_TABLE} WHERE name = 'dataset'").scalar()
    except sa.exc.DBAPIError:  # no marker table: an older or interrupted load
        return None
    finally:
        db.dispose()
    if raw is None:
        return None
    try:
        dataset = Dataset(**json.loads(raw))
    except (TypeError, ValueError):
        return None
    if (dataset.format, dataset.calls, dataset.seed, dataset.days, dataset.end_ms) != (
        FORMAT,
        calls,
        seed,
        DAYS,
        END_MS,
    ):
        return None
    return dataset


def _load(url: str, *, calls: int, seed: int, log: Log) -> Dataset:
    db = Database(url, pool_size=1)
    try:
        migrate(db)
        end_ms = END_MS
        started = time.perf_counter()
        report_every = max(calls // 10, 1)
        reported = [0]

        def progress(done: int) -> None:
            # load_calls reports after every batch, and once more at the end; print each tenth once.
            if done - reported[0] >= report_every or (done == calls and reported[0] != calls):
                rate = done / max(time.perf_counter() - started, 1e-9)
                log(f"    {done:>12,} / {calls:,} calls loaded ({rate:,.0f} calls/s)")
                reported[0] = done

        with db.write() as conn:
            org_id = orgs.create_org(conn, "Bench organization")
            fleet = synthetic.create_fleet(conn, org_id, n_agents=AGENTS, n_campaigns=CAMPAIGNS, seed=seed)
            synthetic.load_calls(
                conn, org_id, fleet, calls, seed=seed, days=DAYS, end_ms=end_ms, progress=progress
            )
        insert_s = time.perf_counter() - started
        log(f"    inserted in {insert_s:,.1f} s; running ANALYZE")
        started = time.perf_counter()
        _analyze(db)
        analyze_s = time.perf_counter() - started
        with db.write() as conn:
            messages = int(conn.exec_driver_sql("SELECT count(*) FROM transcript_messages").scalar_one())
            results = int(conn.exec_driver_sql("SELECT count(*) FROM analytics_results").scalar_one())
            dataset = Dataset(
                format=FORMAT,
                calls=calls,
                seed=seed,
                days=DAYS,
                end_ms=end_ms,
                org_id=org_id,
                transcript_messages=messages,
                analytics_results=results,
                insert_s=round(insert_s, 2),
                analyze_s=round(analyze_s, 2),
            )
            conn.exec_driver_sql(
                f"CREATE TABLE {MARKER_TABLE} (name VARCHAR(32) PRIMARY KEY, value TEXT NOT NULL)"
            )
            conn.execute(
                sa.text(f"INSERT INTO {MARKER_TABLE} (name, value) VALUES ('dataset', :value)"),
                {"value": json.dumps(asdict(dataset))},
            )
        if db.is_sqlite:
            # Fold the load's WAL into the main file so that the size we report is the database's.
            _sqlite_autocommit(db, "PRAGMA wal_checkpoint(TRUNCATE)")
        log(f"    ANALYZE took {analyze_s:,.1f} s")
        return dataset
    finally:
        db.dispose()


def _upgrade(url: str, log: Log) -> None:
    """A reused database gets the migrations added since it was loaded (they may add tables
    derived from the calls), then fresh planner statistics."""
    db = Database(url, pool_size=1)
    try:
        before = current_revision(db)
        migrate(db)
        after = current_revision(db)
        if before != after:
            log(f"    migrated the reused database from {before} to {after}; running ANALYZE")
            _analyze(db)
    finally:
        db.dispose()


def _analyze(db: Database) -> None:
    """Planner statistics: without sqlite_stat1 SQLite guesses index selectivity and picks badly."""
    if db.is_sqlite:
        _sqlite_autocommit(db, "ANALYZE")
        return
    # VACUUM also sets the visibility map, which PostgreSQL needs for index-only scans (counts).
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM (ANALYZE)")


def _sqlite_autocommit(db: Database, sql: str) -> None:
    # Outside SQLAlchemy's transaction: Dispo's engine BEGINs on first use, and a checkpoint
    # cannot run inside a transaction.
    raw = db.engine.raw_connection()
    try:
        raw.driver_connection.execute(sql).fetchall()  # type: ignore[union-attr]
    finally:
        raw.close()
