"""``python -m benchmarks``: load, serve, measure, report. ``--help`` lists the knobs."""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

from benchmarks import report
from benchmarks.cases import CASES, Fixture, Sample
from benchmarks.latency import ApiClient, measure
from benchmarks.load import BACKENDS, ROOT, Unavailable, prepare
from benchmarks.machine import code_revision, describe
from benchmarks.rawsql import Recorder, Replayer
from benchmarks.server import RunningServer, start_api, start_bare
from benchmarks.throughput import compare
from dispo.store import orgs


@dataclass(frozen=True)
class Options:
    calls: int
    backends: tuple[str, ...]
    fresh: bool
    load_only: bool
    seed: int
    samples: int
    warmup: int
    seconds: float
    rounds: int
    connections: int
    cases: str | None
    output: Path


def parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Dispo's benchmarks: list latency (API vs raw SQL) and req/s; writes BENCHMARKS.md.",
    )
    parser.add_argument(
        "--calls",
        type=int,
        default=int(os.environ.get("BENCH_CALLS", "1000000")),
        help="synthetic calls to load (default: $BENCH_CALLS or 1,000,000)",
    )
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help="comma-separated: sqlite, postgresql (default: both). PostgreSQL's admin connection is "
        "$BENCH_POSTGRES_URL (default postgresql://127.0.0.1:5432/test).",
    )
    parser.add_argument("--fresh", action="store_true", help="reload the bench databases even if they match")
    parser.add_argument(
        "--load-only",
        action="store_true",
        help="prepare the bench databases, measure nothing, write no report",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic data (default 1)")
    parser.add_argument("--samples", type=int, default=200, help="timed requests per case (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per case first (default 20)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per throughput round (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per target (default 3)")
    parser.add_argument("--connections", type=int, default=16, help="throughput connections (default 16)")
    parser.add_argument("--cases", help="only cases whose name contains this text (for quick checks)")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "BENCHMARKS.md", help="report file (default BENCHMARKS.md)"
    )
    args = parser.parse_args(argv)
    backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        parser.error(f"--backends takes {', '.join(BACKENDS)}; got {args.backends!r}")
    if args.calls < 1000:
        parser.error("--calls must be at least 1000: the cases page deep into the data")
    if args.samples < 1 or args.warmup < 0:
        parser.error("--samples must be at least 1 and --warmup at least 0")
    return Options(
        calls=args.calls,
        backends=backends,
        fresh=args.fresh,
        load_only=args.load_only,
        seed=args.seed,
        samples=args.samples,
        warmup=args.warmup,
        seconds=args.seconds,
        rounds=args.rounds,
        connections=args.connections,
        cases=args.cases,
        output=args.output,
    )


def log(line: str) -> None:
    print(line, flush=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["dialer"]:  # `python -m benchmarks dialer`: only the dialer's throughput
        from benchmarks import dialer

        return dialer.main(argv[1:])
    if argv[:1] == ["callsio"]:  # `python -m benchmarks callsio`: imports, search, metrics, exports
        from benchmarks import callsio

        return callsio.main(argv[1:])
    if argv[:1] == ["dashboard"]:  # `python -m benchmarks dashboard`: only the dashboard's pages
        from benchmarks import dashboard

        return dashboard.main(argv[1:])
    opts = parse_args(argv)
    run = report.Report(
        started=report.now(),
        command=shlex.join(["python", "-m", "benchmarks", *argv]) if argv else "make bench",
        calls=opts.calls,
        seed=opts.seed,
        samples=opts.samples,
        warmup=opts.warmup,
        machine=describe(),
    )
    m = run.machine
    log(
        f"Dispo benchmarks: {opts.calls:,} calls; {m.cpu}, {m.cores} cores, {m.ram_gib:.0f} GiB, Python {m.python}"
    )
    failed = False
    for backend in opts.backends:
        result = report.BackendReport(backend)
        run.backends.append(result)
        log(f"\n== {result.title} ==")
        try:
            bench_backend(result, opts)
        except Unavailable as exc:
            result.skipped = str(exc)
            log(f"  skipped: {exc}")
        except Exception as exc:  # keep the other backend's figures; the report says what broke
            failed = True
            result.failed = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        if not opts.load_only:
            # Written after every backend, so a later failure never loses finished figures.
            report.write(run, opts.output)
    if opts.load_only:
        return 1 if failed else 0
    log("\n== Targets ==")
    for line in report.verdicts(run):
        log("  " + line.replace("**", ""))
    log(f"\nWrote {opts.output}")
    log("\n== Dialer throughput ==")
    from benchmarks import dialer

    try:
        dialer.run(1000, 4, (1, 8, 32), opts.output, "make bench")
    except Exception:
        failed = True
        traceback.print_exc()
    from benchmarks import dashboard

    try:
        if dashboard.run(opts.calls, opts.backends, opts.output, "make bench", seed=opts.seed):
            log("  the dashboard missed a target: see the dashboard section of BENCHMARKS.md")
    except Exception:
        failed = True
        traceback.print_exc()
    log("\n== Calls in and out ==")
    from benchmarks import callsio

    try:
        callsio.run(int(os.environ.get("BENCH_IO_CALLS", "20000")), opts.backends, 100, opts.output)
    except Exception:
        failed = True
        traceback.print_exc()
    return 1 if failed else 0


def bench_backend(result: report.BackendReport, opts: Options) -> None:
    log(f"  preparing the bench database ({opts.calls:,} calls, seed {opts.seed})")
    bench = prepare(result.backend, calls=opts.calls, seed=opts.seed, fresh=opts.fresh, log=log)
    result.database = bench
    ds = bench.dataset
    log(
        f"  {bench.server_version}; {'reused' if bench.reused else 'loaded'}: {ds.calls:,} calls, "
        f"{ds.transcript_messages:,} transcript messages, {bench.size_bytes / 2**30:.2f} GiB; "
        f"load {ds.load_s:,.0f} s (insert {ds.insert_s:,.0f} s + ANALYZE {ds.analyze_s:,.0f} s)"
    )
    if opts.load_only:
        return
    db = bench.open()
    try:
        with db.write() as conn:
            fixture = Fixture.from_database(conn, ds.org_id, seed=opts.seed)
            key = orgs.create_key(conn, ds.org_id, name="bench")
        recorder = Recorder(db, ds.org_id)
        replayer = Replayer.open(db)
        try:
            result.code = code_revision()
            with start_api(bench.url) as api:
                client = ApiClient(api.port, key.secret)
                try:
                    _latency(result, opts, fixture, client, recorder, replayer)
                    _throughput(result, opts, fixture, client, api, key.secret)
                finally:
                    client.close()
        finally:
            replayer.close()
    finally:
        db.dispose()


def _latency(
    result: report.BackendReport,
    opts: Options,
    fixture: Fixture,
    client: ApiClient,
    recorder: Recorder,
    replayer: Replayer,
) -> None:
    cases = [c for c in CASES if opts.cases is None or opts.cases.lower() in c.name.lower()]
    log(f"\n  Latency, ms: {opts.samples} samples per case after {opts.warmup} warm-up")
    log(report.case_header())
    for case in cases:
        r = measure(
            case,
            fixture,
            client,
            recorder,
            replayer,
            samples=opts.samples,
            warmup=opts.warmup,
            seed=opts.seed,
        )
        result.cases.append(r)
        log(report.case_line(r))


def _throughput(
    result: report.BackendReport,
    opts: Options,
    fixture: Fixture,
    client: ApiClient,
    api: RunningServer,
    api_key: str,
) -> None:
    rng = random.Random(opts.seed)
    ids = [rng.choice(fixture.call_ids) for _ in range(2000)]
    # The bare endpoint answers with a real call's response of median size, so both move alike bytes.
    bodies = sorted((client.request(Sample("get", call_id=i))[1] for i in ids[:51]), key=len)
    payload = json.loads(bodies[len(bodies) // 2])
    api_bytes = sum(len(b) for b in bodies) // len(bodies)
    bare_bytes = len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())
    log(
        f"\n  Throughput: {opts.connections} connections, {opts.seconds:g} s x {opts.rounds} rounds per target"
    )
    with tempfile.TemporaryDirectory(prefix="dispo-bench-") as tmp:
        payload_file = Path(tmp) / "payload.json"
        payload_file.write_text(json.dumps(payload))
        with start_bare(payload_file) as bare:
            result.throughput = compare(
                api,
                bare,
                [f"/api/v1/conversation/{i}" for i in ids],
                api_key,
                api_bytes=api_bytes,
                bare_bytes=bare_bytes,
                rounds=opts.rounds,
                seconds=opts.seconds,
                connections=opts.connections,
                log=log,
            )
    for line in report.throughput_lines(result.throughput):
        log(line)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
