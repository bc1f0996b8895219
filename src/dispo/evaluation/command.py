"""``dispo eval FILE.jsonl``: the command, registered on the ``dispo`` app by :mod:`dispo.cli`."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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

if TYPE_CHECKING:
    from dispo.evaluation.dataset import Dataset
    from dispo.evaluation.harness import Run, Strategy
    from dispo.llm.base import Backend

BACKENDS = ("local", "openai", "scripted")
PARTIAL_EVERY = 10  # dialogues between two writes of the report while a run goes on


# The options of issue 10 (several files, the calibrated confidence), named so the command reads short.
Files = Annotated[
    list[Path],
    typer.Argument(
        help="Evaluation JSONL: extraction or summaries records (the kind is detected). Several files "
        "of one kind are evaluated together (e.g. to fit the calibration on all of them).",
        metavar="FILE",
    ),
]
FitCalibration = Annotated[
    bool,
    typer.Option(
        "--fit-calibration",
        help="Fit the calibrated confidence on the fit half of the dialogues, write it to --calibration "
        "(default: the package's calibration.json), and report with it.",
    ),
]
CalibrationFile = Annotated[
    Path | None, typer.Option(help="Calibration JSON to use (and, with --fit-calibration, to write).")
]
SavedRun = Annotated[
    Path | None,
    typer.Option(
        help="Do not run the model: re-decide a saved engine report of the same file (its proposals and "
        "features) with the calibration, e.g. after --fit-calibration."
    ),
]


def eval_command(
    files: Files,
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
        typer.Option(help="LLM backend: local, openai, or scripted for tests (default: DISPO_LLM_BACKEND)."),
    ] = None,
    fit_calibration: FitCalibration = False,
    calibration: CalibrationFile = None,
    from_report: SavedRun = None,
) -> None:
    """Measure post-call analytics on labelled dialogues: accuracy, abstention, validity, ROUGE, latency."""
    from dispo.evaluation import report as reporting
    from dispo.evaluation.harness import STRATEGIES

    out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
    err = Console(stderr=True, soft_wrap=True)

    def fail(message: str) -> typer.Exit:
        err.print(f"[red]error:[/red] {message}")
        return typer.Exit(code=1)

    if strategy not in STRATEGIES:
        raise fail(f"--strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}.")
    if backend is not None and backend not in BACKENDS:
        raise fail(f"--backend must be one of {', '.join(BACKENDS)}; got {backend!r}.")
    dataset = _load_files(files, limit, fail)
    file = dataset.path
    base: dict[str, Any] | None = None
    if baseline is not None:
        base = _read_report(baseline, dataset.kind, fail)
    tuning = _Calibrating(fit_calibration, calibration, from_report, ", ".join(f.name for f in files), err)
    tuning.check(dataset, strategy, fail)
    if from_report is not None:
        result = tuning.rebuild(dataset, _read_report(from_report, dataset.kind, fail), fail)
    else:
        model, ready_s = _load_backend(backend, fail)
        err.print(
            f"{dataset.kind}: {len(dataset)} dialogues from {file}; strategy {strategy}; "
            f"{model.name} backend, model {model.model_id} (ready in {ready_s:.1f} s)"
        )
        result = _run_with_progress(
            dataset,
            model,
            strategy,
            err,
            fail,
            title=f"{strategy} on {file.name}",
            report=report,
            limit=limit,
        )
    result = tuning.finish(result)
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


def _load_files(files: list[Path], limit: int | None, fail: Callable[[str], typer.Exit]) -> Dataset:
    """The files, read and validated, as one dataset (``--limit`` applies to each)."""
    from dispo.evaluation.dataset import load_dataset, merge

    try:
        return merge([load_dataset(f, limit=limit) for f in files])
    except DispoError as exc:
        raise fail("\n  ".join(["cannot use " + " ".join(map(str, files)) + ":", *exc.errors])) from None


@dataclass
class _Calibrating:
    """What ``--fit-calibration``, ``--calibration`` and ``--from-report`` ask of a run."""

    fit: bool
    path: Path | None
    saved_run: Path | None
    source: str
    err: Console

    def check(self, dataset: Dataset, strategy: str, fail: Callable[[str], typer.Exit]) -> None:
        """Refuse what cannot be done; make a given calibration the one the engine uses."""
        from dispo.analytics import calibration as cal

        if self.path is not None and not self.fit:
            if not self.path.is_file():
                raise fail(f"--calibration {self.path}: no such file.")
            cal.use(cal.load(self.path))
        if (self.fit or self.saved_run) and (dataset.kind != "extraction" or strategy != "engine"):
            raise fail("--fit-calibration and --from-report are for the engine on an extraction file.")

    def rebuild(self, dataset: Dataset, saved: dict[str, Any], fail: Callable[[str], typer.Exit]) -> Run:
        """The saved run of ``--from-report``, without the model."""
        from dispo.evaluation.harness import from_report

        try:
            return from_report(dataset, saved)
        except ValueError as exc:
            raise fail(f"--from-report {self.saved_run}: {exc}") from None

    def finish(self, result: Run) -> Run:
        """With ``--fit-calibration``: fit on the fit half, write it, and decide again with it; a saved
        run is decided again with the active calibration; otherwise the run as it is."""
        from dispo.analytics import calibration as cal
        from dispo.evaluation import calibrate
        from dispo.evaluation.harness import redecide

        if not self.fit:
            return redecide(result, cal.active()) if self.saved_run else result
        fitted = calibrate.fit([t for o in result.extraction for t in o.targets], source=self.source)
        path = self.path or cal.PARAMS_FILE
        calibrate.write(fitted, path)
        cal.load.cache_clear()
        self.err.print(f"Fitted the calibration on the fit half; wrote {path}")
        return redecide(result, fitted)


def _load_backend(backend: str | None, fail: Callable[[str], typer.Exit]) -> tuple[Backend, float]:
    """The LLM backend (``backend`` or the configured one), loaded; and the seconds it took."""
    from dispo.config import get_settings

    settings = get_settings()
    if backend is not None:
        settings = settings.model_copy(update={"llm_backend": backend})
    import dispo.llm

    started = time.perf_counter()
    try:
        model = dispo.llm.get_backend(settings)
    except DispoError as exc:
        raise fail(exc.message) from None
    return model, time.perf_counter() - started


def _run_with_progress(
    dataset: Dataset,
    model: Backend,
    strategy: Strategy,
    err: Console,
    fail: Callable[[str], typer.Exit],
    *,
    title: str,
    report: Path | None,
    limit: int | None,
) -> Run:
    """Run ``strategy`` on every dialogue with a progress bar on ``err``; while it runs, ``report``
    (if given) is rewritten every PARTIAL_EVERY dialogues, so a stopped run leaves its figures."""
    from dispo.evaluation import report as reporting
    from dispo.evaluation.harness import run

    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
    )
    task = progress.add_task(title, total=len(dataset))

    def step(so_far: Run) -> None:
        progress.advance(task)
        if report is not None and so_far.done % PARTIAL_EVERY == 0 and so_far.done < len(dataset):
            _write(report, reporting.build(so_far, limit=limit))

    with progress:
        try:
            return run(dataset, model, strategy, progress=step)
        except NotImplementedError:
            raise fail(
                "the analytics engine is not implemented yet (dispo.analytics.engine raised "
                "NotImplementedError); --strategy naive measures the baseline meanwhile."
            ) from None


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    partial.replace(path)


def _read_report(path: Path, kind: str, fail: Callable[[str], typer.Exit]) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise fail(f"--baseline {path} is not a readable JSON report ({exc}).") from None
    if not isinstance(data, dict) or data.get("kind") != kind:
        raise fail(
            f"--baseline {path} is not a report on {kind}: give the naive run's report of the same file."
        )
    return data
