"""Run a strategy (the engine or the naive baseline) over a dataset, timing each call.

Each dialogue is timed twice: the wall time of the strategy's call (what a call's analytics costs)
and the model's own time inside it. The model time comes from the backend's cumulative
``model_ms_total`` counter when it has one (it covers generation and scoring); otherwise from the
``Completion.model_ms`` of every ``chat`` reply, collected by a thin wrapper (scoring calls, if any,
then count as pipeline time). Their difference is the pipeline's overhead.
"""

from __future__ import annotations

import time as clock
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time
from typing import Any, ClassVar, Literal

from dispo.analytics.calibration import Calibration
from dispo.analytics.config import DispositionMetric
from dispo.analytics.engine import MetricValue, Turn
from dispo.analytics.summary import copied_run
from dispo.evaluation import naive
from dispo.evaluation.dataset import Dataset, ExtractionRecord, SummaryRecord
from dispo.evaluation.rouge import ROUGE_TYPES, Score, score_multi
from dispo.evaluation.scoring import Faithfulness, TargetResult, faithfulness, is_type_valid, matches
from dispo.llm import Backend, Completion, Message

Strategy = Literal["engine", "naive"]
STRATEGIES: tuple[Strategy, ...] = ("engine", "naive")
Extractor = Callable[[Backend, Sequence[Turn], Sequence[DispositionMetric], datetime], list[MetricValue]]
Summarizer = Callable[[Backend, Sequence[Turn]], str]
Progress = Callable[["Run"], None]  # called with the run so far, after each dialogue

# A dialogue's call starts at noon UTC of its call_date: "today" is call_date in every timezone from
# UTC-12 to UTC+11, so an engine that reads the start in a local timezone still gets the same day.
CALL_START_TIME = time(12, 0, tzinfo=UTC)
CALL_START_RULE = "call_date at 12:00 UTC"


def call_start(record: ExtractionRecord) -> datetime:
    return datetime.combine(record.call_date, CALL_START_TIME)


def extractor(strategy: Strategy) -> Extractor:
    if strategy == "naive":
        return naive.extract
    from dispo.analytics import engine

    return engine.extract


def summarizer(strategy: Strategy) -> Summarizer:
    if strategy == "naive":
        return naive.summarize
    from dispo.analytics import engine

    return lambda backend, transcript: engine.summarize(backend, transcript, None)


class _Metered(Backend):
    """Forwards to a backend and adds up the ``model_ms`` of its chat replies."""

    name: ClassVar[str] = "metered"

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.chat_model_ms = 0.0

    def chat(self, messages: Sequence[Message], **options: Any) -> Completion:
        reply = self.inner.chat(messages, **options)
        self.chat_model_ms += reply.model_ms
        return reply

    def score(self, messages: Sequence[Message], continuations: Sequence[str], **options: Any) -> list[float]:
        return self.inner.score(messages, continuations, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class ModelClock:
    """The model's cumulative time in ms, from the backend's counter or from its chat replies."""

    def __init__(self, backend: Backend) -> None:
        counter = getattr(backend, "model_ms_total", None)
        if isinstance(counter, int | float) and not isinstance(counter, bool):
            # The backend counts itself: use it as it is, unwrapped, so the strategy sees the real thing.
            self.backend: Backend = backend
            self._read: Callable[[], float] = lambda: float(getattr(backend, "model_ms_total", 0.0))
            self.source = "backend.model_ms_total"
        else:
            cls = type(
                f"Metered{type(backend).__name__}",
                (_Metered,),
                {"can_score": backend.can_score},
            )
            metered: _Metered = cls(backend)
            self.backend = metered
            self._read = lambda: metered.chat_model_ms
            self.source = "sum of Completion.model_ms (chat replies only)"

    def read(self) -> float:
        return self._read()


@dataclass(frozen=True)
class CallTiming:
    wall_ms: float
    model_ms: float


@dataclass
class ExtractionOutcome:
    record: ExtractionRecord
    timing: CallTiming
    targets: list[TargetResult] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)  # identifiers returned that were not asked for
    error: str | None = None


@dataclass
class SummaryOutcome:
    record: SummaryRecord
    timing: CallTiming
    summary: Any = None
    scores: dict[str, Score] = field(default_factory=dict)
    valid: bool = False
    error: str | None = None
    faithfulness: Faithfulness | None = None
    copied_run: int = 0  # the longest run of words the summary shares with one turn


@dataclass
class Run:
    dataset: Dataset
    strategy: Strategy
    backend_name: str
    model_id: str
    model_ms_source: str
    started: datetime
    extraction: list[ExtractionOutcome] = field(default_factory=list)
    summaries: list[SummaryOutcome] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def done(self) -> int:
        """Dialogues run so far."""
        return len(self.extraction) if self.dataset.kind == "extraction" else len(self.summaries)

    @property
    def timings(self) -> list[CallTiming]:
        outcomes: Sequence[ExtractionOutcome | SummaryOutcome] = (
            self.extraction if self.dataset.kind == "extraction" else self.summaries
        )
        return [o.timing for o in outcomes if o.error is None]

    @property
    def errors(self) -> list[tuple[str, str]]:
        outcomes: Sequence[ExtractionOutcome | SummaryOutcome] = (
            self.extraction if self.dataset.kind == "extraction" else self.summaries
        )
        return [(o.record.id, o.error) for o in outcomes if o.error is not None]


def run(
    dataset: Dataset,
    backend: Backend,
    strategy: Strategy,
    *,
    progress: Progress | None = None,
) -> Run:
    """Run ``strategy`` over every record of ``dataset``; NotImplementedError stops it at once."""
    model_clock = ModelClock(backend)
    result = Run(
        dataset=dataset,
        strategy=strategy,
        backend_name=backend.name,
        model_id=backend.model_id,
        model_ms_source=model_clock.source,
        started=datetime.now(UTC),
    )
    began = clock.perf_counter()
    if dataset.kind == "extraction":
        extract = extractor(strategy)
        for record in dataset.extraction:
            result.extraction.append(_extract_one(record, extract, model_clock))
            result.elapsed_s = clock.perf_counter() - began
            if progress:
                progress(result)
    else:
        summarize = summarizer(strategy)
        for summary_record in dataset.summaries:
            result.summaries.append(_summarize_one(summary_record, summarize, model_clock))
            result.elapsed_s = clock.perf_counter() - began
            if progress:
                progress(result)
    result.elapsed_s = clock.perf_counter() - began
    return result


def _timed(model_clock: ModelClock, fn: Callable[[], Any]) -> tuple[Any, CallTiming, str | None]:
    model_before = model_clock.read()
    started = clock.perf_counter()
    value: Any = None
    error: str | None = None
    try:
        value = fn()
    except NotImplementedError:
        raise
    except Exception as exc:  # one failed dialogue is reported, the others still measured
        error = f"{type(exc).__name__}: {exc}"
    wall_ms = (clock.perf_counter() - started) * 1000
    return value, CallTiming(wall_ms, model_clock.read() - model_before), error


def _extract_one(record: ExtractionRecord, extract: Extractor, model_clock: ModelClock) -> ExtractionOutcome:
    backend = model_clock.backend
    values, timing, error = _timed(
        model_clock,
        lambda: extract(backend, record.transcript, record.metrics, call_start(record)),
    )
    outcome = ExtractionOutcome(record, timing, error=error)
    if error is not None:
        return outcome
    by_id: dict[str, MetricValue] = {}
    for value in values or []:
        if isinstance(value, MetricValue) and value.identifier not in by_id:
            by_id[value.identifier] = value
    asked = {m.identifier for m in record.metrics}
    outcome.unexpected = sorted(set(by_id) - asked)
    for metric in record.metrics:
        got = by_id.get(metric.identifier)
        outcome.targets.append(
            target(
                record,
                metric,
                None if got is None else got.value,
                missing=got is None,
                confidence=None if got is None else _number(got.confidence),
                proposed=None if got is None else got.proposed,
                features=None if got is None or got.features is None else dict(got.features),
            )
        )
    return outcome


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def target(
    record: ExtractionRecord,
    metric: DispositionMetric,
    predicted: Any,
    *,
    missing: bool = False,
    confidence: float | None = None,
    proposed: Any = None,
    features: dict[str, float] | None = None,
) -> TargetResult:
    """One metric of one dialogue scored: the prediction, and the engine's proposal when it has one."""
    name = metric.identifier
    expected = record.expected[name]

    def right(value: Any) -> bool:
        return matches(
            metric,
            expected,
            value,
            accepted=record.accepted_values.get(name, ()),
            datetime_part=record.datetime_parts.get(name, "date"),
        )

    return TargetResult(
        record_id=record.id,
        identifier=name,
        type=metric.type,
        origin=record.origins.get(name, ""),
        expected=expected,
        predicted=predicted,
        correct=right(predicted),
        valid=is_type_valid(metric, predicted),
        missing=missing,
        confidence=confidence,
        proposed=proposed,
        proposed_correct=(None if features is None or proposed is None else right(proposed)),
        features=features,
        abstention_correct=None if features is None else right(_abstention(metric)),
    )


def _abstention(metric: DispositionMetric) -> Any:
    """What the engine answers when it abstains on ``metric``: the prompt's fallback, else null."""
    from dispo.analytics import question as qn
    from dispo.analytics.engine import fallback_value

    fallback = fallback_value(metric, qn.parse(metric.prompt))
    return fallback[0] if fallback else None


def redecide(result: Run, calibration: Calibration) -> Run:
    """``result`` as the engine would have answered with ``calibration``: each target's value and
    confidence decided again from the proposal and features the run recorded (no model needed)."""
    from dispo.analytics.engine import decision

    outcomes: list[ExtractionOutcome] = []
    for o in result.extraction:
        metrics = {m.identifier: m for m in o.record.metrics}
        targets = []
        for t in o.targets:
            if t.features is None:
                targets.append(t)
                continue
            metric = metrics[t.identifier]
            value, confidence = decision(metric, t.proposed, t.features, calibration)
            targets.append(
                target(
                    o.record, metric, value, confidence=confidence, proposed=t.proposed, features=t.features
                )
            )
        outcomes.append(replace(o, targets=targets))
    return replace(result, extraction=outcomes)


def from_report(dataset: Dataset, report: dict[str, Any]) -> Run:
    """A run rebuilt from a saved extraction report of the engine on ``dataset`` (same file): the
    proposals, features and timings it recorded, for re-deciding and fitting without the model."""
    if report.get("kind") != "extraction" or dataset.kind != "extraction":
        raise ValueError("--from-report needs an extraction report and an extraction file")
    details = {d["id"]: d for d in report.get("details", []) if isinstance(d, dict) and "id" in d}
    result = Run(
        dataset=dataset,
        strategy=report.get("strategy", "engine"),
        backend_name=str(report.get("backend", "?")),
        model_id=str(report.get("model", "?")),
        model_ms_source=str(report.get("latency", {}).get("model_ms_source", "?")),
        started=datetime.fromisoformat(report["started"]) if "started" in report else datetime.now(UTC),
        elapsed_s=float(report.get("elapsed_s", 0.0)),
    )
    for record in dataset.extraction:
        d = details.get(record.id)
        if d is None:
            continue
        timing = CallTiming(float(d.get("wall_ms", 0.0)), float(d.get("model_ms", 0.0)))
        outcome = ExtractionOutcome(
            record, timing, error=d.get("error"), unexpected=list(d.get("unexpected", []))
        )
        saved = {m["identifier"]: m for m in d.get("metrics", [])}
        for metric in record.metrics:
            m = saved.get(metric.identifier)
            if m is None:
                outcome.targets.append(target(record, metric, None, missing=True))
                continue
            outcome.targets.append(
                target(
                    record,
                    metric,
                    m.get("predicted"),
                    missing=bool(m.get("missing")),
                    confidence=_number(m.get("confidence")),
                    proposed=m.get("proposed"),
                    features=m.get("features"),
                )
            )
        result.extraction.append(outcome)
    if not result.extraction:
        raise ValueError("the report has no dialogue of this file")
    return result


def _summarize_one(record: SummaryRecord, summarize: Summarizer, model_clock: ModelClock) -> SummaryOutcome:
    backend = model_clock.backend
    text, timing, error = _timed(model_clock, lambda: summarize(backend, record.transcript))
    outcome = SummaryOutcome(record, timing, summary=text, error=error)
    if error is None:
        outcome.valid = isinstance(text, str) and bool(text.strip())
        outcome.scores = (
            score_multi(record.references, text)
            if outcome.valid
            else dict.fromkeys(ROUGE_TYPES, Score(0.0, 0.0, 0.0))
        )
        if outcome.valid:
            turns = [str(t["content"]) for t in record.transcript]
            outcome.faithfulness = faithfulness(text, turns)
            outcome.copied_run = copied_run(text, record.transcript)
    return outcome


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) with linear interpolation between ranks, as numpy's default."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
