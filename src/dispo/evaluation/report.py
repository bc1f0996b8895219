"""What ``dispo eval`` tells: the JSON report, the tables on screen, and the Markdown for BENCHMARKS.md.

The JSON report is the record: every figure, the targets and whether each is met, and each
dialogue's predictions. The tables and the Markdown are drawn from JSON reports only, so
``BENCHMARKS.md`` can be rewritten from saved reports without running the model again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from statistics import fmean
from typing import Any

from rich.console import Console
from rich.table import Table

from dispo.analytics.summary import COPY_WORDS
from dispo.evaluation.harness import CALL_START_RULE, Run, percentile
from dispo.evaluation.rouge import ROUGE_TYPES
from dispo.evaluation.scoring import calibration_scores, extraction_scores, faithfulness_scores, half

FORMAT = 1
# The targets of the analytics issues.
MIN_ACCURACY = 0.65  # extraction accuracy over all values
MIN_TYPE_ACCURACY = 0.50  # and of every type
MAX_P50_MS = 3000.0  # analytics latency per call
MIN_ABSTENTION_PRECISION = 0.80
MIN_ABSTENTION_RECALL = 0.50  # at that precision
MAX_ECE = 0.10  # expected calibration error (10 bins) of the confidences, on the held-out half
MAX_OVERHEAD = 0.10  # pipeline wall time over the model's own time
MIN_SUMMARY_GAIN = 0.40  # relative ROUGE-L gain of the engine over the naive one-line prompt
MIN_NAMES_NUMBERS = 0.95  # faithfulness: the summaries' names and numbers the transcript contains
TYPES = ("STRING", "BOOLEAN", "INTEGER", "ENUM", "DATETIME")
ROUGE_NAMES = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L"}

SECTION_START = "<!-- analytics-eval:start -->"
SECTION_END = "<!-- analytics-eval:end -->"


# ---------------------------------------------------------------------------------------------
# JSON


def build(run: Run, *, limit: int | None = None, baseline: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON report of one run; with ``baseline`` (a naive run's report), the relative gains too."""
    ds = run.dataset
    report: dict[str, Any] = {
        "format": FORMAT,
        "kind": ds.kind,
        "file": str(ds.path),
        "dialogues": run.done,
        "limit": limit,
        # Written while the run goes on (see `dispo eval --report`): the figures so far.
        **({"partial": f"{run.done} of {len(ds)} dialogues"} if run.done < len(ds) else {}),
        "strategy": run.strategy,
        "backend": run.backend_name,
        "model": run.model_id,
        "started": run.started.isoformat(timespec="seconds"),
        "elapsed_s": round(run.elapsed_s, 3),
        "latency": _latency(run),
        "errors": [{"id": i, "error": e} for i, e in run.errors],
    }
    if ds.kind == "extraction":
        report["call_start"] = CALL_START_RULE
        targets = [t for o in run.extraction for t in o.targets]
        report["extraction"] = extraction_scores(targets)
        report["extraction"]["unexpected_identifiers"] = sum(len(o.unexpected) for o in run.extraction)
        report["extraction"]["halves"] = {
            name: extraction_scores([t for t in targets if half(t.record_id) == name])["overall"]
            for name in ("fit", "held-out")
        }
        calibration = calibration_scores(targets)
        if calibration is not None:
            report["calibration"] = calibration
        report["details"] = [
            {
                "id": o.record.id,
                "wall_ms": round(o.timing.wall_ms, 1),
                "model_ms": round(o.timing.model_ms, 1),
                **({"error": o.error} if o.error else {}),
                **({"unexpected": o.unexpected} if o.unexpected else {}),
                "metrics": [t.to_json() for t in o.targets],
            }
            for o in run.extraction
        ]
    else:
        done = [o for o in run.summaries if o.error is None]
        fields = sorted({o.record.references_field for o in run.summaries})
        report["summaries"] = {
            "references_field": ", ".join(fields),
            "rouge": "F1, rouge-score tokenisation, no stemming, best of the references per ROUGE type",
            **{k: _mean([o.scores[k].fmeasure for o in done]) for k in ROUGE_TYPES},
            "words_mean": _mean([len(o.summary.split()) for o in done if o.valid]),
            "type_validity": {
                "values": len(done),
                "valid": sum(o.valid for o in done),
                "rate": sum(o.valid for o in done) / len(done) if done else None,
            },
            "faithfulness": faithfulness_scores(
                [o.faithfulness for o in done if o.faithfulness is not None],
                copied=sum(o.copied_run >= COPY_WORDS for o in done),
            ),
        }
        report["details"] = [
            {
                "id": o.record.id,
                "wall_ms": round(o.timing.wall_ms, 1),
                "model_ms": round(o.timing.model_ms, 1),
                **({"error": o.error} if o.error else {}),
                "summary": o.summary if isinstance(o.summary, str) else repr(o.summary),
                **{k: round(s.fmeasure, 4) for k, s in o.scores.items()},
                **({"faithfulness": o.faithfulness.to_json()} if o.faithfulness else {}),
                **({"copied_run": o.copied_run} if o.faithfulness else {}),
            }
            for o in run.summaries
        ]
    if baseline is not None:
        report["baseline"] = compare(report, baseline)
    report["targets"] = targets_of(report)
    return report


def _mean(values: Sequence[float]) -> float | None:
    return fmean(values) if values else None


def _latency(run: Run) -> dict[str, Any]:
    timings = run.timings
    wall = [t.wall_ms for t in timings]
    model = [t.model_ms for t in timings]
    wall_total, model_total = sum(wall), sum(model)
    return {
        "calls": len(timings),
        "p50_ms": percentile(wall, 50),
        "p95_ms": percentile(wall, 95),
        "mean_ms": _mean(wall),
        "model_p50_ms": percentile(model, 50),
        "wall_ms_total": wall_total,
        "model_ms_total": model_total,
        "model_ms_source": run.model_ms_source,
        # The pipeline's own share: (wall - model) / model.
        "overhead": (wall_total - model_total) / model_total if model_total > 0 else None,
    }


def compare(report: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """Relative gains of ``report`` over ``baseline``, both scored on the dialogues they share.

    Both reports keep every dialogue's scores, so a run on the first 20 dialogues compares fairly
    with a baseline run on the whole file.
    """
    if baseline.get("kind") != report["kind"]:
        raise ValueError(f"the baseline report is for {baseline.get('kind')}, this run is {report['kind']}")
    ours, theirs = _scored(report), _scored(baseline)
    common = [i for i in ours if i in theirs]
    if not common:
        raise ValueError("the baseline report has no dialogue in common with this run")
    out: dict[str, Any] = {
        "strategy": baseline.get("strategy"),
        "dialogues_compared": len(common),
    }
    if report["kind"] == "extraction":
        for name, answerable_only in (
            ("accuracy", False),
            ("answerable_accuracy", True),
        ):
            out[name] = _gain(
                _accuracy([ours[i] for i in common], answerable_only),
                _accuracy([theirs[i] for i in common], answerable_only),
            )
    else:
        for k in ROUGE_TYPES:
            out[k] = _gain(fmean(ours[i][k] for i in common), fmean(theirs[i][k] for i in common))
    return out


def _scored(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["id"]: d for d in report.get("details", []) if "error" not in d}


def _accuracy(details: Sequence[dict[str, Any]], answerable_only: bool) -> float | None:
    metrics = [m for d in details for m in d["metrics"] if not answerable_only or m["expected"] is not None]
    return sum(m["correct"] for m in metrics) / len(metrics) if metrics else None


def _gain(value: float | None, base: float | None) -> dict[str, Any]:
    relative = (value / base - 1) if value is not None and base else None
    return {"value": value, "baseline": base, "relative_gain": relative}


def targets_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets that this report can judge: name, target, value, met (None: cannot tell)."""
    out: list[dict[str, Any]] = []
    section = report.get("extraction") or report.get("summaries") or {}
    rate = section.get("type_validity", {}).get("rate")
    out.append(_target("type-valid values", "100%", rate, None if rate is None else rate == 1.0))
    if report["kind"] == "extraction":
        out += _extraction_targets(report)
    overhead = report["latency"]["overhead"]
    out.append(
        _target(
            "pipeline overhead over model time",
            f"≤ {MAX_OVERHEAD:.0%}",
            overhead,
            None if overhead is None else overhead <= MAX_OVERHEAD,
        )
    )
    if report["kind"] == "summaries":
        out += _faithfulness_targets(report)
    gains = report.get("baseline")
    if report["kind"] == "summaries" and gains:
        gain = gains["rougeL"]["relative_gain"]
        out.append(
            _target(
                "ROUGE-L gain over the naive prompt",
                f"≥ +{MIN_SUMMARY_GAIN:.0%}",
                gain,
                None if gain is None else gain >= MIN_SUMMARY_GAIN,
            )
        )
    return out


def _extraction_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Accuracy (overall and the worst type), abstention precision and recall, and ECE."""
    out: list[dict[str, Any]] = []
    accuracy = report["extraction"]["overall"]["accuracy"]
    out.append(
        _target(
            "accuracy",
            f"≥ {MIN_ACCURACY:.0%}",
            accuracy,
            None if accuracy is None else accuracy >= MIN_ACCURACY,
        )
    )
    per_type = {
        t: v["accuracy"] for t, v in report["extraction"]["per_type"].items() if v["accuracy"] is not None
    }
    if per_type:
        worst_type = min(per_type, key=per_type.__getitem__)
        worst = per_type[worst_type]
        out.append(
            _target(
                f"accuracy of every type (lowest: {worst_type})",
                f"≥ {MIN_TYPE_ACCURACY:.0%}",
                worst,
                worst >= MIN_TYPE_ACCURACY,
            )
        )
    precision = report["extraction"]["abstention"]["precision"]
    out.append(
        _target(
            "abstention precision",
            f"≥ {MIN_ABSTENTION_PRECISION:.0%}",
            precision,
            None if precision is None else precision >= MIN_ABSTENTION_PRECISION,
        )
    )
    recall = report["extraction"]["abstention"]["recall"]
    out.append(
        _target(
            "abstention recall",
            f"≥ {MIN_ABSTENTION_RECALL:.0%}",
            recall,
            None if recall is None else recall >= MIN_ABSTENTION_RECALL,
        )
    )
    held_out = (report.get("calibration") or {}).get("held_out") or {}
    ece = held_out.get("ece")
    if ece is not None:
        out.append(
            _target(
                f"ECE of the confidences (10 bins, held-out half, {held_out['targets']} values)",
                f"≤ {MAX_ECE:.0%}",
                ece,
                ece <= MAX_ECE,
            )
        )
    return out


def _faithfulness_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    faith = report["summaries"].get("faithfulness") or {}
    rate = faith.get("names_numbers_rate")
    return [
        _target(
            f"faithfulness: names and numbers found in the transcript ({faith.get('names_numbers', 0)})",
            f"≥ {MIN_NAMES_NUMBERS:.0%}",
            rate,
            None if rate is None else rate >= MIN_NAMES_NUMBERS,
        )
    ]


def _target(name: str, target: str, value: float | None, met: bool | None) -> dict[str, Any]:
    return {"name": name, "target": target, "value": value, "met": met}


# ---------------------------------------------------------------------------------------------
# Screen


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def mark(met: bool | None) -> str:
    return "?" if met is None else "✓" if met else "✗"


def _title(report: dict[str, Any]) -> str:
    return (
        f"{report['kind'].capitalize()}: {report['dialogues']} dialogues of {Path(report['file']).name}, "
        f"strategy {report['strategy']}, {report['backend']} {report['model']}"
    )


def print_report(report: dict[str, Any], console: Console) -> None:
    """The tables of one report."""
    if report["kind"] == "extraction":
        facts = _print_extraction(report, console)
    else:
        facts = _print_summaries(report, console)
    facts += _latency_and_baseline_facts(report)
    details = Table(show_header=False, box=None)
    for label, value in facts:
        details.add_row(label, value)
    console.print(details)
    checks = Table(title="Targets")
    for column in ("target", "wanted", "measured", "met"):
        checks.add_column(column)
    for t in report["targets"]:
        checks.add_row(t["name"], t["target"], pct(t["value"]), mark(t["met"]))
    console.print(checks)
    if report["errors"]:
        console.print(
            f"[red]{len(report['errors'])} dialogues failed[/red] (not scored); first: "
            f"{report['errors'][0]['id']}: {report['errors'][0]['error']}"
        )


def _print_extraction(report: dict[str, Any], console: Console) -> list[tuple[str, str]]:
    """The accuracy table of an extraction report; returns its facts (abstention, validity)."""
    ex = report["extraction"]
    table = Table(title=_title(report))
    for column in (
        "type",
        "targets",
        "accuracy",
        "answerable",
        "answerable accuracy",
    ):
        table.add_column(column, justify="left" if column == "type" else "right")
    for name, tally in [*ex["per_type"].items(), ("all", ex["overall"])]:
        table.add_row(
            name,
            str(tally["targets"]),
            pct(tally["accuracy"]),
            str(tally["answerable"]),
            pct(tally["answerable_accuracy"]),
            style="bold" if name == "all" else None,
        )
    console.print(table)
    ab, tv = ex["abstention"], ex["type_validity"]
    facts = [
        (
            "abstention precision",
            f"{pct(ab['precision'])} ({ab['correct_abstentions']}/{ab['predicted_null']})",
        ),
        (
            "abstention recall",
            f"{pct(ab['recall'])} ({ab['correct_abstentions']}/{ab['expected_null']})",
        ),
        ("type-valid values", f"{pct(tv['rate'])} ({tv['valid']}/{tv['values']})"),
    ]
    if ex["missing"]:
        facts.append(("metrics not returned", str(ex["missing"])))
    halves = ex.get("halves") or {}
    if halves:
        facts.append(
            (
                "accuracy, fit / held-out half",
                " / ".join(
                    f"{pct(halves[h]['accuracy'])} ({halves[h]['correct']}/{halves[h]['targets']})"
                    for h in ("fit", "held-out")
                ),
            )
        )
    calibration = report.get("calibration")
    if calibration:
        console.print(reliability_table(calibration))
        facts += [
            (
                f"ECE, {name} ({calibration[key]['targets']} values)",
                f"{_ece(calibration[key]['ece'])}"
                + " (per type: "
                + ", ".join(f"{t} {_ece(v)}" for t, v in calibration[key]["per_type"].items())
                + ")",
            )
            for name, key in (("held-out half", "held_out"), ("fit half", "fit"), ("all", "all"))
        ]
    return facts


def _print_summaries(report: dict[str, Any], console: Console) -> list[tuple[str, str]]:
    """The ROUGE table of a summaries report; returns its facts (non-empty summaries)."""
    su = report["summaries"]
    table = Table(title=_title(report))
    for column in (
        "ROUGE-1 F1",
        "ROUGE-2 F1",
        "ROUGE-L F1",
        "mean words",
        "references",
    ):
        table.add_column(column, justify="right")
    words = su["words_mean"]
    table.add_row(
        *(pct(su[k]) for k in ROUGE_TYPES),
        "-" if words is None else f"{words:.1f}",
        f"best of {su['references_field']}",
    )
    console.print(table)
    tv = su["type_validity"]
    return [
        ("non-empty summaries", f"{pct(tv['rate'])} ({tv['valid']}/{tv['values']})"),
        *_faithfulness_facts(su),
    ]


def _faithfulness_facts(su: dict[str, Any]) -> list[tuple[str, str]]:
    """Faithfulness of the summaries to their transcripts, as (label, value); none in older reports."""
    fa = su.get("faithfulness")
    if not fa:
        return []
    unfound = ", ".join(fa["unfound_examples"][:5])
    return [
        (
            "faithfulness: supported sentences",
            f"{pct(fa['sentence_support'])} ({fa['supported_sentences']}/{fa['sentences']}; "
            f"content words in the transcript {pct(fa['content_word_coverage'])})",
        ),
        (
            "faithfulness: names and numbers found",
            f"{pct(fa['names_numbers_rate'])} ({fa['names_numbers_found']}/{fa['names_numbers']})"
            + (f"; not found: {unfound}" if unfound else ""),
        ),
        (f"summaries copying ≥ {COPY_WORDS} words of one turn", f"{fa['copied']}/{fa['summaries']}"),
    ]


def _latency_and_baseline_facts(report: dict[str, Any]) -> list[tuple[str, str]]:
    """Latency, wall vs model time, and each gain over the baseline, as (label, value)."""
    lat = report["latency"]
    facts = [
        ("latency per call p50 / p95", f"{ms(lat['p50_ms'])} / {ms(lat['p95_ms'])} ms"),
        (
            "wall vs model time",
            f"{lat['wall_ms_total'] / 1000:,.1f} s vs {lat['model_ms_total'] / 1000:,.1f} s "
            f"(overhead {pct(lat['overhead'])}; model time from {lat['model_ms_source']})",
        ),
    ]
    for name, gain in (report.get("baseline") or {}).items():
        if isinstance(gain, dict):
            facts.append(
                (
                    f"{name} vs {report['baseline']['strategy']} "
                    f"(same {report['baseline']['dialogues_compared']} dialogues)",
                    f"{pct(gain['value'])} vs {pct(gain['baseline'])} "
                    f"({_signed(gain['relative_gain'])} relative)",
                )
            )
    return facts


def _ece(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def reliability_table(calibration: dict[str, Any]) -> Table:
    """The reliability table of the held-out half: per confidence bin, how often the value was right."""
    held_out = calibration["held_out"]
    table = Table(
        title=f"Reliability (held-out half, {held_out['targets']} values; ECE {_ece(held_out['ece'])})"
    )
    for column in ("confidence bin", "values", "mean confidence", "accuracy", "gap"):
        table.add_column(column, justify="right")
    for row in held_out["bins"]:
        gap = None if row["count"] == 0 else row["accuracy"] - row["confidence"]
        table.add_row(
            row["bin"],
            str(row["count"]),
            pct(row["confidence"]),
            pct(row["accuracy"]),
            "-" if gap is None else f"{gap * 100:+.1f}",
        )
    return table


def reliability_markdown(calibration: dict[str, Any]) -> list[str]:
    held_out = calibration["held_out"]
    lines = [
        f"Reliability of the confidences on the held-out half ({held_out['targets']} values; "
        f"ECE {_ece(held_out['ece'])}, fit half {_ece(calibration['fit']['ece'])}, "
        f"all {_ece(calibration['all']['ece'])}; {calibration['split']}):",
        "",
        "| confidence | values | mean confidence | accuracy |",
        "|---|--:|--:|--:|",
    ]
    for row in held_out["bins"]:
        lines.append(f"| {row['bin']} | {row['count']} | {pct(row['confidence'])} | {pct(row['accuracy'])} |")
    return [*lines, ""]


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}%"


# ---------------------------------------------------------------------------------------------
# BENCHMARKS.md


def markdown(reports: Sequence[dict[str, Any]], *, generated: str, machine: str) -> str:
    """The "Analytics evaluation" section, from saved reports (extraction and summaries, any strategy)."""
    out = [
        SECTION_START,
        "## Analytics evaluation",
        "",
        f"Generated by `make eval` on {generated} from the JSON reports under `eval-reports/` "
        f"({machine}); `make eval` rewrites this section only. Method: README, "
        '"Measuring analytics".',
        "",
    ]
    extraction = [r for r in reports if r["kind"] == "extraction"]
    summaries = [r for r in reports if r["kind"] == "summaries"]
    models = sorted({f"{r['backend']} backend, model `{r['model']}`" for r in reports})
    if models:
        out += [f"Model: {'; '.join(models)}.", ""]
    if extraction:
        out += _extraction_table(extraction)
    if summaries:
        out += _summaries_table(summaries)
    lines = _target_lines(reports)
    if lines:
        out += ["### Targets", "", *lines, ""]
    errors = [(r, e) for r in reports for e in r["errors"]]
    if errors:
        out += [
            f"{len(errors)} dialogues failed and were not scored; see the JSON reports.",
            "",
        ]
    out.append(SECTION_END)
    return "\n".join(out)


def _extraction_table(extraction: Sequence[dict[str, Any]]) -> list[str]:
    """The "Extraction" subsection: one table row per extraction report."""
    r0 = extraction[0]
    out = [
        "### Extraction",
        "",
        f"`{r0['file']}`; calls start at {r0.get('call_start', '?')}. *values* are the metric values "
        "to extract (*null*: absent from the call, the right answer is null). Accuracy counts every "
        "value, abstentions included; *answerable* only those the call contains. *ECE*: expected "
        "calibration error (10 bins) of the confidences on the held-out half of the dialogues.",
        "",
        "| strategy | dialogues | values (null) | accuracy | answerable | "
        + " | ".join(TYPES)
        + " | abstention P | abstention R | type-valid | ECE | p50 ms | p95 ms | wall / model s | overhead |",
        "|---|--:|--:|--:|--:|" + "--:|" * len(TYPES) + "--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in extraction:
        ex, lat = r["extraction"], r["latency"]
        per_type = [pct(ex["per_type"].get(t, {}).get("accuracy")) for t in TYPES]
        out.append(
            f"| {_label(r)} | {r['dialogues']} | {ex['overall']['targets']} ({ex['abstention']['expected_null']}) | "
            f"{pct(ex['overall']['accuracy'])} | "
            f"{pct(ex['overall']['answerable_accuracy'])} | "
            + " | ".join(per_type)
            + f" | {pct(ex['abstention']['precision'])} | {pct(ex['abstention']['recall'])} | "
            f"{pct(ex['type_validity']['rate'])} | {_ece(_held_out_ece(r))} | "
            f"{ms(lat['p50_ms'])} | {ms(lat['p95_ms'])} | {_wall_model(lat)} | {pct(lat['overhead'])} |"
        )
    out.append("")
    for r in extraction:
        if r.get("calibration"):
            out += reliability_markdown(r["calibration"])
    return out


def _held_out_ece(report: dict[str, Any]) -> float | None:
    return ((report.get("calibration") or {}).get("held_out") or {}).get("ece")


def _summaries_table(summaries: Sequence[dict[str, Any]]) -> list[str]:
    """The "Summaries" subsection: one table row per summaries report."""
    r0 = summaries[0]
    out = [
        "### Summaries",
        "",
        f"`{r0['file']}`: {r0['dialogues']} dialogues. ROUGE {r0['summaries']['rouge']}; references: "
        f'`{r0["summaries"]["references_field"]}` (speakers named "the user" / "the agent", as a '
        "summary of our transcript can name them; the raw references say `#Person1#`, which no "
        "summary of a user/agent transcript can produce).",
        "",
        f"*Faithfulness*: *supported* is the share of summary sentences with ≥ 2/3 of their content "
        "words in the transcript; *names/numbers* the share of the names and numbers stated that the "
        f"transcript contains; *copying* the summaries that repeat ≥ {COPY_WORDS} consecutive words of one turn.",
        "",
        "| strategy | dialogues | ROUGE-1 | ROUGE-2 | ROUGE-L | mean words | non-empty | supported "
        "| names/numbers | copying | p50 ms | p95 ms | wall / model s | overhead |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in summaries:
        su, lat = r["summaries"], r["latency"]
        words = su["words_mean"]
        fa = su.get("faithfulness") or {}
        names = f"{pct(fa.get('names_numbers_rate'))} ({fa.get('names_numbers_found', 0)}/{fa.get('names_numbers', 0)})"
        out.append(
            f"| {_label(r)} | {r['dialogues']} | "
            + " | ".join(pct(su[k]) for k in ROUGE_TYPES)
            + f" | {'-' if words is None else f'{words:.1f}'} | {pct(su['type_validity']['rate'])} | "
            f"{pct(fa.get('sentence_support'))} | {names if fa else '-'} | "
            f"{fa.get('copied', '-')} | "
            f"{ms(lat['p50_ms'])} | {ms(lat['p95_ms'])} | {_wall_model(lat)} | {pct(lat['overhead'])} |"
        )
    out.append("")
    return out


def _target_lines(reports: Sequence[dict[str, Any]]) -> list[str]:
    """Each engine report's targets (met or not) and its gains over the naive baseline."""
    lines = []
    for r in reports:
        if r["strategy"] == "naive":
            continue  # the targets are the engine's; the baseline is what it is measured against
        gains: dict[str, Any] = r.get("baseline") or _gains_over_naive(r, reports) or {}
        for t in targets_of({**r, "baseline": gains or None}):
            lines.append(
                f"- {mark(t['met'])} {r['kind']}, {_label(r)}: {t['name']} {pct(t['value'])} "
                f"(target {t['target']})"
            )
        for name, gain in gains.items():
            if isinstance(gain, dict) and not (r["kind"] == "summaries" and name == "rougeL"):
                lines.append(
                    f"- {r['kind']}, {r['strategy']} vs {gains['strategy']} on {gains['dialogues_compared']} "
                    f"dialogues: {name} {pct(gain['value'])} vs {pct(gain['baseline'])} "
                    f"({_signed(gain['relative_gain'])} relative)"
                )
    return lines


def _gains_over_naive(report: dict[str, Any], reports: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    for other in reports:
        if other["kind"] == report["kind"] and other["strategy"] == "naive":
            try:
                return compare(report, other)
            except ValueError:
                return None
    return None


def _label(report: dict[str, Any]) -> str:
    notes = [f"first {report['limit']}"] if report.get("limit") else []
    if report.get("partial"):
        notes.append(f"stopped at {report['partial']}")
    return str(report["strategy"]) + (f" ({', '.join(notes)})" if notes else "")


def _wall_model(lat: dict[str, Any]) -> str:
    return f"{lat['wall_ms_total'] / 1000:,.1f} / {lat['model_ms_total'] / 1000:,.1f}"


_SECTION = re.compile(re.escape(SECTION_START) + r".*?" + re.escape(SECTION_END) + r"\n?", re.DOTALL)


def replace_section(document: str, section: str) -> str:
    """``document`` with its analytics section replaced by ``section``, or ``section`` appended."""
    section = section.rstrip("\n") + "\n"
    if _SECTION.search(document):
        return _SECTION.sub(lambda _: section, document, count=1)
    return document.rstrip("\n") + "\n\n" + section if document.strip() else section


def keep_section(new_document: str, old_document: str) -> str:
    """``new_document`` with the analytics section of ``old_document`` carried over, if it had one."""
    match = _SECTION.search(old_document)
    return replace_section(new_document, match.group(0)) if match else new_document
