"""Dispo's benchmark: list latency (API vs raw SQL) and request throughput, on SQLite and PostgreSQL.

Run with ``make bench`` or ``python -m benchmarks --help``. It loads synthetic calls into a bench
database per backend (reused while the call count and seed match), starts the real server, times
every list case server-side and as raw SQL, compares req/s with a bare Starlette endpoint, and
writes ``BENCHMARKS.md`` from what it measured.
"""
