"""Calls in and out: import rate, export rate and memory, transcript-search and metric latency.

``python -m benchmarks callsio [--calls N] [--backends sqlite,postgresql]`` (also a part of
``make bench``, with ``BENCH_IO_CALLS`` calls, 20,000 by default) runs, on a fresh database per
backend (SQLite in a temporary directory; PostgreSQL a scratch database on ``BENCH_POSTGRES_URL``),
the app in this process (``TestClient``: the API's validation, JSON and database work, no network):

- import: ``N`` calls through ``POST /conversation/import/batch`` in batches of 1,000 (calls/s);
- every call's analysis recorded through the worker's store path (no model), with an ENUM and an
  INTEGER metric, so the metric filters and aggregates have values to read;
- transcript search (``search=<word>``), metric filter (``metric.budget=gte:…``) and
  ``GET /analytics/metrics``: p50 and p99 over ``--samples`` requests;
- export: ``GET /conversation/export`` as CSV and JSONL, streamed and read to the end (rows/s), and
  the peak of Python's allocations while it runs (tracemalloc: the process's own memory growth is
  what stays constant as N grows).

It writes the "Calls in and out" section of BENCHMARKS.md. The issue asks for these figures at
1,000,000 calls; at the measured import rate that takes long, so ``make bench`` runs a smaller N
unless ``BENCH_IO_CALLS`` says otherwise, and the section says which N it measured.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from benchmarks import sections
from benchmarks.load import postgres_admin_url
from dispo.api.app import create_app
from dispo.config import Settings
from dispo.store import analytics_jobs, orgs
from dispo.store.database import Database
from dispo.store.migrate import migrate
from dispo.store.tables import calls
from dispo.timeutil import now_ms

ROOT = Path(__file__).resolve().parent.parent
SECTION = "calls-io"
WORDS = ("refund", "brochure", "roof", "budget", "friday", "warranty", "email", "survey")
LINES = (
    "I would like a refund for the broken panel",
    "Can you send the brochure by email",
    "We are planning a new roof next spring",
    "My budget is around five thousand dollars",
    "Please call me back on Friday afternoon",
    "Does the warranty cover storms",
    "A site survey next week works for me",
)


def _call(i: int, rng: random.Random) -> dict[str, Any]:
    at = now_ms() - rng.randrange(30 * 86_400_000)
    return {
        "externalId": f"bench-{i}",
        "from": f"+1415555{rng.randrange(10_000):04d}",
        "to": "+14155550199",
        "startedAt": at,
        "endedAt": at + rng.randrange(20_000, 400_000),
        "disconnectionReason": "user_hangup",
        "callCost": round(rng.random(), 3),
        "transcript": [
            {
                "role": "agent" if t % 2 == 0 else "user",
                "content": rng.choice(LINES),
                "timestamp": at + t * 4000,
            }
            for t in range(rng.randrange(4, 16))
        ],
    }


@contextmanager
def _database(backend: str, tmp: Path) -> Iterator[Database]:
    if backend == "sqlite":
        db = Database(f"sqlite:///{tmp / 'io.db'}")
        try:
            yield db
        finally:
            db.dispose()
        return
    admin = sa.create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    name = f"dispo_bench_io_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    db = Database(postgres_admin_url().set(database=name).render_as_string(hide_password=False))
    try:
        yield db
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()


def _timed(samples: int, request: Callable[[int], Any]) -> tuple[float, float]:
    """p50 and p99 of ``request(i)``, in milliseconds."""
    for i in range(min(5, samples)):
        request(i)  # warm-up
    times = []
    for i in range(samples):
        start = time.perf_counter()
        request(i)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def _analyse_all(db: Database, rng: random.Random) -> None:
    with db.read() as conn:
        pks = [int(pk) for (pk,) in conn.execute(sa.select(calls.c.pk))]
    now = now_ms()
    for start in range(0, len(pks), 2000):
        with db.write() as conn:
            for pk in pks[start : start + 2000]:
                claim = analytics_jobs.claim(conn, pk, now)
                assert claim is not None
                metrics = [
                    {
                        "identifier": "user_interested",
                        "type": "ENUM",
                        "value": rng.choice(("yes", "no", "unclear")),
                    },
                    {"identifier": "budget", "type": "INTEGER", "value": rng.randrange(0, 20_000)},
                ]
                analytics_jobs.complete(
                    conn,
                    claim,
                    config_id=None,
                    config_version=None,
                    summary="bench",
                    disposition_metrics=metrics,
                    model="bench",
                    duration_ms=None,
                    model_ms=None,
                    now=now,
                )


def _refresh_statistics(db: Database) -> None:
    """ANALYZE after the bulk load, as the main bench does (benchmarks/load.py): right after
    inserting thousands of rows PostgreSQL's planner still has an empty table's statistics until
    autovacuum's ANALYZE runs (within a minute), and plans the aggregates' joins badly meanwhile."""
    with db.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()


def _export(client: TestClient, fmt: str) -> tuple[int, float, float]:
    """Rows, rows/s and peak traced MiB of one streamed export."""
    tracemalloc.start()
    start = time.perf_counter()
    rows = 0
    with client.stream("GET", "/api/v1/conversation/export", params={"format": fmt}) as response:
        lines = (line + "\n" for line in response.iter_lines())
        # CSV rows span lines (the transcript column): count records, not lines.
        for _ in csv.reader(lines) if fmt == "csv" else (line for line in lines if line.strip()):
            rows += 1
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    rows -= 1 if fmt == "csv" else 0  # the header
    return rows, rows / seconds, peak


def bench(backend: str, n: int, samples: int, log: Callable[[str], None]) -> dict[str, Any]:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp, _database(backend, Path(tmp)) as db:
        migrate(db)
        with db.write() as conn:
            org_id = orgs.create_org(conn, "bench")
            key = orgs.create_key(conn, org_id, name="bench").secret
        app = create_app(Settings(data_dir=Path(tmp)), db)
        with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
            out: dict[str, Any] = {"calls": n}
            start = time.perf_counter()
            for first in range(0, n, 1000):
                body = {"calls": [_call(i, rng) for i in range(first, min(n, first + 1000))]}
                data = client.post("/api/v1/conversation/import/batch", json=body).json()["data"]
                assert data["imported"] == len(body["calls"]), data
            out["import_per_s"] = n / (time.perf_counter() - start)
            log(f"  {backend}: imported {n:,} calls at {out['import_per_s']:,.0f} calls/s")
            _analyse_all(db, rng)
            _refresh_statistics(db)
            get = client.get
            out["search"] = _timed(
                samples, lambda i: get("/api/v1/conversation", params={"search": WORDS[i % len(WORDS)]})
            )
            out["metric"] = _timed(
                samples,
                lambda i: get("/api/v1/conversation", params={"metric.budget": f"gte:{(i * 997) % 20_000}"}),
            )
            out["metric_enum"] = _timed(
                samples, lambda i: get("/api/v1/conversation", params={"metric.user_interested": "yes"})
            )
            out["aggregate"] = _timed(max(5, samples // 10), lambda i: get("/api/v1/analytics/metrics"))
            for fmt in ("csv", "jsonl"):
                out[fmt] = _export(client, fmt)
            log(f"  {backend}: {out}")
            return out


def render(results: dict[str, dict[str, Any]], n: int, samples: int) -> str:
    lines = [
        "## Calls in and out (imports, search, metric queries, exports)",
        "",
        f"`python -m benchmarks callsio --calls {n}`: {n:,} imported calls per backend, in process "
        f"(TestClient), {samples} requests per latency figure. Search, metric filters: "
        "`GET /conversation` (first page, with the total); aggregate: `GET /analytics/metrics`.",
        "",
        "| | " + " | ".join(results) + " |",
        "|---|" + "---|" * len(results),
    ]

    def row(label: str, cell: Callable[[dict[str, Any]], str]) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(r) for r in results.values()) + " |")

    row("import (calls/s, batches of 1,000)", lambda r: f"{r['import_per_s']:,.0f}")
    for key, label in (
        ("search", "transcript search p50 / p99 (ms)"),
        ("metric", "metric.budget=gte:… p50 / p99 (ms)"),
        ("metric_enum", "metric.user_interested=yes p50 / p99 (ms)"),
        ("aggregate", "/analytics/metrics p50 / p99 (ms)"),
    ):
        row(label, lambda r, k=key: f"{r[k][0]:.1f} / {r[k][1]:.1f}")
    for fmt in ("csv", "jsonl"):
        row(f"export {fmt} (rows/s; peak traced MiB)", lambda r, f=fmt: f"{r[f][1]:,.0f}; {r[f][2]:.1f}")
    return "\n".join(lines) + "\n"


def run(n: int, backends: tuple[str, ...], samples: int, output: Path) -> dict[str, dict[str, Any]]:
    results = {}
    for backend in backends:
        try:
            results[backend] = bench(backend, n, samples, lambda line: print(line, flush=True))
        except sa.exc.OperationalError as exc:
            print(f"  {backend}: skipped ({str(exc).splitlines()[0]})", flush=True)
    if results:
        sections.put(output, SECTION, render(results, n, samples))
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks callsio", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=int(os.environ.get("BENCH_IO_CALLS", "20000")))
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    backends = tuple(b for b in args.backends.split(",") if b)
    return 0 if run(args.calls, backends, args.samples, args.output) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
