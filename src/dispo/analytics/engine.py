"""The analysis of one call: a summary and the configured disposition metrics.

Public entry points: :func:`analyze` (what the job runs), :func:`extract` and :func:`summarize`
(what ``dispo eval`` measures separately). All take a :class:`~dispo.llm.Backend`. The summary
lives in :mod:`.summary`; ``summarize`` is re-exported here.

How a metric is extracted, with a backend that can score (the local model):

0. **The prompt** is taken apart (:mod:`.question`): the question itself, its *subject* (the
   user's or the agent's attribute) and the prompt's own *fallback* ("Return 'unknown' if not
   mentioned", "0 if none", "otherwise false").
1. **Evidence.** The call must mention the question's key terms, or (ENUM) one of the choices,
   or contain a value of the metric's type (a number, a date, a time, a figure of the kind asked:
   "$50" for a price). Otherwise there is nothing to propose.
2. **Candidates** of the right type are taken from the transcript (:mod:`.candidates`):
   the choices named (not negated: "not interested" does not name "interested"), the numbers,
   dates, times and name-like spans said. **Whose answer it is:** a question about the user takes
   no value the call marks as the agent's (its self-introduction, "I'm Alex", "this is Maya from
   …"), and a question asking for a person's name only a name that person gave or was addressed
   by; the reverse for the agent.
3. **Ranking.** The model scores each candidate as the answer to the metric's question
   (:meth:`Backend.score`): the log-probability of the whole candidate followed by the end of
   the turn. A small prior favours what was said last and what the user said. The transcript is
   the prompt's prefix for every metric, so the KV cache evaluates it once per call. Yes/no
   questions (BOOLEAN, and ENUMs with yes and no choices) are asked of the exchange that settles
   them, with the answering turn's wording read for yes or no, negations understood.
4. **Decision** (:mod:`.calibration`): the proposal's evidence features give the calibrated
   probability that it is right and that the call does not hold the answer; the engine abstains
   when the latter wins. An abstention answers the prompt's own fallback, typed, or an ENUM's
   "unclear"/"unknown"/"other" choice, else null.
5. **Normalisation** (:mod:`.normalize`) makes the value valid for its type: ENUM one of the
   choices, BOOLEAN a bool, INTEGER an int, DATETIME ISO 8601 in the call's timezone (relative
   phrases resolved against the call's start), STRING trimmed.

``confidence`` is the calibrated probability that the value returned is right (for an
abstention: that the call does not say), clipped to [0.01, 0.99]. ``reasoning`` quotes the turn
the value comes from, or says why there is none.

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

from dispo.analytics import calibration as cal
from dispo.analytics import candidates as cand
from dispo.analytics import normalize as norm
from dispo.analytics import question as qn
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
# A number that counts what was found ("I found 10 restaurants") seldom answers "how many".
LISTING_WEIGHT = 2.0


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
    # What the engine would have answered before deciding whether to abstain, and the evidence it
    # weighed (see :mod:`.calibration`). Not part of the API's JSON; `dispo eval` records them.
    proposed: Any = field(default=None, compare=False, repr=False)
    features: Mapping[str, float] | None = field(default=None, compare=False, repr=False)

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
    """Summarise the call and extract every metric of ``config``.

    The questions asked of the whole call go first and share one cached prefix (the system
    prompt and the transcript); the yes/no questions, asked of short excerpts, go last, so that
    none of them sits between two of the others and makes the transcript be evaluated again. The
    summary, with its own system prompt (docs/analytics.md says why), evaluates it once more.
    """
    started = time.perf_counter()
    model_before = _model_ms(backend)
    extraction = Extraction(backend, transcript, config.metrics, call_start)
    extraction.run(excerpts=False)
    whole = time.perf_counter()
    summary_text = summarize(backend, transcript, config.summary_prompt) if transcript else None
    summarized = time.perf_counter()
    extraction.run(excerpts=True)
    finished = time.perf_counter()
    analysis = Analysis(summary_text, extraction.results(), backend.model_id)
    analysis.duration_ms = (finished - started) * 1000
    analysis.model_ms = _model_ms(backend) - model_before
    analysis.timings = {
        "extract_ms": (whole - started + finished - summarized) * 1000,
        "summary_ms": (summarized - whole) * 1000,
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
    extraction = Extraction(backend, transcript, metrics, call_start)
    extraction.run(excerpts=False)
    extraction.run(excerpts=True)
    return extraction.results()


class Extraction:
    """The metrics of one call, extracted in two passes that :func:`analyze` runs around the summary.

    The first pass asks the questions asked of the whole transcript, so the transcript stays the
    cached prefix of every prompt; the second the yes/no questions (BOOLEAN, and ENUMs with yes
    and no choices), asked of the exchange that settles them.
    """

    def __init__(
        self,
        backend: Backend,
        transcript: Sequence[Turn],
        metrics: Sequence[DispositionMetric],
        call_start: datetime,
    ) -> None:
        self.metrics = list(metrics)
        self.turns = [{"role": str(t["role"]), "content": str(t["content"])} for t in transcript]
        self.ctx = _Context(backend, self.turns, format_transcript(transcript), call_start)
        self.done: dict[int, MetricValue] = {}
        if not self.turns:
            for i, m in enumerate(self.metrics):
                self.done[i] = _with_fallback(m, qn.parse(m.prompt), "The call has no transcript.", 1.0)
        elif self.metrics and not backend.can_score:
            values = _extract_structured(backend, self.turns, self.metrics, call_start)
            self.done.update(enumerate(values))

    def run(self, *, excerpts: bool) -> None:
        """Extract the metrics of one pass not extracted yet: excerpt questions or the others."""
        calibration = cal.active()
        for i, metric in enumerate(self.metrics):
            if i in self.done or asked_of_excerpt(metric) != excerpts:
                continue
            question = qn.parse(metric.prompt)
            proposal = _EXTRACTORS[metric.type](self.ctx, metric, question)
            self.done[i] = _checked(_decide(calibration, metric, question, proposal), metric)

    def results(self) -> list[MetricValue]:
        """Every metric's value, in the order of the configuration, once both passes have run."""
        return [self.done[i] for i in range(len(self.metrics))]


def asked_of_excerpt(metric: DispositionMetric) -> bool:
    """Whether the metric is a yes/no question, asked of an excerpt rather than the whole call."""
    return metric.type == "BOOLEAN" or (
        metric.type == "ENUM" and _polar_choices(metric.choices or ()) is not None
    )


_YES_NO = ("Yes", "No")
# Content-free baseline scores by (model, question, hint, options): a config's questions are the
# same for every call, so each baseline is computed once per process.
_BASELINES: dict[tuple[str, str, str, tuple[str, ...]], list[float]] = {}
_BASELINES_MAX = 4096


@dataclass
class _Proposal:
    """The value an extractor would answer (None: the call holds no candidate), and why."""

    value: Any
    reasoning: str
    features: dict[str, float]


@dataclass
class _Choice:
    """How a candidate was chosen: its probability among those scored, and among how many."""

    mention: cand.Mention
    probability: float
    candidates: int
    single: bool


@dataclass
class _Context:
    backend: Backend
    turns: list[dict[str, str]]
    text: str
    call_start: datetime

    def messages(self, question: str, hint: str, text: str | None = None) -> list[Message]:
        transcript = self.text if text is None else text
        return [
            {"role": "system", "content": SYSTEM_PROMPT},
            {
                "role": "user",
                "content": f"Call transcript:\n{transcript}\n\nQuestion: {question}\n{hint}",
            },
        ]

    def baseline(self, question: str, hint: str, options: Sequence[str]) -> list[float]:
        """The scores of ``options`` for this question asked of an empty call (contextual calibration).

        A small model prefers some answers whatever the call says (most say "No"). Subtracting
        what it answers with no call at all (Zhao et al., 2021, "Calibrate before use") leaves
        what the call itself adds.
        """
        key = (self.backend.model_id, question, hint, tuple(options))
        scores = _BASELINES.get(key)
        if scores is None:
            scores = self.backend.score(
                self.messages(question, hint, "(no transcript)"),
                [" " + o for o in options],
                prefix=ANSWER_PREFIX,
            )
            if len(_BASELINES) >= _BASELINES_MAX:
                _BASELINES.clear()
            _BASELINES[key] = scores
        return scores

    def rank(
        self,
        question: str,
        hint: str,
        options: Sequence[tuple[str, float]],
        *,
        calibrate: bool = False,
    ) -> tuple[int, float, list[float]]:
        """Score ``(answer text, log-prior)`` options; the best index, its probability, all scores."""
        texts = [" " + text for text, _ in options]
        scores = self.backend.score(self.messages(question, hint), texts, prefix=ANSWER_PREFIX)
        if calibrate:
            base = self.baseline(question, hint, [text for text, _ in options])
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

    def features(
        self,
        question: qn.Question,
        choice: _Choice | None = None,
        *,
        probability: float | None = None,
        agrees: bool = False,
    ) -> dict[str, float]:
        """The evidence behind a proposal, for the calibrated confidence (see :mod:`.calibration`)."""
        hits = cand.term_hits(question.text, self.turns)
        terms = set(cand.key_terms(question.text))
        said = set().union(*(cand.words_of(t["content"]) for t in self.turns)) if self.turns else set()
        # A question without key terms ("What is the user's name?") misses none of them.
        cover = sum(any(cand.matches(term, w) for w in said) for term in terms) / len(terms) if terms else 1.0
        out = {"bias": 1.0, "cover": cover, "none": 0.0 if (choice or probability is not None) else 1.0}
        if choice is not None:
            m = choice.mention
            topic = max(hits[m.turn], hits[m.turn - 1] if m.turn > 0 else 0)
            out.update(
                p=0.0 if choice.single else cal.logit(choice.probability),
                single=1.0 if choice.single else 0.0,
                n=math.log1p(choice.candidates),
                near=min(topic, 2) / 2,
                user=1.0 if m.role == "user" else 0.0,
                named=1.0 if question.asks_name and m.naming and m.about == question.subject else 0.0,
            )
        elif probability is not None:
            out.update(p=cal.logit(probability), n=math.log(2), pol=1.0 if agrees else 0.0)
        return out


def _softmax(values: Sequence[float]) -> list[float]:
    peak = max(values)
    exps = [math.exp(v - peak) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


def _none(ctx: _Context, question: qn.Question, why: str) -> _Proposal:
    return _Proposal(None, why, ctx.features(question))


# ENUM choices that say the call gave no clear answer: chosen when the engine would abstain.
ABSTAIN_CHOICES = frozenset(
    [
        "unclear",
        "unknown",
        "other",
        "not sure",
        "unsure",
        "undecided",
        "undetermined",
        "n/a",
        "na",
        "none",
        "not mentioned",
        "not specified",
        "not stated",
        "not given",
        "no answer",
        "not applicable",
        "cannot tell",
        "can't tell",
    ]
)


def abstain_choice(choices: Sequence[str]) -> str | None:
    """The ENUM choice that means "no clear answer" ("unclear", "unknown", "other"), if there is one."""
    for choice in choices:
        if " ".join(re.findall(r"[a-z/']+", choice.lower())) in ABSTAIN_CHOICES:
            return choice
    return None


def fallback_value(metric: DispositionMetric, question: qn.Question) -> tuple[Any, str] | None:
    """What to answer when the call does not say: the prompt's own fallback, typed, or an ENUM's
    "unclear"-like choice; with the words that justify it. None: null is the answer."""
    if question.fallback is not None:
        value = qn.typed_fallback(question.fallback.text, metric.type, metric.choices)
        if value is not None and norm.is_valid(metric.type, value, metric.choices):
            return value, f"The prompt says to answer {question.fallback.text!r} then."
    if metric.type == "ENUM":
        choice = abstain_choice(metric.choices or ())
        if choice is not None:
            return choice, f"{choice!r} is the choice for a call that gives no clear answer."
    return None


def _with_fallback(
    metric: DispositionMetric, question: qn.Question, why: str, confidence: float, **extra: Any
) -> MetricValue:
    fallback = fallback_value(metric, question)
    if fallback is None:
        return MetricValue(metric.identifier, metric.type, None, confidence, why, **extra)
    value, because = fallback
    return MetricValue(metric.identifier, metric.type, value, confidence, f"{why} {because}", **extra)


def _decide(
    calibration: cal.Calibration, metric: DispositionMetric, question: qn.Question, proposal: _Proposal
) -> MetricValue:
    """The proposal, or an abstention when the call is likelier not to hold the answer; calibrated."""
    keep, confidence = calibration.decide(metric.type, proposal.features)
    extra = {"proposed": proposal.value, "features": proposal.features}
    if keep and proposal.value is not None:
        return MetricValue(
            metric.identifier, metric.type, proposal.value, confidence, proposal.reasoning, **extra
        )
    why = proposal.reasoning
    if proposal.value is not None:
        why = (
            f"The call does not clearly say: the likeliest answer, {proposal.value!r}, is right with "
            f"probability {calibration.p_right(metric.type, proposal.features):.2f} only. {why}"
        ).strip()
    return _with_fallback(metric, question, why, confidence, **extra)


def decision(
    metric: DispositionMetric,
    proposed: Any,
    features: Mapping[str, float],
    calibration: cal.Calibration | None = None,
) -> tuple[Any, float]:
    """The value returned for a proposal and its confidence: what :func:`extract` answers, given the
    proposal and its features (``dispo eval`` re-decides a saved run with a new calibration)."""
    calibration = calibration or cal.active()
    keep, confidence = calibration.decide(metric.type, features)
    if keep and proposed is not None:
        return proposed, confidence
    fallback = fallback_value(metric, qn.parse(metric.prompt))
    return (fallback[0] if fallback else None), confidence


def _abstain(metric: DispositionMetric, why: str, confidence: float = 1.0) -> MetricValue:
    return MetricValue(metric.identifier, metric.type, None, confidence, why)


def _checked(result: MetricValue, metric: DispositionMetric) -> MetricValue:
    # The last line of defence: a value invalid for its type is never stored.
    if norm.is_valid(metric.type, result.value, metric.choices):
        return result
    return _abstain(metric, f"The extracted value {result.value!r} is not a valid {metric.type}.", 0.0)


def _priors(
    mentions: Sequence[cand.Mention], question: qn.Question, turns: Sequence[dict[str, str]]
) -> list[float]:
    hits = cand.term_hits(question.text, turns)
    terms = set(cand.key_terms(question.text))
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
    question: qn.Question,
    hint: str,
    mentions: Sequence[cand.Mention],
    render: Callable[[cand.Mention], str],
    bias: Sequence[float] = (),
) -> _Choice:
    priors = _priors(mentions, question, ctx.turns)
    if bias:
        priors = [p + b for p, b in zip(priors, bias, strict=True)]
    # The model ranks the likeliest few: scoring costs one short decode per candidate.
    ranked = sorted(zip(mentions, priors, strict=True), key=lambda mp: mp[1])[-MAX_CANDIDATES:]
    ranked = [mp for mp in ranked if mp[1] >= ranked[-1][1] - PRIOR_BEAM]
    if len(ranked) == 1:
        return _Choice(ranked[0][0], 1.0, len(mentions), True)
    best, probability, _ = ctx.rank(question.text, hint, [(render(m), p) for m, p in ranked])
    return _Choice(ranked[best][0], probability, len(mentions), False)


def _whose(
    mentions: Sequence[cand.Mention], question: qn.Question
) -> tuple[list[cand.Mention], list[cand.Mention]]:
    """The mentions that can answer a question about its subject, and those that belong to the other
    party (the agent's own name, for a question about the user).

    A value the call marks as the other party's ("I'm Alex", said by the agent) never answers a
    question about the user, wherever else it is said; a question that asks for a person's name
    takes only a name the call marks as that person's: one they gave, or were addressed by.
    """
    if question.subject is None:
        return list(mentions), []
    theirs = cand.other(question.subject)

    def key(m: cand.Mention) -> Any:
        return m.value.lower() if isinstance(m.value, str) else m.value

    ours = {key(m) for m in mentions if m.about == question.subject}
    excluded = {key(m) for m in mentions if m.about == theirs} - ours
    kept = [m for m in mentions if key(m) not in excluded]
    if question.asks_name:
        kept = [m for m in kept if m.about == question.subject and m.naming]
    return kept, [m for m in mentions if m.about == theirs]


def _not_theirs(question: qn.Question, theirs: Sequence[cand.Mention]) -> str:
    if not theirs or question.subject is None:
        return ""
    party = cand.other(question.subject)
    names = ", ".join(dict.fromkeys(m.surface for m in theirs))
    return f" ({names}: the {party}'s own, not the {question.subject}'s.)"


def _not_mentioned(question: qn.Question) -> str:
    terms = cand.key_terms(question.text)
    return f"The call does not mention {', '.join(terms[:4]) or 'the subject of the question'}."


def _choice_mentions(
    ctx: _Context, question: qn.Question, choices: Sequence[str]
) -> tuple[dict[str, cand.Mention], dict[str, cand.Mention]]:
    """Where each choice is named, last time first; and where the user named it. A negated choice
    ("not interested") is not named, and neither is one the other party says of itself."""
    named: dict[str, cand.Mention] = {}
    user_named: dict[str, cand.Mention] = {}
    theirs = cand.other(question.subject) if question.subject else None
    for i, turn in enumerate(ctx.turns):
        text = turn["content"]
        folded_text = text.lower()
        for choice in choices:
            folded = " ".join(re.findall(r"[a-z0-9]+", choice.lower()))
            if not folded:
                continue
            words = folded.split()
            pattern = r"\W+".join(
                rf"{re.escape(cand.stem(w))}[a-z0-9]*" if len(w) > 4 else re.escape(w) for w in words
            )
            found = None
            for m in re.finditer(rf"\b{pattern}\b", folded_text):
                if cand.negated_at(text, m.start()) and not re.match(r"(?:not|no)\b", folded):
                    continue
                if theirs is not None and cand.about(ctx.turns, i, m.start(), m.end()) == theirs:
                    continue
                found = m
            if found is None:
                continue
            mention = cand.Mention(choice, choice, i, i, turn["role"])
            named.pop(choice, None)
            named[choice] = mention
            if turn["role"] == "user":
                user_named.pop(choice, None)
                user_named[choice] = mention
    return named, user_named


def _polar_choices(choices: Sequence[str]) -> tuple[str, str] | None:
    """An ENUM whose choices include yes and no: (the yes choice, the no choice)."""
    yes = next((c for c in choices if c.strip().lower() in {"yes", "true", "y"}), None)
    no = next((c for c in choices if c.strip().lower() in {"no", "false", "n"}), None)
    return (yes, no) if yes and no else None


def _extract_enum(ctx: _Context, metric: DispositionMetric, question: qn.Question) -> _Proposal:
    choices = metric.choices or ()
    polar = _polar_choices(choices)
    if polar is not None:
        # "Was the user interested? yes, no, or unclear": a yes/no question with a way out.
        said = _yes_no(ctx, question)
        if said is None:
            return _none(ctx, question, _not_mentioned(question))
        margin, turn, excerpt, hedged = said
        if hedged and abstain_choice(choices) is not None:
            return _none(ctx, question, f"The reply hedges. {excerpt.quote(turn)}")
        confidence = 1 / (1 + math.exp(-abs(margin)))
        features = ctx.features(question, probability=confidence, agrees=_agrees(margin, excerpt, turn))
        return _Proposal(polar[0] if margin > 0 else polar[1], excerpt.quote(turn), features)
    named, user_named = _choice_mentions(ctx, question, choices)
    hint = _HINTS["ENUM"].format(choices=", ".join(choices))
    if not named:
        return _none(ctx, question, f"The call names none of the choices ({', '.join(choices)}).")
    # When the user names a choice, the user's words settle it ("cleaning or whitening?" — "A cleaning").
    named = user_named or named
    choice = _pick(ctx, question, hint, list(named.values()), lambda m: str(m.value))
    if len(named) == 1:
        # One choice named: the model's probability of it among all choices is the probability.
        _, _, scores = ctx.rank(question.text, hint, [(c, 0.0) for c in choices])
        choice = _Choice(
            choice.mention, _softmax(scores)[choices.index(choice.mention.value)], len(choices), False
        )
    return _Proposal(choice.mention.value, ctx.quote(choice.mention.turn), ctx.features(question, choice))


POLARITY_WEIGHT = 2.0


_ASKS_ABOUT_OFFER = re.compile(r"\boffer(?:ed|s)?\b|\baccept(?:ed|s)?\b", re.IGNORECASE)
_OFFER = re.compile(
    r"\b(?:would\s+you\s+like|(?:shall|should|can|could|may)\s+(?:i|we)|do\s+you\s+want|want\s+me\s+to|"
    r"how\s+about|would\s+you\s+be\s+interested|are\s+you\s+interested|interested\s+in|do\s+you\s+wish)\b",
    re.IGNORECASE,
)


_ABOUT_WILLINGNESS = re.compile(
    r"\b(?:interest(?:ed)?|agree(?:d|s)?|accept(?:ed|s)?|willing|keen|want(?:ed|s)?)\b", re.IGNORECASE
)


def _is_offer(turn: Mapping[str, str]) -> bool:
    return turn["content"].rstrip().endswith("?") and bool(_OFFER.search(turn["content"]))


def _yes_no(ctx: _Context, question: qn.Question) -> tuple[float, int, _Context, bool] | None:
    """The calibrated Yes-minus-No margin for a yes/no question, the excerpt turn it rests on, the
    excerpt, and whether the reply hedges; None when the call never speaks of the question."""
    hits = cand.term_hits(question.text, ctx.turns)
    if not any(hits) and _ABOUT_WILLINGNESS.search(question.text):
        # "Was the user interested?", "Did the caller agree to …?" in a call that never says the
        # word: what the caller answered to the last offer made ("Would you like a demo?") tells.
        offers = [i for i, t in enumerate(ctx.turns) if _is_offer(t)]
        if offers:
            hits = [1 if i == offers[-1] else 0 for i in range(len(ctx.turns))]
    if not any(hits):
        return None
    # An agent turn that speaks of the question only outside its own question ("Glad you're
    # interested. May I have your name?") echoes the reply before it; it settles nothing.
    echoes = [_only_echoes(question.text, t) for t in ctx.turns]
    if any(h and not e for h, e in zip(hits, echoes, strict=True)):
        hits = [0 if e else h for h, e in zip(hits, echoes, strict=True)]
    # The exchange that settles the question: the last turn that speaks of it, and the reply; for a
    # question about an offer ("When the agent offered to book …, did the caller accept?"), the
    # offer that speaks of it most, and the reply to it.
    strongest = max(hits)
    turn = max(i for i, h in enumerate(hits) if h * 2 >= strongest)
    if _ASKS_ABOUT_OFFER.search(question.text):
        offers = [i for i, t in enumerate(ctx.turns) if hits[i] and _is_offer(t)]
        if offers:
            turn = max(offers, key=lambda i: (hits[i], i))
    excerpt_turns = ctx.turns[turn : turn + 2]
    focused = _Context(ctx.backend, list(excerpt_turns), format_transcript(excerpt_turns), ctx.call_start)
    _, _, scores = focused.rank(question.text, _HINTS["BOOLEAN"], [(o, 0.0) for o in _YES_NO], calibrate=True)
    # The answer: the reply, when the turn that speaks of the question asks it ("Are you
    # interested?" — "No, thanks."); else that turn itself ("I'm not interested.").
    asks = excerpt_turns[0]["content"].rstrip().endswith("?") and len(excerpt_turns) > 1
    answer = len(excerpt_turns) - 1 if asks else 0
    text = excerpt_turns[answer]["content"]
    said = max(-1, min(1, cand.polarity(text) + _term_polarity(question, excerpt_turns[answer : answer + 1])))
    margin = scores[0] - scores[1] + POLARITY_WEIGHT * said
    hedged = any(cand.unsure(t["content"]) for t in excerpt_turns if t["role"] == "user")
    return margin, answer, focused, hedged


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _only_echoes(question: str, turn: Mapping[str, str]) -> bool:
    """An agent turn that asks something, and names the question's words only outside that ask."""
    if turn["role"] != "agent" or not turn["content"].rstrip().endswith("?"):
        return False
    asked = [s for s in _SENTENCE_END.split(turn["content"].strip()) if s.rstrip().endswith("?")]
    return not any(cand.term_hits(question, [{"role": "agent", "content": s}])[0] for s in asked)


def _term_polarity(question: qn.Question, turns: Sequence[dict[str, str]]) -> int:
    """The question's own words said negated ("not interested") count as a no; said by the user
    outside a question ("I am interested"), as a yes."""
    terms = set(cand.key_terms(question.text))
    score = 0
    for t in turns:
        text = t["content"]
        for m in re.finditer(r"[A-Za-z]+", text):
            if not any(cand.matches(term, m.group().lower()) for term in terms):
                continue
            if cand.negated_at(text, m.start()):
                score -= 1
            elif t["role"] == "user" and "?" not in text[m.end() :].split(".")[0]:
                score += 1
    return max(-1, min(1, score))


def _agrees(margin: float, excerpt: _Context, turn: int) -> bool:
    said = cand.polarity(excerpt.turns[turn]["content"])
    return said != 0 and (said > 0) == (margin > 0)


def _extract_bool(ctx: _Context, metric: DispositionMetric, question: qn.Question) -> _Proposal:
    said = _yes_no(ctx, question)
    if said is None:
        return _none(ctx, question, _not_mentioned(question))
    margin, turn, excerpt, _ = said
    confidence = 1 / (1 + math.exp(-abs(margin)))
    features = ctx.features(question, probability=confidence, agrees=_agrees(margin, excerpt, turn))
    return _Proposal(margin > 0, excerpt.quote(turn), features)


def _extract_int(ctx: _Context, metric: DispositionMetric, question: qn.Question) -> _Proposal:
    mentions, theirs = _whose(cand.numbers(ctx.turns), question)
    mentions = cand.distinct(mentions)
    if not mentions:
        return _none(ctx, question, "The call mentions no number." + _not_theirs(question, theirs))
    if not any(cand.term_hits(question.text, ctx.turns)):
        return _none(ctx, question, _not_mentioned(question))
    bias = [-LISTING_WEIGHT if m.listing else 0.0 for m in mentions]
    choice = _pick(ctx, question, _HINTS["INTEGER"], mentions, lambda m: str(m.value), bias)
    return _Proposal(
        int(choice.mention.value), ctx.quote(choice.mention.turn), ctx.features(question, choice)
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


def _extract_datetime(ctx: _Context, metric: DispositionMetric, question: qn.Question) -> _Proposal:
    part = _datetime_part(question.text)
    hint = _HINTS["DATETIME"].format(part=part)
    dates = cand.distinct(cand.dates(ctx.turns, ctx.call_start))
    times = cand.distinct(cand.times(ctx.turns))
    if part == "time":
        if not times:
            return _none(ctx, question, "The call mentions no time of day.")
        choice = _pick(ctx, question, hint, times, lambda m: m.surface)
        day = dates[-1].value if dates else None
        value = norm.combine(day, choice.mention.value, ctx.call_start)
    else:
        if not dates:
            return _none(ctx, question, "The call mentions no date.")
        choice = _pick(ctx, question, hint, dates, lambda m: m.surface)
        clock = times[-1].value if (times and part != "date") else None
        value = norm.combine(choice.mention.value, clock, ctx.call_start)
    return _Proposal(value, ctx.quote(choice.mention.turn), ctx.features(question, choice))


# A question about a place: a value said right after "in", "to", "from" ("flying to Seattle") is
# likelier to be one than a name said elsewhere.
PLACE_WEIGHT = 1.0
_CITY_QUESTION = re.compile(
    r"\b(?:city|cities|town|country|state|area|region|neighbou?rhood)\b", re.IGNORECASE
)
_PLACE_QUESTION = re.compile(
    r"\b(?:where|location|place|destination|airport|station|venue|located)\b", re.IGNORECASE
)
_CITY_PREPOSITIONS = frozenset(["in", "to", "from", "near", "around", "into", "visiting", "visit", "outside"])
_PLACE_PREPOSITIONS = _CITY_PREPOSITIONS | {"at"}


def _place_words(question: str) -> frozenset[str]:
    if _CITY_QUESTION.search(question):
        return _CITY_PREPOSITIONS
    if _PLACE_QUESTION.search(question):
        return _PLACE_PREPOSITIONS
    return frozenset()


def _after_word(text: str, start: int, words: frozenset[str]) -> bool:
    if start <= 0:
        return False
    before = re.findall(r"[a-z]+", text[:start].lower())
    return bool(before) and before[-1] in words


_NUMERIC_ATTRIBUTE = re.compile(
    r"\b(?:(?P<money>price|cost|fare|fee)"
    r"|(?P<phone>phone|telephone|(?:call\s*-?\s*back|contact|mobile|cell|home|work)\s+number)|(?P<speed>speed)"
    r"|(?P<percent>humidity|percent(?:age)?)|(?P<degrees>temperature))\b",
    re.IGNORECASE,
)
_FIGURE_KINDS: dict[str, Callable[[str], bool]] = {
    "money": lambda f: bool(re.search(r"[$€£]|dollar|euro|pound", f, re.IGNORECASE)),
    "phone": lambda f: sum(ch.isdigit() for ch in f) >= 7,
    "speed": lambda f: bool(re.search(r"mph|miles", f, re.IGNORECASE)),
    "percent": lambda f: bool(re.search(r"%|percent", f, re.IGNORECASE)),
    "degrees": lambda f: bool(re.search(r"degree", f, re.IGNORECASE)),
}
_KIND_OF = re.compile(
    r"\b(?:genre|type|kind|category|style|sort)s?\s+of\s+([a-z]+(?:/[a-z]+)*)", re.IGNORECASE
)


def _kind_nouns(question: str) -> list[str]:
    """What a "what genre/type/kind of X" question asks the kind of: ["music"], ["cuisine", "food"]."""
    return [n for m in _KIND_OF.finditer(question) for n in m.group(1).lower().split("/")]


def _extract_string(ctx: _Context, metric: DispositionMetric, question: qn.Question) -> _Proposal:
    # No abstention on missing key terms here: names answer questions in words of their own
    # ("flying to Seattle" answers "the airport or city to arrive at"), so only a call that names
    # nothing at all abstains.
    attribute = _NUMERIC_ATTRIBUTE.search(question.text)
    if attribute and not question.asks_name:
        # A price, a phone number, a speed: only a figure of that kind said in the call can answer.
        fits = _FIGURE_KINDS[next(k for k, v in attribute.groupdict().items() if v)]
        figures, theirs = _whose([m for m in cand.figures(ctx.turns) if fits(m.surface)], question)
        if not figures:
            return _none(
                ctx,
                question,
                "The call says no figure that could answer this." + _not_theirs(question, theirs),
            )
        choice = _pick(ctx, question, _HINTS["STRING"], cand.distinct(figures), lambda m: m.surface)
        value = norm.normalize_string(choice.mention.surface)
        return _Proposal(value, ctx.quote(choice.mention.turn), ctx.features(question, choice))
    spans = cand.spans(ctx.turns)
    kinds = _kind_nouns(question.text)
    if kinds:
        # "What genre of music?": the word said before "music" ("some rock music") is a candidate too.
        spans += cand.modifiers(ctx.turns, kinds)
    mentions, theirs = _whose(spans, question)
    mentions = cand.distinct(mentions)
    if not mentions and not question.asks_name:
        # Nothing name-like: the value is a plain word the user said ("pop", "comedy").
        terms = set(cand.key_terms(question.text))
        words, _ = _whose(cand.words(ctx.turns), question)
        mentions = [
            m for m in cand.distinct(words) if not any(cand.matches(t, m.surface.lower()) for t in terms)
        ]
    if not mentions:
        if question.asks_name and question.subject is not None:
            why = f"The call does not give the {question.subject}'s name."
        else:
            why = "The call names nothing that could answer this."
        return _none(ctx, question, why + _not_theirs(question, theirs))
    wants_address = bool(re.search(r"\baddress|\bstreet\b", question.text.lower()))
    places = _place_words(question.text)
    bias = [
        ((ADDRESS_WEIGHT if wants_address else -ADDRESS_WEIGHT) if m.surface[:1].isdigit() else 0.0)
        + (PLACE_WEIGHT if places and _after_word(ctx.turns[m.turn]["content"], m.start, places) else 0.0)
        for m in mentions
    ]
    choice = _pick(ctx, question, _HINTS["STRING"], mentions, lambda m: m.surface, bias)
    value = norm.normalize_string(choice.mention.surface)
    return _Proposal(value, ctx.quote(choice.mention.turn), ctx.features(question, choice))


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
        if value is None:
            out.append(
                _checked(_with_fallback(m, qn.parse(m.prompt), "The call does not say.", confidence), m)
            )
            continue
        reasoning = ctx.quote(_turn_mentioning(turns, value))
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


_EXTRACTORS: dict[str, Callable[[_Context, DispositionMetric, qn.Question], _Proposal]] = {
    "ENUM": _extract_enum,
    "BOOLEAN": _extract_bool,
    "INTEGER": _extract_int,
    "DATETIME": _extract_datetime,
    "STRING": _extract_string,
}
