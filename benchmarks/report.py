"""Tables for the terminal and ``BENCHMARKS.md``, and the verdict on each target, from measurements."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import sections
from benchmarks.latency import CaseResult
from benchmarks.load import BenchDatabase
from benchmarks.machine import Machine
from benchmarks.throughput import Round, Throughput
from dispo.evaluation.report import keep_section
from dispo.timeutil import ms_to_iso

# The targets, as the project states them.
P50_MS = 5.0
P99_MS = 25.0
TARGET_CALLS = 1_000_000  # the latency targets are stated for this many calls, on SQLite
MAX_RATIO = 1.5  # API p50 / raw SQL p50
MIN_THROUGHPUT = 0.5  # API req/s / bare endpoint req/s

NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


@dataclass
class BackendReport:
    backend: str
    database: BenchDatabase | None = None
    cases: list[CaseResult] = field(default_factory=list)
    throughput: Throughput | None = None
    code: str = ""  # the Dispo revision its server ran: others may change the code during a run
    skipped: str | None = None  # why this backend has no figures
    failed: str | None = None  # the error that stopped it part-way

    @property
    def title(self) -> str:
        return NAMES.get(self.backend, self.backend)


@dataclass
class Report:
    started: datetime
    command: str
    calls: int
    seed: int
    samples: int
    warmup: int
    machine: Machine
    backends: list[BackendReport] = field(default_factory=list)


def mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def meets_latency(r: CaseResult) -> bool:
    return r.api_p50 <= P50_MS and r.api_p99 <= P99_MS


def meets_ratio(r: CaseResult) -> bool:
    return r.ratio <= MAX_RATIO


# ---------------------------------------------------------------------------------------------
# Terminal


CASE_WIDTH = 40


def case_header() -> str:
    return (
        f"  {'case':<{CASE_WIDTH}} {'API p50':>8} {'API p99':>8} {'raw p50':>8} {'ratio':>6}"
        f"  {'p50≤5/p99≤25':>12} {'rows':>6} {'secs':>5}"
    )


def case_line(r: CaseResult) -> str:
    return (
        f"  {r.name:<{CASE_WIDTH}} {r.api_p50:>8.2f} {r.api_p99:>8.2f} {r.raw_p50:>8.2f} {r.ratio:>5.2f}x"
        f"  {mark(meets_latency(r)):>12} {r.mean_rows:>6.0f} {r.seconds:>5.0f}"
    )


def throughput_lines(t: Throughput) -> list[str]:
    return [
        f"  GET /conversation/{{id}}: {t.api_rps:,.0f} req/s   bare Starlette: {t.bare_rps:,.0f} req/s"
        f"   ratio {t.ratio:.0%} (target ≥ {MIN_THROUGHPUT:.0%}) {mark(t.ratio >= MIN_THROUGHPUT)}",
        f"  load generator peak CPU {t.client_cpu:.0%} of a core; errors {t.errors}",
    ]


# ---------------------------------------------------------------------------------------------
# Verdicts


def verdicts(run: Report) -> list[str]:
    """One sentence per target and backend, computed from the figures."""
    lines: list[str] = []
    for b in run.backends:
        if b.skipped:
            lines.append(f"**{b.title}**: not measured ({b.skipped}).")
            continue
        if not b.cases:
            lines.append(f"**{b.title}**: no figures ({b.failed or 'no case ran'}).")
            continue
        misses = [r for r in b.cases if not meets_latency(r)]
        scope = "the stated target" if b.backend == "sqlite" else "the SQLite target, applied for comparison"
        at = f"at {run.calls:,} calls"
        if run.calls != TARGET_CALLS:
            at += f" (the target is stated at {TARGET_CALLS:,}; this run is not a verdict on it)"
        if misses:
            names = "; ".join(f"{r.name} ({r.api_p50:.1f} / {r.api_p99:.1f} ms)" for r in misses)
            lines.append(
                f"**{b.title} latency, p50 ≤ {P50_MS:g} ms and p99 ≤ {P99_MS:g} ms** ({scope}) {at}: "
                f"**missed** in {len(misses)} of {len(b.cases)} cases: {names}."
            )
        else:
            lines.append(
                f"**{b.title} latency, p50 ≤ {P50_MS:g} ms and p99 ≤ {P99_MS:g} ms** ({scope}) {at}: "
                f"**met** in all {len(b.cases)} cases."
            )
        over = [r for r in b.cases if not meets_ratio(r)]
        if over:
            names = "; ".join(f"{r.name} ({r.ratio:.2f}x)" for r in over)
            lines.append(
                f"**{b.title} API ≤ {MAX_RATIO:g} x raw SQL (p50)**: **missed** in {len(over)} of "
                f"{len(b.cases)} cases: {names}."
            )
        else:
            lines.append(
                f"**{b.title} API ≤ {MAX_RATIO:g} x raw SQL (p50)**: **met** in all {len(b.cases)} cases."
            )
        t = b.throughput
        if t is not None:
            verdict = "met" if t.ratio >= MIN_THROUGHPUT else "missed"
            lines.append(
                f"**{b.title} throughput ≥ {MIN_THROUGHPUT:.0%} of the bare endpoint**: **{verdict}**: "
                f"{t.api_rps:,.0f} vs {t.bare_rps:,.0f} req/s ({t.ratio:.0%})."
            )
        if b.failed:
            lines.append(f"**{b.title}** stopped part-way: {b.failed}.")
    return lines


# ---------------------------------------------------------------------------------------------
# BENCHMARKS.md


def markdown(run: Report) -> str:
    m = run.machine
    out: list[str] = [
        "# Benchmarks",
        "",
        f"Generated by `{run.command}` on {run.started:%Y-%m-%d %H:%M} UTC. Every figure below was "
        "measured in that run; run `make bench` again to regenerate this file.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {m.cpu}, {m.cores} cores |",
        f"| RAM | {m.ram_gib:.1f} GiB |",
        f"| OS | {m.os} |",
        f"| Python | {m.python} |",
        f"| SQLite | {m.sqlite} |",
    ]
    code_row = f"| Dispo code | {m.code} |"
    for b in run.backends:
        if b.backend == "postgresql" and b.database is not None:
            out.append(f"| PostgreSQL | {b.database.server_version.removeprefix('PostgreSQL ')} |")
    out += [f"| Packages | {m.packages} |", code_row, ""]

    out += ["## Data", ""]
    loaded = [b for b in run.backends if b.database is not None]
    if loaded:
        d = loaded[0].database
        assert d is not None
        ds = d.dataset
        out += [
            f"{ds.calls:,} synthetic calls (`dispo.store.synthetic`, seed {ds.seed}) over {ds.days} days "
            f"ending {ms_to_iso(ds.end_ms)}, 5 agents, 12 campaigns, one organization; connected calls "
            "carry a 10-40 turn transcript, completed ones an analytics result. The generator seeds "
            "by organization as well, so each backend holds its own draw of the same distribution.",
            "",
            "| backend | transcript messages | analytics results | load time (insert + ANALYZE) | database size |",
            "|---|--:|--:|---|--:|",
        ]
        for b in loaded:
            assert b.database is not None
            ds = b.database.dataset
            note = " (loaded by an earlier run, reused)" if b.database.reused else ""
            out.append(
                f"| {b.title} | {ds.transcript_messages:,} | {ds.analytics_results:,} "
                f"| {ds.load_s:,.0f} s ({ds.insert_s:,.0f} s + {ds.analyze_s:,.0f} s){note} "
                f"| {b.database.size_bytes / 2**30:,.2f} GiB |"
            )
        out.append("")
    else:
        out += ["No database was loaded.", ""]

    out += [
        "## Method",
        "",
        f"- **API p50 / p99**: the server's own time, read from the `Server-Timing: app;dur=` header "
        f"of each response (routing, API-key lookup, database, rendering, JSON; not the network), "
        f"over {run.samples} requests per case after {run.warmup} warm-up requests, sent one at a time "
        "to the real app (uvicorn, one worker, in its own process).",
        "- **raw SQL p50**: the same requests' SQL — recorded at the driver while the store code "
        "(`parse_list_query`, `list_statements`, `count_statement`, `call_log_entry`, "
        "`call_log_entries`, …) ran once in the route's kind of read — replayed on a bare `sqlite3` / "
        "`psycopg` connection in one read transaction (none where the app reads one statement "
        "without one: a single call on PostgreSQL), fetching every row. The API request and its "
        "replay run back to back, so both see the same cache. The API key lookup is not in the raw "
        "figure: it is API work.",
        f"- **ratio** = API p50 / raw SQL p50 (target ≤ {MAX_RATIO:g}x). **p50≤5/p99≤25**: "
        f"✓ when API p50 ≤ {P50_MS:g} ms and API p99 ≤ {P99_MS:g} ms.",
        "- Samples vary where the case allows: another agent or campaign, a random date window "
        "(not aligned to midnight), other call ids, another phone prefix. **rows** is the mean "
        "number of calls per response.",
        "",
    ]
    for b in run.backends:
        out += [f"## {b.title}", ""]
        if b.skipped:
            out += [f"Not measured: {b.skipped}.", ""]
            continue
        if b.failed:
            out += [f"Stopped part-way: {b.failed}.", ""]
        if b.code and b.code != m.code:
            out += [f"This backend's server ran Dispo {b.code} (the run started on {m.code}).", ""]
        if b.cases:
            out += [
                "| case | API p50 ms | API p99 ms | raw SQL p50 ms | ratio | p50≤5 / p99≤25 | rows |",
                "|---|--:|--:|--:|--:|:-:|--:|",
            ]
            for r in b.cases:
                out.append(
                    f"| {_cell(r.name)} | {r.api_p50:.2f} | {r.api_p99:.2f} | {r.raw_p50:.2f} | "
                    f"{r.ratio:.2f}x {mark(meets_ratio(r))} | {mark(meets_latency(r))} | {r.mean_rows:.0f} |"
                )
            out.append("")
        t = b.throughput
        if t is not None:
            out += [
                f"### Throughput ({b.title})",
                "",
                f"`GET /api/v1/conversation/{{id}}` (random existing calls, {t.api_bytes:,}-byte mean "
                f"response) next to a bare Starlette `JSONResponse` endpoint ({t.bare_bytes:,} bytes, "
                f"one real call's response), both served by uvicorn the same way. Load: an asyncio "
                f"raw-socket HTTP/1.1 keep-alive client in its own process, {t.connections} connections, "
                f"{t.seconds:g} s per round after 1 s of warm-up, targets alternated, "
                f"{len(t.api)} rounds each; median shown.",
                "",
                "| endpoint | req/s (median) | rounds |",
                "|---|--:|---|",
                f"| GET /conversation/{{id}} | {t.api_rps:,.0f} | {_rounds(t.api)} |",
                f"| bare Starlette | {t.bare_rps:,.0f} | {_rounds(t.bare)} |",
                f"| **ratio** | **{t.ratio:.0%}** {mark(t.ratio >= MIN_THROUGHPUT)} | target ≥ {MIN_THROUGHPUT:.0%} |",
                "",
                f"The load generator used at most {t.client_cpu:.0%} of a core"
                f"{' (so it was not the bottleneck)' if t.client_cpu < 0.9 else ' (it may have limited the figures)'}"
                f"; {t.errors} non-200 responses.",
                "",
            ]
    out += ["## Targets", ""]
    out += [f"- {line}" for line in verdicts(run)]
    out.append("")
    return "\n".join(out)


def write(run: Report, path: Path) -> None:
    # `make eval` owns the "Analytics evaluation" section: carry it over.
    old = path.read_text() if path.exists() else ""
    # Sections benchmarks run on their own write (`python -m benchmarks dialer`) stay too.
    path.write_text(sections.keep(path, keep_section(markdown(run), old)))


def now() -> datetime:
    return datetime.now(UTC)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _rounds(rounds: list[Round]) -> str:
    return ", ".join(f"{r.rps:,.0f}" for r in rounds)
