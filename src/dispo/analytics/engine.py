"""The analysis of one call: a summary and the configured disposition metrics.

Public entry points: :func:`analyze` (what the job runs), :func:`extract` and :func:`summarize`
(what ``dispo eval`` measures separately). All take a :class:`~dispo.llm.Backend`. The summary
lives in :mod:`.summary`; ``summarize`` is re-exported here.

How a metric is extracted, with a backend that can score (the local model):

1. **Evidence.** The call must mention the question's key terms, or (ENUM) one of the choices,
   or contain a value of the metric's type (a number, a date, a time). Otherwise the engine
   abstains: the value is ``None``. It never invents a value the call does not hold.
2. **Candidates** of the right type are taken from the transcript (:mod:`.candidates`):
   the choices named, "yes"/"no", the numbers, dates, times and name-like spans said.
3. **Ranking.** The model scores each candidate as the answer to the metric's question
   (:meth:`Backend.score`): the log-probability of the whole candidate followed by the end of
   the turn. A small prior favours what was said last and what the user said. The transcript is
   the prompt's prefix for every metric, so the KV cache evaluates it once per call.
4. **Normalisation** (:mod:`.normalize`) makes the value valid for its type: ENUM one of the
   choices, BOOLEAN a bool, INTEGER an int, DATETIME ISO 8601 in the call's timezone (relative
   phrases resolved against the call's start), STRING trimmed.

``confidence`` is the softmax probability of the chosen candidate among those scored — the
model's own token probabilities, renormalised over the candidates. ``reasoning`` quotes the turn
the value comes from.

With a backend that cannot score (``openai``), all metrics are extracted in one generation
constrained by a JSON schema, then normalised the same way; confidence is then the exponential
of the reply's mean token log-probability when the server reports it.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypedDict

from dispo.analytics import candidates as cand
from dispo.analytics import normalize as norm
from dispo.analytics.config import AnalyticsConfig, DispositionMetric
from dispo.analytics.summary import DEFAULT_SUMMARY_PROMPT as DEFAULT_SUMMARY_PROMPT
from dispo.analytics.summary import summarize as summarize
from dispo.llm import Backend, Message

SYSTEM_PROMPT = (
    "You read transcripts of phone calls between an AI agent and a user and answer questions about "
    "them with short values copied from the call."
)
_HINTS = {
    "STRING": "Answer with the exact words from the call.",
    "BOOLEAN": "Answer Yes or No.",
    "INTEGER": "Answer with a number.",
    "ENUM": "Answer with one of: {choices}.",
    "DATETIME": "Answer with the {part} as said in the call.",
}
ANSWER_PREFIX = "Answer:"
MAX_CANDIDATES = 4
# Candidates whose prior trails the best one's by more than this are not worth the model's time.
PRIOR_BEAM = 2.5
# Log-prior added to a candidate's score. Later mentions and the user's own words are likelier to
# be the value the call settled on; a value said in (or in answer to) a turn that uses the
# question's own words is likelier to answer it ("What city are you leaving from?" — "London.").
RECENCY_WEIGHT = 1.0
USER_WEIGHT = 0.5
TOPIC_WEIGHT = 1.5
UNIT_WEIGHT = 3.0
# A STRING span that starts with a number is an address: likely only when the question asks for one.
ADDRESS_WEIGHT = 1.5


class Turn(TypedDict):
    role: Literal["user", "agent"]
    content: str


@dataclass(frozen=True)
class MetricValue:
    """One extracted metric. ``value`` is None when the call does not contain the answer."""

    identifier: str
    type: str
    value: Any
    confidence: float
    reasoning: str

    def to_json(self) -> dict[str, Any]:
        return {
            "identifier": self.identifier,
            "type": self.type,
            "value": self.value,
            "confidence": round(self.confidence, 3),
            "reasoning": self.reasoning,
        }


@dataclass
class Analysis:
    summary: str | None
    metrics: list[MetricValue]
    model_id: str
    duration_ms: float = 0.0
    model_ms: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


def analyze(
    backend: Backend, transcript: Sequence[Turn], config: AnalyticsConfig, call_start: datetime
) -> Analysis:
    """Summarise the call and extract every metric of ``config``."""
    started = time.perf_counter()
    model_before = _model_ms(backend)
    metrics = extract(backend, transcript, config.metrics, call_start)
    extracted = time.perf_counter()
    summary_text = summarize(backend, transcript, config.summary_prompt) if transcript else None
    finished = time.perf_counter()
    analysis = Analysis(summary_text, metrics, backend.model_id)
    analysis.duration_ms = (finished - started) * 1000
    analysis.model_ms = _model_ms(backend) - model_before
    analysis.timings = {
        "extract_ms": (extracted - started) * 1000,
        "summary_ms": (finished - extracted) * 1000,
    }
    return analysis


def _model_ms(backend: Backend) -> float:
    return float(getattr(backend, "model_ms_total", 0.0))


def format_transcript(transcript: Sequence[Mapping[str, object]]) -> str:
    return "\n".join(
        f"{'User' if t['role'] == 'user' else 'Agent'}: {str(t['content']).strip()}" for t in transcript
    )


# -- extraction ---------------------------------------------------------------------------------


def extract(
    backend: Backend, transcript: Sequence[Turn], metrics: Sequence[DispositionMetric], call_start: datetime
) -> list[MetricValue]:
    """Extract each metric from the transcript; values are always valid for their type or None."""
    if not metrics:
        return []
    turns = [{"role": str(t["role"]), "content": str(t["content"])} for t in transcript]
    if not turns:
        return [_abstain(m, "The call has no transcript.") for m in metrics]
    if not backend.can_score:
        return _extract_structured(backend, turns, metrics, call_start)
    ctx = _Context(backend, turns, format_transcript(transcript), call_start)
    extractors: dict[str, Callable[[_Context, DispositionMetric], MetricValue]] = {
        "ENUM": _extract_enum,
        "BOOLEAN": _extract_bool,
        "INTEGER": _extract_int,
        "DATETIME": _extract_datetime,
        "STRING": _extract_string,
    }
    # BOOLEAN questions are asked about a short excerpt, not the whole transcript: they go last,
    # so the transcript stays the cached prefix of every other question.
    order = sorted(range(len(metrics)), key=lambda i: metrics[i].type == "BOOLEAN")
    results: dict[int, MetricValue] = {}
    for i in order:
        results[i] = _checked(extractors[metrics[i].type](ctx, metrics[i]), metrics[i])
    return [results[i] for i in range(len(metrics))]


_YES_NO = ("Yes", "No")
# Content-free baseline scores by (model, question, hint, options): a config's questions are the
# same for every call, so each baseline is computed once per process.
_BASELINES: dict[tuple[str, str, str, tuple[str, ...]], list[float]] = {}
_BASELINES_MAX = 4096


@dataclass
class _Context:
    backend: Backend
    turns: list[dict[str, str]]
    text: str
    call_start: datetime

    def messages(self, metric: DispositionMetric, hint: str, text: str | None = None) -> list[Message]:
        transcript = self.text if text is None else text
        return [
            {"role": "system", "content": SYSTEM_PROMPT},
            {
                "role": "user",
                "content": f"Call transcript:\n{transcript}\n\nQuestion: {metric.prompt}\n{hint}",
            },
        ]

    def baseline(self, metric: DispositionMetric, hint: str, options: Sequence[str]) -> list[float]:
        """The scores of ``options`` for this question asked of an empty call (contextual calibration).

        A small model prefers some answers whatever the call says (most say "No"). Subtracting
        what it answers with no call at all (Zhao et al., 2021, "Calibrate before use") leaves
        what the call itself adds.
        """
        key = (self.backend.model_id, metric.prompt, hint, tuple(options))
        scores = _BASELINES.get(key)
        if scores is None:
            scores = self.backend.score(
                self.messages(metric, hint, "(no transcript)"),
                [" " + o for o in options],
                prefix=ANSWER_PREFIX,
            )
            if len(_BASELINES) >= _BASELINES_MAX:
                _BASELINES.clear()
            _BASELINES[key] = scores
        return scores

    def rank(
        self,
        metric: DispositionMetric,
        hint: str,
        options: Sequence[tuple[str, float]],
        *,
        calibrate: bool = False,
    ) -> tuple[int, float, list[float]]:
        """Score ``(answer text, log-prior)`` options; the best index, its probability, all scores."""
        texts = [" " + text for text, _ in options]
        scores = self.backend.score(self.messages(metric, hint), texts, prefix=ANSWER_PREFIX)
        if calibrate:
            base = self.baseline(metric, hint, [text for text, _ in options])
            scores = [s - b for s, b in zip(scores, base, strict=True)]
        total = [s + prior for s, (_, prior) in zip(scores, options, strict=True)]
        best = max(range(len(total)), key=total.__getitem__)
        return best, _softmax(total)[best], total

    def quote(self, turn: int | None) -> str:
        if turn is None:
            return ""
        t = self.turns[turn]
        content = " ".join(t["content"].split())
        if len(content) > 160:
            content = content[:157] + "…"
        return f'The {t["role"]} said: "{content}"'


def _softmax(values: Sequence[float]) -> list[float]:
    peak = max(values)
    exps = [math.exp(v - peak) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


def _abstain(metric: DispositionMetric, why: str, confidence: float = 1.0) -> MetricValue:
    return MetricValue(metric.identifier, metric.type, None, confidence, why)


def _checked(result: MetricValue, metric: DispositionMetric) -> MetricValue:
    # The last line of defence: a value invalid for its type is never stored.
    if norm.is_valid(metric.type, result.value, metric.choices):
        return result
    return _abstain(metric, f"The extracted value {result.value!r} is not a valid {metric.type}.", 0.0)


def _priors(
    mentions: Sequence[cand.Mention], metric: DispositionMetric, turns: Sequence[dict[str, str]]
) -> list[float]:
    hits = cand.term_hits(metric.prompt, turns)
    terms = set(cand.key_terms(metric.prompt))
    last = max(len(turns) - 1, 1)
    out = []
    for m in mentions:
        topic = max(hits[m.turn], hits[m.turn - 1] if m.turn > 0 else 0)
        unit = any(cand.matches(t, w) for t in terms for w in m.after.split())
        out.append(
            RECENCY_WEIGHT * m.turn / last
            + (USER_WEIGHT if m.role == "user" else 0.0)
            + TOPIC_WEIGHT * min(topic, 2)
            + (UNIT_WEIGHT if unit else 0.0)
        )
    return out


def _pick(
    ctx: _Context,
    metric: DispositionMetric,
    hint: str,
    mentions: Sequence[cand.Mention],
    render: Callable[[cand.Mention], str],
    bias: Sequence[float] = (),
) -> tuple[cand.Mention, float]:
    priors = _priors(mentions, metric, ctx.turns)
    if bias:
        priors = [p + b for p, b in zip(priors, bias, strict=True)]
    # The model ranks the likeliest few: scoring costs one short decode per candidate.
    ranked = sorted(zip(mentions, priors, strict=True), key=lambda mp: mp[1])[-MAX_CANDIDATES:]
    ranked = [mp for mp in ranked if mp[1] >= ranked[-1][1] - PRIOR_BEAM]
    if len(ranked) == 1:
        return ranked[0][0], 1.0
    best, confidence, _ = ctx.rank(metric, hint, [(render(m), p) for m, p in ranked])
    return ranked[best][0], confidence


def _extract_enum(ctx: _Context, metric: DispositionMetric) -> MetricValue:
    choices = metric.choices or ()
    named: dict[str, cand.Mention] = {}
    user_named: dict[str, cand.Mention] = {}
    for i, turn in enumerate(ctx.turns):
        words = re.findall(r"[a-z0-9]+", turn["content"].lower())
        joined = " ".join(words)
        stems = " ".join(cand.stem(w) for w in words)
        for choice in choices:
            folded = " ".join(re.findall(r"[a-z0-9]+", choice.lower()))
            choice_stems = " ".join(cand.stem(w) for w in folded.split())
            if re.search(rf"\b{re.escape(folded)}\b", joined) or re.search(
                rf"\b{re.escape(choice_stems)}\b", stems
            ):
                mention = cand.Mention(choice, choice, i, i, turn["role"])
                named.pop(choice, None)
                named[choice] = mention
                if turn["role"] == "user":
                    user_named.pop(choice, None)
                    user_named[choice] = mention
    hint = _HINTS["ENUM"].format(choices=", ".join(choices))
    if not named:
        return _abstain(metric, f"The call names none of the choices ({', '.join(choices)}).")
    # When the user names a choice, the user's words settle it ("cleaning or whitening?" — "A cleaning").
    named = user_named or named
    mention, confidence = _pick(ctx, metric, hint, list(named.values()), lambda m: str(m.value))
    if len(named) == 1:
        # One choice named: the model's probability of it among all choices is the confidence.
        _, _, scores = ctx.rank(metric, hint, [(c, 0.0) for c in choices])
        confidence = _softmax(scores)[choices.index(mention.value)]
    return MetricValue(metric.identifier, metric.type, mention.value, confidence, ctx.quote(mention.turn))


def _not_mentioned(metric: DispositionMetric) -> str:
    terms = cand.key_terms(metric.prompt)
    return f"The call does not mention {', '.join(terms[:4]) or 'the subject of the question'}."


_POSITIVE = frozenset(
    [
        "yes",
        "yeah",
        "yep",
        "yup",
        "sure",
        "please",
        "ok",
        "okay",
        "correct",
        "right",
        "great",
        "perfect",
        "confirmed",
        "booked",
        "reserved",
        "successfully",
        "success",
        "done",
        "sounds",
        "works",
        "fine",
        "absolutely",
        "definitely",
    ]
)
_NEGATIVE = frozenset(
    [
        "no",
        "nope",
        "not",
        "don't",
        "dont",
        "doesn't",
        "won't",
        "can't",
        "cannot",
        "unable",
        "sorry",
        "failed",
        "fail",
        "unfortunately",
        "never",
        "neither",
        "nor",
        "without",
    ]
)
POLARITY_WEIGHT = 2.0


def _polarity(text: str) -> int:
    words = re.findall(r"[a-z']+", text.lower())
    return sum(w in _POSITIVE for w in words) - sum(w in _NEGATIVE for w in words)


def _extract_bool(ctx: _Context, metric: DispositionMetric) -> MetricValue:
    hits = cand.term_hits(metric.prompt, ctx.turns)
    if not any(hits):
        return _abstain(metric, _not_mentioned(metric))
    # The exchange that settles the question: the last turn that speaks of it, and the reply.
    strongest = max(hits)
    turn = max(i for i, h in enumerate(hits) if h * 2 >= strongest)
    excerpt = ctx.turns[turn : turn + 2]
    answer = excerpt[-1]["content"]
    focused = _Context(ctx.backend, list(excerpt), format_transcript(excerpt), ctx.call_start)
    _, _, scores = focused.rank(metric, _HINTS["BOOLEAN"], [(o, 0.0) for o in _YES_NO], calibrate=True)
    margin = scores[0] - scores[1] + POLARITY_WEIGHT * max(-1, min(1, _polarity(answer)))
    confidence = 1 / (1 + math.exp(-abs(margin)))
    return MetricValue(
        metric.identifier, metric.type, margin > 0, confidence, focused.quote(len(excerpt) - 1)
    )


def _extract_int(ctx: _Context, metric: DispositionMetric) -> MetricValue:
    mentions = cand.distinct(cand.numbers(ctx.turns))
    if not mentions:
        return _abstain(metric, "The call mentions no number.")
    if not any(cand.term_hits(metric.prompt, ctx.turns)):
        return _abstain(metric, _not_mentioned(metric))
    mention, confidence = _pick(ctx, metric, _HINTS["INTEGER"], mentions, lambda m: str(m.value))
    return MetricValue(
        metric.identifier, metric.type, int(mention.value), confidence, ctx.quote(mention.turn)
    )


def _datetime_part(prompt: str) -> str:
    text = prompt.lower()
    wants_time = bool(re.search(r"\btime\b|\bclock\b|\bhour\b|\(time\)", text))
    wants_date = bool(re.search(r"\bdate\b|\bday\b|\(date\)", text))
    if re.search(r"\bwhen\b", text):
        wants_time = wants_date = True
    if wants_time and not wants_date:
        return "time"
    if wants_date and not wants_time:
        return "date"
    return "date and time"


def _extract_datetime(ctx: _Context, metric: DispositionMetric) -> MetricValue:
    part = _datetime_part(metric.prompt)
    hint = _HINTS["DATETIME"].format(part=part)
    dates = cand.distinct(cand.dates(ctx.turns, ctx.call_start))
    times = cand.distinct(cand.times(ctx.turns))
    if part == "time":
        if not times:
            return _abstain(metric, "The call mentions no time of day.")
        mention, confidence = _pick(ctx, metric, hint, times, lambda m: m.surface)
        day = dates[-1].value if dates else None
        value = norm.combine(day, mention.value, ctx.call_start)
    else:
        if not dates:
            return _abstain(metric, "The call mentions no date.")
        mention, confidence = _pick(ctx, metric, hint, dates, lambda m: m.surface)
        clock = times[-1].value if (times and part != "date") else None
        value = norm.combine(mention.value, clock, ctx.call_start)
    return MetricValue(metric.identifier, metric.type, value, confidence, ctx.quote(mention.turn))


def _extract_string(ctx: _Context, metric: DispositionMetric) -> MetricValue:
    # No abstention on missing key terms here: names answer questions in words of their own
    # ("flying to Seattle" answers "the airport or city to arrive at"), so only a call that names
    # nothing at all abstains.
    mentions = cand.distinct(cand.spans(ctx.turns))
    if not mentions:
        # Nothing name-like: the value is a plain word the user said ("pop", "comedy").
        terms = set(cand.key_terms(metric.prompt))
        mentions = [
            m
            for m in cand.distinct(cand.words(ctx.turns))
            if not any(cand.matches(t, m.surface.lower()) for t in terms)
        ]
    if not mentions:
        return _abstain(metric, "The call names nothing that could answer this.")
    wants_address = bool(re.search(r"\baddress|\bstreet\b", metric.prompt.lower()))
    bias = [
        (ADDRESS_WEIGHT if wants_address else -ADDRESS_WEIGHT) if m.surface[:1].isdigit() else 0.0
        for m in mentions
    ]
    mention, confidence = _pick(ctx, metric, _HINTS["STRING"], mentions, lambda m: m.surface, bias)
    value = norm.normalize_string(mention.surface)
    return MetricValue(metric.identifier, metric.type, value, confidence, ctx.quote(mention.turn))


# -- one-pass structured extraction (backends that cannot score) ---------------------------------


def json_schema(metrics: Sequence[DispositionMetric]) -> dict[str, Any]:
    """The JSON schema of one object holding every metric (null where the call does not say)."""
    kinds = {"STRING": "string", "BOOLEAN": "boolean", "INTEGER": "integer", "DATETIME": "string"}
    props: dict[str, Any] = {}
    for m in metrics:
        if m.type == "ENUM":
            props[m.identifier] = {"enum": [*(m.choices or ()), None], "description": m.prompt}
        else:
            props[m.identifier] = {"type": [kinds[m.type], "null"], "description": m.prompt}
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def _extract_structured(
    backend: Backend, turns: list[dict[str, str]], metrics: Sequence[DispositionMetric], call_start: datetime
) -> list[MetricValue]:
    questions = "\n".join(f"- {m.identifier} ({m.type}): {m.prompt}" for m in metrics)
    prompt = (
        f"Call transcript (the call started {call_start.isoformat()}):\n{format_transcript(turns)}\n\n"
        f"Extract these fields as one JSON object; use null when the call does not say:\n{questions}\n"
        "Dates and times: ISO 8601, resolving relative phrases against the call's start."
    )
    completion = backend.chat(
        [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}],
        max_tokens=64 + 48 * len(metrics),
        json_schema=json_schema(metrics),
    )
    try:
        raw = json.loads(completion.text)
    except ValueError:
        raw = {}
    raw = raw if isinstance(raw, dict) else {}
    confidence = math.exp(completion.mean_logprob) if completion.mean_logprob is not None else 0.5
    ctx = _Context(backend, turns, "", call_start)
    out: list[MetricValue] = []
    for m in metrics:
        value = normalize_value(m, raw.get(m.identifier), call_start)
        turn = _turn_mentioning(turns, value)
        reasoning = ctx.quote(turn) if value is not None else "The call does not say."
        out.append(_checked(MetricValue(m.identifier, m.type, value, confidence, reasoning), m))
    return out


def normalize_value(metric: DispositionMetric, raw: Any, call_start: datetime) -> Any:
    """Any model output made valid for ``metric``'s type, or None."""
    if metric.type == "STRING":
        return norm.normalize_string(raw)
    if metric.type == "BOOLEAN":
        return norm.normalize_bool(raw)
    if metric.type == "INTEGER":
        return norm.normalize_int(raw)
    if metric.type == "ENUM":
        return norm.normalize_choice(raw, metric.choices or ())
    return norm.normalize_datetime(raw, call_start)


def _turn_mentioning(turns: Sequence[dict[str, str]], value: Any) -> int | None:
    if value is None:
        return None
    needle = str(value).lower()
    for i in range(len(turns) - 1, -1, -1):
        if needle in turns[i]["content"].lower():
            return i
    return None
