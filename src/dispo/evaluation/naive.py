"""The naive baselines ``dispo eval --strategy naive`` measures the engine against.

- Extraction: one prompt asking the model for every metric at once as a JSON object, no schema,
  the reply parsed leniently (the first ``{…}``, then repairs, then ``key: value`` lines) and each
  value coerced where that is obvious ("yes" → true, "3" → 3, "sedan" → "Sedan").
- Summaries: the transcript, then "Summarize this conversation in one line."

Both use the same backend and model as the engine, so the difference is the method alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dispo.analytics.config import DispositionMetric
from dispo.analytics.engine import MetricValue, Turn
from dispo.evaluation.scoring import normalise_text
from dispo.llm import Backend, Message

SUMMARY_PROMPT = "Summarize this conversation in one line."
REASONING = "naive baseline: one prompt for every metric, parsed leniently"
_NULLS = {"", "null", "none", "n/a", "na", "unknown", "not mentioned", "not specified"}
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


def transcript_text(transcript: Sequence[Turn]) -> str:
    return "\n".join(f"{'User' if t['role'] == 'user' else 'Agent'}: {t['content']}" for t in transcript)


def _type_hint(metric: DispositionMetric) -> str:
    if metric.type == "ENUM":
        return "one of: " + ", ".join(metric.choices or ())
    return {
        "STRING": "text",
        "BOOLEAN": "true or false",
        "INTEGER": "an integer",
        "DATETIME": "an ISO 8601 date or time, e.g. 2019-03-07 or 15:45",
    }[metric.type]


def extraction_messages(
    transcript: Sequence[Turn], metrics: Sequence[DispositionMetric], call_start: datetime
) -> list[Message]:
    keys = "\n".join(f'- "{m.identifier}" ({_type_hint(m)}): {m.prompt}' for m in metrics)
    return [
        {"role": "system", "content": "You extract information from phone call transcripts."},
        {
            "role": "user",
            "content": f"Transcript of a call on {call_start:%Y-%m-%d}:\n{transcript_text(transcript)}\n\n"
            f"Reply with only one JSON object, with these keys:\n{keys}\n"
            "Use null for anything the call does not say.",
        },
    ]


def extract(
    backend: Backend, transcript: Sequence[Turn], metrics: Sequence[DispositionMetric], call_start: datetime
) -> list[MetricValue]:
    """Every metric from one generation: the baseline for :func:`dispo.analytics.engine.extract`."""
    reply = backend.chat(
        extraction_messages(transcript, metrics, call_start),
        max_tokens=min(1024, 64 + 40 * len(metrics)),
        temperature=0.0,
    )
    answers = parse_lenient(reply.text, [m.identifier for m in metrics])
    return [
        MetricValue(m.identifier, m.type, coerce(m, answers.get(m.identifier)), 0.5, REASONING)
        for m in metrics
    ]


def summarize(backend: Backend, transcript: Sequence[Turn]) -> str:
    """The one-line-prompt summary: the baseline for :func:`dispo.analytics.engine.summarize`."""
    reply = backend.chat(
        [{"role": "user", "content": f"{transcript_text(transcript)}\n\n{SUMMARY_PROMPT}"}],
        max_tokens=96,
        temperature=0.0,
    )
    return reply.text.strip()


def parse_lenient(text: str, keys: Sequence[str]) -> dict[str, Any]:
    """The object a model meant to write: strict JSON, then repaired JSON, then ``"key": value`` pairs."""
    start = text.find("{")
    if start >= 0:
        end = text.rfind("}")
        body = text[start : end + 1] if end > start else text[start:] + "}"
        for candidate in (body, _repair(body)):
            try:
                obj = json.loads(candidate)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                return obj
    found: dict[str, Any] = {}
    for key in keys:
        match = re.search(
            rf"[\"']?{re.escape(key)}[\"']?\s*[:=]\s*(\"[^\"\n]*\"|'[^'\n]*'|[^,}}\n]*)", text, re.IGNORECASE
        )
        if match:
            found[key] = _scalar(match.group(1).strip())
    return found


def _repair(body: str) -> str:
    body = re.sub(r",\s*([}\]])", r"\1", body)  # trailing commas
    body = re.sub(r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", re.sub(r"\bNone\b", "null", body)))
    if '"' not in body:
        body = body.replace("'", '"')
    return body


def _scalar(raw: str) -> Any:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def coerce(metric: DispositionMetric, value: Any) -> Any:
    """The obvious typed reading of a loosely typed answer; anything else is returned unchanged."""
    if isinstance(value, str):
        value = value.strip()
        if value.casefold() in _NULLS:
            return None
    if value is None:
        return None
    if metric.type == "BOOLEAN" and not isinstance(value, bool):
        text = str(value).strip().casefold()
        return True if text in _TRUE else False if text in _FALSE else value
    if metric.type == "INTEGER":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value):
            return int(value)
        return value
    if metric.type == "ENUM" and isinstance(value, str):
        wanted = normalise_text(value)
        for choice in metric.choices or ():
            if normalise_text(choice) == wanted:
                return choice
        return value
    if metric.type == "STRING" and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value
