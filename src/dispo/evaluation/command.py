"""``dispo eval FILE.jsonl``: the command, registered on the ``dispo`` app by :mod:`dispo.cli`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from dispo.errors import DispoError

BACKENDS = ("local", "openai")
PARTIAL_EVERY = 10  # dialogues between two writes of the report while a run goes on


def eval_command(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Evaluation JSONL: extraction or summaries records (the kind is detected). Several files "
            "of one kind are evaluated together (e.g. to fit the calibration on all of them).",
            metavar="FILE...",
        ),
    ],
    limit: Annotated[int | None, typer.Option(help="Only the first N dialogues of each file.")] = None,
    strategy: Annotated[
        str,
        typer.Option(help="engine: dispo.analytics; naive: one plain prompt for everything (the baseline)."),
    ] = "engine",
    report: Annotated[Path | None, typer.Option(help="Write the JSON report to this file.")] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(help="A naive run's JSON report, to report the relative gain over it."),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(help="LLM backend, local or openai (default: DISPO_LLM_BACKEND)."),
    ] = None,
    fit_calibration: Annotated[
        bool,
        typer.Option(
            "--fit-calibration",
            help="Fit the calibrated confidence on the fit half of the dialogues, write it to --calibration "
            "(default: the package's calibration.json), and report with it.",
        ),
    ] = False,
    calibration: Annotated[
        Path | None,
        typer.Option(help="Calibration JSON to use (and, with --fit-calibration, to write)."),
    ] = None,
    from_report: Annotated[
        Path | None,
        typer.Option(
            help="Do not run the model: re-decide a saved engine report of the same file (its proposals and "
            "features) with the calibration, e.g. after --fit-calibration."
        ),
    ] = None,
) -> None:
    """Measure post-call analytics on labelled dialogues: accuracy, abstention, validity, ROUGE, latency."""
    from dispo.config import get_settings
    from dispo.evaluation import report as reporting
    from dispo.evaluation.dataset import load_dataset, merge
    from dispo.evaluation.harness import STRATEGIES, Run, run

    out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
    err = Console(stderr=True, soft_wrap=True)

    def fail(message: str) -> typer.Exit:
        err.print(f"[red]error:[/red] {message}")
        return typer.Exit(code=1)

    if strategy not in STRATEGIES:
        raise fail(f"--strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}.")
    if backend is not None and backend not in BACKENDS:
        raise fail(f"--backend must be one of {', '.join(BACKENDS)}; got {backend!r}.")
    try:
        dataset = merge([load_dataset(f, limit=limit) for f in files])
    except DispoError as exc:
        raise fail("\n  ".join(["cannot use " + " ".join(map(str, files)) + ":", *exc.errors])) from None
    file = dataset.path
    base: dict[str, Any] | None = None
    if baseline is not None:
        base = _read_report(baseline, dataset.kind, fail)

    from dispo.analytics import calibration as cal
    from dispo.evaluation import calibrate
    from dispo.evaluation.harness import from_report as rebuild
    from dispo.evaluation.harness import redecide

    calibration_path = calibration or cal.PARAMS_FILE
    if calibration is not None and not fit_calibration:
        if not calibration.is_file():
            raise fail(f"--calibration {calibration}: no such file.")
        cal.use(cal.load(calibration))
    if (fit_calibration or from_report) and (dataset.kind != "extraction" or strategy != "engine"):
        raise fail("--fit-calibration and --from-report are for the engine on an extraction file.")

    def finish(result: Run) -> Run:
        if not fit_calibration:
            return redecide(result, cal.active()) if from_report else result
        fitted = calibrate.fit(
            [t for o in result.extraction for t in o.targets], source=", ".join(f.name for f in files)
        )
        calibrate.write(fitted, calibration_path)
        cal.load.cache_clear()
        err.print(f"Fitted the calibration on the fit half; wrote {calibration_path}")
        return redecide(result, fitted)

    if from_report is not None:
        saved = _read_report(from_report, dataset.kind, fail)
        try:
            result = finish(rebuild(dataset, saved))
        except ValueError as exc:
            raise fail(f"--from-report {from_report}: {exc}") from None
        data = reporting.build(result, limit=limit, baseline=base)
        reporting.print_report(data, out)
        if report is not None:
            _write(report, data)
            err.print(f"Wrote {report}")
        return

    settings = get_settings()
    if backend is not None:
        settings = settings.model_copy(update={"llm_backend": backend})
    import dispo.llm

    started = time.perf_counter()
    try:
        model = dispo.llm.get_backend(settings)
    except DispoError as exc:
        raise fail(exc.message) from None
    err.print(
        f"{dataset.kind}: {len(dataset)} dialogues from {file}; strategy {strategy}; "
        f"{model.name} backend, model {model.model_id} (ready in {time.perf_counter() - started:.1f} s)"
    )
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
    )
    task = progress.add_task(f"{strategy} on {file.name}", total=len(dataset))

    def step(so_far: Run) -> None:
        progress.advance(task)
        # A long run keeps its report current, so a stopped run still leaves its figures.
        if report is not None and so_far.done % PARTIAL_EVERY == 0 and so_far.done < len(dataset):
            _write(report, reporting.build(so_far, limit=limit))

    with progress:
        try:
            result = run(dataset, model, strategy, progress=step)
        except NotImplementedError:
            raise fail(
                "the analytics engine is not implemented yet (dispo.analytics.engine raised "
                "NotImplementedError); --strategy naive measures the baseline meanwhile."
            ) from None
    result = finish(result)
    try:
        data = reporting.build(result, limit=limit, baseline=base)
    except ValueError as exc:
        raise fail(f"--baseline {baseline}: {exc}") from None
    reporting.print_report(data, out)
    if report is not None:
        _write(report, data)
        err.print(f"Wrote {report}")
    if data["errors"]:
        raise typer.Exit(code=1)


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    partial.replace(path)


def _read_report(path: Path, kind: str, fail: Any) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise fail(f"--baseline {path} is not a readable JSON report ({exc}).") from None
    if not isinstance(data, dict) or data.get("kind") != kind:
        raise fail(
            f"--baseline {path} is not a report on {kind}: give the naive run's report of the same file."
        )
    return data
