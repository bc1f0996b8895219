"""Dashboard pages: server time of the call log's first page and of the overview.

``python -m benchmarks dashboard [--calls N] [--backends sqlite,postgresql] [--samples N]`` (also a
part of ``make bench``) serves the bench database (benchmarks/load.py: 1,000,000 calls over the
90 days before 2026-01-01 by default) with the real app in its own process, logs in through the
login form, and reads each page's ``Server-Timing`` header (time inside the app, as the API's
benchmarks do). Targets (issue 13): the log's first page under 200 ms, the overview under 500 ms.

Pages measured:

* the call log's first page, unfiltered (25 calls, newest first), and filtered to one agent (which
  adds a column per metric of its config);
* the overview of the last 7 days of the data (its default range), all agents and one agent;
* the overview of the last 30 days, for information (its averages read 4x the calls).

It writes the "dashboard" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from benchmarks import sections
from benchmarks.load import BACKENDS, END_MS, ROOT, Unavailable, prepare
from benchmarks.machine import describe
from benchmarks.server import start_api
from dispo.store import agents as agent_store
from dispo.store import orgs

SECTION = "dashboard"
TARGETS_MS = {"log": 200.0, "overview": 500.0}
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_TIMING = re.compile(r"app;dur=([0-9.]+)")


@dataclass(frozen=True)
class Result:
    backend: str
    page: str
    kind: str  # "log" or "overview": which target applies
    path: str
    samples: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def log(line: str) -> None:
    print(line, flush=True)


def pages(agent_id: str) -> list[tuple[str, str, str]]:
    """``(name, target kind, path)`` of every page measured; the overview ends where the data ends."""
    last_day = (datetime.fromtimestamp(END_MS / 1000, UTC) - timedelta(days=1)).date().isoformat()
    return [
        ("log, first page", "log", "/dashboard/calls"),
        ("log, first page, one agent", "log", f"/dashboard/calls?agentIds={agent_id}"),
        ("overview, 7 days", "overview", f"/dashboard/overview?days=7&to={last_day}"),
        (
            "overview, 7 days, one agent",
            "overview",
            f"/dashboard/overview?days=7&to={last_day}&agentId={agent_id}",
        ),
        ("overview, 30 days (information)", "info", f"/dashboard/overview?days=30&to={last_day}"),
    ]


def login(client: httpx.Client, key: str) -> None:
    token = _TOKEN.search(client.get("/dashboard/login").text)
    assert token, "the login page has no CSRF token"
    r = client.post("/dashboard/login", data={"api_key": key, "csrf_token": token.group(1)})
    if r.status_code not in (200, 303):
        raise RuntimeError(f"login failed: {r.status_code} {r.text[:200]}")


def server_ms(client: httpx.Client, path: str) -> float:
    r = client.get(path)
    if r.status_code != 200:
        raise RuntimeError(f"GET {path}: {r.status_code} {r.text[:300]}")
    match = _TIMING.search(r.headers.get("server-timing", ""))
    if match is None:
        raise RuntimeError(f"GET {path} has no Server-Timing header")
    return float(match.group(1))


def bench_backend(backend: str, calls: int, seed: int, samples: int, warmup: int) -> list[Result]:
    bench = prepare(backend, calls=calls, seed=seed, fresh=False, log=lambda line: log("  " + line))
    db = bench.open()
    try:
        with db.write() as conn:
            key = orgs.create_key(conn, bench.dataset.org_id, name="bench-dashboard")
            agents, _ = agent_store.list_agents(conn, bench.dataset.org_id, limit=1, offset=0)
    finally:
        db.dispose()
    results = []
    with (
        start_api(bench.url) as api,
        httpx.Client(base_url=f"http://127.0.0.1:{api.port}", timeout=120) as client,
    ):
        login(client, key.secret)
        for name, kind, path in pages(agents[0]["id"]):
            for _ in range(warmup):
                server_ms(client, path)
            result = Result(backend, name, kind, path, [server_ms(client, path) for _ in range(samples)])
            results.append(result)
            log(f"  {name:<34} p50 {result.p50:8.1f} ms   p95 {result.p95:8.1f} ms")
    return results


def render(results: list[Result], skipped: dict[str, str], calls: int, command: str) -> str:
    m = describe()
    lines = [
        "## Dashboard pages",
        "",
        f"`{command}`: {calls:,} synthetic calls; {m.cpu}, {m.cores} cores, Python {m.python}. Server time "
        "(`Server-Timing`) of each page, logged in through the form; targets: the log's first page "
        f"< {TARGETS_MS['log']:.0f} ms, the overview < {TARGETS_MS['overview']:.0f} ms (benchmarks/dashboard.py).",
        "",
        "| database | page | p50 ms | p95 ms | target | met (p95) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in results:
        target = TARGETS_MS.get(r.kind)
        met = "—" if target is None else ("yes" if r.p95 < target else "**no**")
        shown = "—" if target is None else f"< {target:.0f}"
        lines.append(f"| {r.backend} | {r.page} | {r.p50:.1f} | {r.p95:.1f} | {shown} | {met} |")
    for backend, why in skipped.items():
        lines.append(f"| {backend} | skipped: {why} | | | | |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks dashboard", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--calls", type=int, default=int(os.environ.get("BENCH_CALLS", "1000000")))
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    return run(
        args.calls,
        tuple(b for b in args.backends.split(",") if b),
        args.output,
        shlex.join(["python", "-m", "benchmarks", "dashboard", *argv]),
        seed=args.seed,
        samples=args.samples,
        warmup=args.warmup,
    )


def run(
    calls: int,
    backends: tuple[str, ...],
    output: Path,
    command: str,
    *,
    seed: int = 1,
    samples: int = 30,
    warmup: int = 3,
) -> int:
    log(f"\n== Dashboard pages ({calls:,} calls) ==")
    results: list[Result] = []
    skipped: dict[str, str] = {}
    for backend in backends:
        log(f"  {backend}")
        try:
            results += bench_backend(backend, calls, seed, samples, warmup)
        except Unavailable as exc:
            skipped[backend] = str(exc)
            log(f"  skipped: {exc}")
    sections.put(output, SECTION, render(results, skipped, calls, command))
    log(f"  wrote the {SECTION} section of {output}")
    missed = [r for r in results if r.kind in TARGETS_MS and r.p95 >= TARGETS_MS[r.kind]]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
