"""Whole-call analytics latency: a call's metrics and summary together, before and after the shared
prompt prefix, at one and at two model threads.

``python -m benchmarks.wholecall`` runs every combination on each dialogue of the extraction file
(``../shared/eval/extraction.jsonl`` by default: its metrics, and the default summary prompt), one
after the other and in a rotating order, so that the machine's noise falls on all of them alike:

- **before**: the metrics, then the summary, as :func:`dispo.analytics.engine.analyze` ran them
  before: BOOLEANs last, but ENUMs with yes and no choices (also asked of an excerpt) among the
  questions asked of the whole call, and the summary after them all, so that it evaluates the
  transcript again;
- **after**: :func:`~dispo.analytics.engine.analyze`: the questions asked of the whole call, the
  summary on the same cached prefix, then the yes/no questions.

Each model has its own process-wide cache, emptied before every run (:meth:`LocalBackend.forget`),
so no run starts warm from another's transcript. It prints p50/p95 per combination and the
after/before ratio, and writes the "whole-call" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import sections
from benchmarks.machine import describe
from dispo.analytics import engine
from dispo.analytics.config import AnalyticsConfig
from dispo.evaluation.dataset import ExtractionRecord, load_dataset
from dispo.evaluation.harness import call_start, percentile
from dispo.llm.local import LocalBackend, default_model_path

ROOT = Path(__file__).resolve().parent.parent
SECTION = "whole-call"
ORDERS = ("before", "after")
THREADS = (1, 2)
P50_TARGET_MS = 3000.0
P95_TARGET_MS = 6000.0


def before(backend: LocalBackend, record: ExtractionRecord) -> None:
    """The old order: the metrics, BOOLEANs last but yes/no ENUMs in place, then the summary."""
    config = AnalyticsConfig(None, record.metrics)
    for metric in sorted(record.metrics, key=lambda m: m.type == "BOOLEAN"):
        engine.extract(backend, record.transcript, [metric], call_start(record))
    engine.summarize(backend, record.transcript, config.summary_prompt)


def after(backend: LocalBackend, record: ExtractionRecord) -> None:
    engine.analyze(backend, record.transcript, AnalyticsConfig(None, record.metrics), call_start(record))


RUNS: dict[str, Callable[[LocalBackend, ExtractionRecord], None]] = {"before": before, "after": after}


@dataclass
class Series:
    order: str
    threads: int
    ms: list[float] = field(default_factory=list)

    def p(self, q: float) -> float:
        value = percentile(self.ms, q)
        assert value is not None
        return value


def measure(records: Sequence[ExtractionRecord], threads: Sequence[int]) -> list[Series]:
    models = {n: LocalBackend(default_model_path(), n_threads=n) for n in threads}
    series = [Series(o, n) for n in threads for o in ORDERS]
    for i, record in enumerate(records):
        # Rotate which combination goes first, so none always runs on a cooler machine.
        for s in series[i % len(series) :] + series[: i % len(series)]:
            backend = models[s.threads]
            backend.forget()
            started = time.perf_counter()
            RUNS[s.order](backend, record)
            s.ms.append((time.perf_counter() - started) * 1000)
        if (i + 1) % 10 == 0:
            print(f"  {i + 1}/{len(records)} dialogues", flush=True)
    for model in models.values():
        model.close()
    return series


def markdown(series: Sequence[Series], command: str, dialogues: int, seconds: float) -> str:
    machine = describe()
    by = {(s.order, s.threads): s for s in series}
    out = [
        "## Whole-call analytics latency",
        "",
        f"`{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} ({machine.cpu}, "
        f"{machine.cores} cores, Python {machine.python}, Dispo {machine.code}); {dialogues} dialogues "
        f"of the extraction file, each with its metrics and the default summary prompt; every "
        f"combination on every dialogue in a rotating order, the model's cache emptied before each "
        f"run; {seconds:.0f} s in all. Method: the module's docstring.",
        "",
        "| order | threads | p50 ms | p95 ms | mean ms | p50 after / before |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for s in series:
        ratio = s.p(50) / by[("before", s.threads)].p(50)
        out.append(
            f"| {s.order} | {s.threads} | {s.p(50):,.0f} | {s.p(95):,.0f} | "
            f"{statistics.fmean(s.ms):,.0f} | {ratio:.2f} |"
        )
    out += ["", "### Targets", ""]
    for s in series:
        if s.order != "after":
            continue
        ok50, ok95 = s.p(50) <= P50_TARGET_MS, s.p(95) <= P95_TARGET_MS
        out.append(
            f"- {'✓' if ok50 and ok95 else '✗'} whole call at {s.threads} thread(s): p50 {s.p(50):,.0f} ms "
            f"(target ≤ {P50_TARGET_MS:,.0f}), p95 {s.p(95):,.0f} ms (target ≤ {P95_TARGET_MS:,.0f})"
        )
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.wholecall", description=__doc__.splitlines()[0]
    )
    parser.add_argument("data", nargs="?", type=Path, default=ROOT.parent / "shared/eval/extraction.jsonl")
    parser.add_argument("--limit", type=int, default=40, help="dialogues (default 40)")
    parser.add_argument("--threads", default="1,2", help="model thread counts to compare (default 1,2)")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md", help="default BENCHMARKS.md")
    args = parser.parse_args(argv)
    records = load_dataset(args.data, limit=args.limit).extraction
    started = time.perf_counter()
    series = measure(records, [int(n) for n in args.threads.split(",")])
    for s in series:
        print(f"{s.order:>6}, {s.threads} thread(s): p50 {s.p(50):,.0f} ms, p95 {s.p(95):,.0f} ms")
    command = shlex.join(["python", "-m", "benchmarks.wholecall", *argv])
    sections.put(args.output, SECTION, markdown(series, command, len(records), time.perf_counter() - started))
    print(f"Wrote the {SECTION} section of {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
