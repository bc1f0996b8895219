"""Read an evaluation file: JSON Lines of labelled dialogues, for extraction or for summaries.

The format is the one of ``shared/eval/README.md``. The kind of file is told by the fields of its
records (``metrics`` and ``expected``: extraction; ``references``: summaries), and every problem is
reported with the line it is on, so a broken file can be fixed without guessing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from dispo.analytics.config import METRIC_TYPES, DispositionMetric
from dispo.analytics.engine import Turn
from dispo.errors import DatasetError as DatasetError  # defined in the error tree, kept importable here

Kind = Literal["extraction", "summaries"]
DatetimePart = Literal["date", "time", "datetime"]

MAX_ERRORS = 20  # listed in one DatasetError; the rest are counted
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}$")


@dataclass(frozen=True)
class ExtractionRecord:
    """One dialogue with the metrics to extract and the expected value of each (None: abstain)."""

    id: str
    line: int
    call_date: date
    transcript: tuple[Turn, ...]
    metrics: tuple[DispositionMetric, ...]
    expected: dict[str, Any]
    accepted_values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # DATETIME metrics: which part of the value is compared ("date": YYYY-MM-DD, "time": HH:MM).
    datetime_parts: dict[str, DatetimePart] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SummaryRecord:
    """One dialogue with its human reference summaries."""

    id: str
    line: int
    transcript: tuple[Turn, ...]
    # What ROUGE is computed against: ``references_roles`` when the file has it (speakers named "the
    # user" / "the agent", as a summary of our transcript can name them), else ``references``.
    references: tuple[str, ...]
    references_field: str


@dataclass(frozen=True)
class Dataset:
    path: Path
    kind: Kind
    extraction: tuple[ExtractionRecord, ...] = ()
    summaries: tuple[SummaryRecord, ...] = ()

    def __len__(self) -> int:
        return len(self.extraction) if self.kind == "extraction" else len(self.summaries)

    @property
    def ids(self) -> list[str]:
        records = self.extraction if self.kind == "extraction" else self.summaries
        return [r.id for r in records]


def load_dataset(path: Path, *, limit: int | None = None) -> Dataset:
    """Read and validate ``path``; with ``limit``, only its first ``limit`` records."""
    if limit is not None and limit < 1:
        raise DatasetError(f"--limit must be at least 1; got {limit}.")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot be read as UTF-8 text ({exc}).") from None
    errors: list[str] = []
    kind: Kind | None = None
    extraction: list[ExtractionRecord] = []
    summaries: list[SummaryRecord] = []
    seen: dict[str, int] = {}
    for number, raw in _lines(text):
        if limit is not None and len(seen) >= limit:
            break
        where = f"{path}:{number}"
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            errors.append(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}).")
            continue
        if not isinstance(obj, dict):
            errors.append(f"{where}: each line must be a JSON object, not {type(obj).__name__}.")
            continue
        record_kind = _kind_of(obj)
        if record_kind is None:
            errors.append(
                f"{where}: neither an extraction record (with metrics and expected) nor a summaries "
                "record (with references)."
            )
            continue
        if kind is None:
            kind = record_kind
        elif record_kind != kind:
            errors.append(
                f"{where}: a {record_kind} record in a file of {kind} records; keep one kind a file."
            )
            continue
        problems: list[str] = []
        record: ExtractionRecord | SummaryRecord | None
        if record_kind == "extraction":
            record = _extraction(obj, number, problems)
        else:
            record = _summary(obj, number, problems)
        errors.extend(f"{where}: {p}" for p in problems)
        if record is None:
            continue
        if record.id in seen:
            errors.append(f"{where}: id {record.id!r} is also on line {seen[record.id]}; ids must be unique.")
            continue
        seen[record.id] = number
        if isinstance(record, ExtractionRecord):
            extraction.append(record)
        else:
            summaries.append(record)
    if errors:
        shown = errors[:MAX_ERRORS]
        more = len(errors) - len(shown)
        message = shown[0] + (f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else "")
        raise DatasetError(message, errors=shown + ([f"… {more} more"] if more else []))
    if kind is None:
        raise DatasetError(f"{path}: no records; the file is empty.")
    return Dataset(path, kind, tuple(extraction), tuple(summaries))


def merge(datasets: list[Dataset]) -> Dataset:
    """Several files of one kind as one dataset (ids must stay unique); one file as it is."""
    if len(datasets) == 1:
        return datasets[0]
    kinds = {d.kind for d in datasets}
    if len(kinds) > 1:
        raise DatasetError("the files mix extraction and summaries records; give files of one kind.")
    seen: dict[str, Path] = {}
    for d in datasets:
        for ident in d.ids:
            if ident in seen:
                raise DatasetError(f"id {ident!r} is in both {seen[ident]} and {d.path}; ids must be unique.")
            seen[ident] = d.path
    return Dataset(
        Path(" + ".join(str(d.path) for d in datasets)),
        datasets[0].kind,
        tuple(r for d in datasets for r in d.extraction),
        tuple(r for d in datasets for r in d.summaries),
    )


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


def _kind_of(obj: dict[str, Any]) -> Kind | None:
    if "metrics" in obj and "expected" in obj:
        return "extraction"
    if "references" in obj or "references_roles" in obj:
        return "summaries"
    return None


def _id(obj: dict[str, Any], problems: list[str]) -> str | None:
    value = obj.get("id")
    if not isinstance(value, str) or not value:
        problems.append(f"id must be a non-empty string; got {value!r}.")
        return None
    return value


def _transcript(obj: dict[str, Any], problems: list[str]) -> tuple[Turn, ...] | None:
    raw = obj.get("transcript")
    if not isinstance(raw, list) or not raw:
        problems.append("transcript must be a non-empty list of {role, content} turns.")
        return None
    turns: list[Turn] = []
    for i, turn in enumerate(raw):
        if not isinstance(turn, dict):
            problems.append(f"transcript[{i}] must be an object with role and content.")
            return None
        role, content = turn.get("role"), turn.get("content")
        if role not in ("user", "agent"):
            problems.append(f'transcript[{i}].role must be "user" or "agent"; got {role!r}.')
            return None
        if not isinstance(content, str):
            problems.append(f"transcript[{i}].content must be a string; got {content!r}.")
            return None
        turns.append(Turn(role=role, content=content))
    return tuple(turns)


def _extraction(obj: dict[str, Any], line: int, problems: list[str]) -> ExtractionRecord | None:
    ident = _id(obj, problems)
    transcript = _transcript(obj, problems)
    call_date = _call_date(obj.get("call_date"), problems)
    metrics = _metrics(obj.get("metrics"), problems)
    expected = obj.get("expected")
    if not isinstance(expected, dict):
        problems.append("expected must be an object {identifier: value or null}.")
        return None
    accepted = _accepted(obj.get("accepted_values", {}), problems)
    meta = obj.get("metric_meta", {})
    if not isinstance(meta, dict):
        problems.append("metric_meta must be an object {identifier: {...}}.")
        meta = {}
    parts: dict[str, DatetimePart] = {}
    origins: dict[str, str] = {}
    for metric in metrics or ():
        name = metric.identifier
        if name not in expected:
            problems.append(
                f"expected has no value for metric {name!r}; give one, or null when it is absent."
            )
            continue
        _check_expected(metric, expected[name], problems)
        m = meta.get(name)
        m = m if isinstance(m, dict) else {}
        if isinstance(m.get("origin"), str):
            origins[name] = m["origin"]
        if metric.type == "DATETIME":
            part = _datetime_part(name, m.get("datetime_part"), expected[name], problems)
            if part is not None:
                parts[name] = part
    if problems or ident is None or transcript is None or call_date is None or metrics is None:
        return None
    return ExtractionRecord(
        id=ident,
        line=line,
        call_date=call_date,
        transcript=transcript,
        metrics=metrics,
        expected={m.identifier: expected[m.identifier] for m in metrics},
        accepted_values=accepted,
        datetime_parts=parts,
        origins=origins,
    )


def _call_date(value: Any, problems: list[str]) -> date | None:
    if not isinstance(value, str) or not _DATE.match(value):
        problems.append(f"call_date must be a YYYY-MM-DD string; got {value!r}.")
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems.append(f"call_date {value!r} is not a real date.")
        return None


def _metrics(raw: Any, problems: list[str]) -> tuple[DispositionMetric, ...] | None:
    if not isinstance(raw, list) or not raw:
        problems.append("metrics must be a non-empty list of {identifier, type, prompt, choices?}.")
        return None
    metrics: list[DispositionMetric] = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            problems.append(f"metrics[{i}] must be an object.")
            return None
        name, mtype, prompt = item.get("identifier"), item.get("type"), item.get("prompt")
        if not isinstance(name, str) or not name:
            problems.append(f"metrics[{i}].identifier must be a non-empty string; got {name!r}.")
            return None
        if name in names:
            problems.append(f"metrics[{i}].identifier {name!r} appears twice.")
            return None
        names.add(name)
        if mtype not in METRIC_TYPES:
            problems.append(
                f"metrics[{i}] ({name}).type must be one of {', '.join(METRIC_TYPES)}; got {mtype!r}."
            )
            return None
        if not isinstance(prompt, str) or not prompt.strip():
            problems.append(f"metrics[{i}] ({name}).prompt must be a non-empty string.")
            return None
        choices = item.get("choices")
        if mtype == "ENUM":
            if not isinstance(choices, list) or not choices or not all(isinstance(c, str) for c in choices):
                problems.append(f"metrics[{i}] ({name}) is an ENUM and needs choices: a list of strings.")
                return None
            metrics.append(DispositionMetric(name, prompt.strip(), mtype, tuple(choices)))
        else:
            metrics.append(DispositionMetric(name, prompt.strip(), mtype))
    return tuple(metrics)


def _accepted(raw: Any, problems: list[str]) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append("accepted_values must be an object {identifier: [surface forms]}.")
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for name, forms in raw.items():
        if forms is None:
            continue
        if not isinstance(forms, list) or not all(isinstance(f, str) for f in forms):
            problems.append(f"accepted_values[{name!r}] must be a list of strings.")
            continue
        out[name] = tuple(forms)
    return out


def _check_expected(metric: DispositionMetric, value: Any, problems: list[str]) -> None:
    if value is None:
        return
    where = f"expected[{metric.identifier!r}] ({metric.type})"
    if metric.type == "BOOLEAN" and not isinstance(value, bool):
        problems.append(f"{where} must be true, false or null; got {value!r}.")
    elif metric.type == "INTEGER" and (isinstance(value, bool) or not isinstance(value, int)):
        problems.append(f"{where} must be an integer or null; got {value!r}.")
    elif metric.type in ("STRING", "ENUM", "DATETIME") and not isinstance(value, str):
        problems.append(f"{where} must be a string or null; got {value!r}.")


def _datetime_part(name: str, given: Any, expected: Any, problems: list[str]) -> DatetimePart | None:
    if given in ("date", "time", "datetime"):
        part: DatetimePart = given
    elif given is not None:
        problems.append(f'metric_meta[{name!r}].datetime_part must be "date" or "time"; got {given!r}.')
        return None
    elif isinstance(expected, str) and _DATE.match(expected):
        part = "date"
    elif isinstance(expected, str) and _TIME.match(expected):
        part = "time"
    else:
        part = "datetime"
    if isinstance(expected, str):
        shapes = {"date": _DATE, "time": _TIME}
        if part in shapes and not shapes[part].match(expected):
            problems.append(
                f"expected[{name!r}] must be {'YYYY-MM-DD' if part == 'date' else 'HH:MM'} "
                f"(datetime_part {part}); got {expected!r}."
            )
            return None
    return part


def _summary(obj: dict[str, Any], line: int, problems: list[str]) -> SummaryRecord | None:
    ident = _id(obj, problems)
    transcript = _transcript(obj, problems)
    field_name = "references_roles" if "references_roles" in obj else "references"
    refs = obj.get(field_name)
    if not isinstance(refs, list) or not refs or not all(isinstance(r, str) and r.strip() for r in refs):
        problems.append(f"{field_name} must be a non-empty list of non-empty strings.")
        return None
    if ident is None or transcript is None:
        return None
    return SummaryRecord(ident, line, transcript, tuple(refs), field_name)
