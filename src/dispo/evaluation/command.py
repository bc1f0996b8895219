"""``dispo eval FILE.jsonl``: the command, registered on the ``dispo`` app by :mod:`dispo.cli`."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
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


def eval_command(
    file: Annotated[
        Path,
        typer.Argument(help="Evaluation JSONL: extraction or summaries records (the kind is detected)."),
    ],
    limit: Annotated[int | None, typer.Option(help="Only the first N dialogues of the file.")] = None,
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
) -> None:
    """Measure post-call analytics on labelled dialogues: accuracy, abstention, validity, ROUGE, latency."""
    from dispo.evaluation import report as reporting
    from dispo.evaluation.dataset import load_dataset
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
    try:
        dataset = load_dataset(file, limit=limit)
    except DispoError as exc:
        raise fail("\n  ".join(["cannot use " + str(file) + ":", *exc.errors])) from None
    base: dict[str, Any] | None = None
    if baseline is not None:
        base = _read_report(baseline, dataset.kind, fail)
    model, ready_s = _load_backend(backend, fail)
    err.print(
        f"{dataset.kind}: {len(dataset)} dialogues from {file}; strategy {strategy}; "
        f"{model.name} backend, model {model.model_id} (ready in {ready_s:.1f} s)"
    )
    result = _run_with_progress(
        dataset, model, strategy, err, fail, title=f"{strategy} on {file.name}", report=report, limit=limit
    )
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
