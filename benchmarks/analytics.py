"""``python -m benchmarks.analytics REPORT.json…``: write the "Analytics evaluation" section of BENCHMARKS.md.

``make eval`` runs ``dispo eval`` on the evaluation files (reports under ``eval-reports/``), then this.
Only the section between its markers is replaced (or appended the first time); the rest of the file,
written by ``make bench``, is left as it is, and ``make bench`` keeps this section in turn.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.machine import describe
from dispo.evaluation.report import markdown, replace_section

ROOT = Path(__file__).resolve().parent.parent
ORDER = {"extraction": 0, "summaries": 1}
STRATEGY_ORDER = {"engine": 0, "naive": 1}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.analytics", description=__doc__)
    parser.add_argument("reports", nargs="+", type=Path, help="JSON reports written by `dispo eval --report`")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md", help="default BENCHMARKS.md")
    args = parser.parse_args(argv)
    reports = []
    for path in args.reports:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            parser.error(f"{path}: not a readable JSON report ({exc})")
        if not isinstance(data, dict) or data.get("kind") not in ORDER:
            parser.error(f"{path}: not a `dispo eval` report")
        reports.append(data)
    reports.sort(key=lambda r: (ORDER[r["kind"]], STRATEGY_ORDER.get(r["strategy"], 9)))
    m = describe()
    section = markdown(
        reports,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        machine=f"{m.cpu}, {m.cores} cores, Python {m.python}, Dispo {m.code}",
    )
    old = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
    args.output.write_text(replace_section(old, section), encoding="utf-8")
    print(f"Wrote the Analytics evaluation section of {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
