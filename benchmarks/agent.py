"""Agent conversations: does the agent loop, and does it ask what its prompt says to ask?

``python -m benchmarks.agent`` places simulated calls (the ``test`` provider's callees, seeded,
so every row of an agent meets the same people) with the embedded model writing every agent turn,
three times per agent prompt:

- **before**: the agent as it was (:class:`PlainBrain`): the model's greedy reply, cleaned, said
  as it came, with the old opening cue;
- **penalties only**: the same with :data:`~dispo.runtime.dialogue.AGENT_PENALTIES`, to tell what
  sampling alone does;
- **after**: :class:`dispo.runtime.dialogue.LLMBrain`: sampling penalties and n-gram blocking,
  repeated sentences and clauses cut, a reply that repeats an earlier turn regenerated once, the
  prompt's questions asked (see docs/calls.md).

Per row: the **repeated-turn rate** (agent turns that near-duplicate an earlier agent turn of the
same call, :func:`dispo.runtime.repetition.near_duplicate`; and word for word), the share of agent
turns with an **internally repeated clause** (:func:`~dispo.runtime.repetition.repeated_clause`),
and the share of calls where the agent **asked the prompt's question(s)**, judged by the simulated
callee's own keyword rules (what it hears as being asked its name, its interest, a follow-up). It
writes the "agent" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import sections
from benchmarks.machine import describe
from dispo.llm import Backend, Penalties
from dispo.runtime.dialogue import AGENT_PENALTIES, AgentProfile, AgentReply, Brain, LLMBrain, Turn, converse
from dispo.runtime.repetition import near_duplicate, repeated_clause, verbatim_repeat
from dispo.telephony import DialRequest
from dispo.telephony.simulated import _ASKS_FOLLOW_UP, _ASKS_INTEREST, _ASKS_NAME, SimulatedProvider

ROOT = Path(__file__).resolve().parent.parent
SECTION = "agent"
BRAINS = ("before", "penalties only", "after")
OLD_OPENING_CUE = "(The call has just been answered. Greet the person and begin.)"


@dataclass(frozen=True)
class Agent:
    """An agent prompt, and the callee's rules for each question the prompt says to ask."""

    name: str
    prompt: str
    questions: dict[str, re.Pattern[str]]


AGENTS = (
    Agent(
        "complete example",
        "You are a sales agent. Ask if interested and get their name.",
        {"interest": _ASKS_INTEREST, "name": _ASKS_NAME},
    ),
    Agent(
        "solar quote",
        "You are calling from Brightline Solar about home solar panels. Ask whether they would like a "
        "free quote, and whether a follow-up call next week works for them.",
        {"interest": _ASKS_INTEREST, "follow-up": _ASKS_FOLLOW_UP},
    ),
    Agent(
        "no questions",
        "You are a friendly assistant from Acme Insurance. Remind the customer that their home policy "
        "renews next month and that nothing changes in their cover.",
        {},
    ),
)


class PlainBrain(LLMBrain):
    """The agent before issue 10: the model's reply, cleaned; no checks, no agenda, and no
    penalties unless ``penalties`` are given (the "penalties only" row: what sampling alone does)."""

    opening_cue = OLD_OPENING_CUE

    def __init__(self, backend: Backend, profile: AgentProfile, penalties: Penalties | None = None) -> None:
        super().__init__(backend, profile)
        self.penalties = penalties

    def reply(self, history: Sequence[Turn]) -> AgentReply:
        from dispo.runtime.dialogue import (
            _END_MARKER,
            DEFAULT_OPENING,
            FALLBACK_REPLY,
            clean_reply,
            is_farewell,
        )

        started = time.perf_counter()
        completion = self.backend.chat(
            self.messages(history),
            max_tokens=self.max_tokens,
            temperature=0.0,
            stop=("\n\n",),
            penalties=self.penalties,
        )
        latency = (time.perf_counter() - started) * 1000
        text = clean_reply(completion.text) or (DEFAULT_OPENING if not history else FALLBACK_REPLY)
        ended = bool(_END_MARKER.search(completion.text)) or is_farewell(text)
        return AgentReply(text, round(latency, 1), end_call=ended)


@dataclass
class Row:
    agent: str
    brain: str
    calls: int = 0
    turns: int = 0
    near_duplicates: int = 0
    verbatim: int = 0
    clause_repeats: int = 0
    asked: Counter[str] = field(default_factory=Counter)
    asked_all: int = 0
    silent: int = 0  # calls whose callee never spoke
    questions: tuple[str, ...] = ()
    reasons: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    example: list[str] = field(default_factory=list)

    def add(self, turns: Sequence[Turn], reason: str, agent: Agent) -> None:
        said = [t.content for t in turns if t.role == "agent"]
        self.calls += 1
        self.turns += len(said)
        self.near_duplicates += sum(near_duplicate(s, said[:i]) for i, s in enumerate(said))
        self.verbatim += sum(verbatim_repeat(s, said[:i]) for i, s in enumerate(said))
        self.clause_repeats += sum(repeated_clause(s) for s in said)
        asked = {q for q, rule in agent.questions.items() if any(rule.search(s.lower()) for s in said)}
        self.asked.update(asked)
        self.asked_all += bool(agent.questions) and len(asked) == len(agent.questions)
        self.reasons[reason] += 1
        self.silent += not any(t.role == "user" for t in turns)
        self.latencies += [t.latency_ms for t in turns if t.role == "agent" and t.latency_ms is not None]
        if not self.example:
            self.example = [f"{t.role}: {t.content}" for t in turns]


def run_calls(backend: Backend, agent: Agent, brain_name: str, calls: int, seed: int) -> Row:
    """``calls`` answered simulated calls of ``agent`` with the before or after brain."""
    profile = AgentProfile("a" * 24, agent.name, agent.prompt, None)
    brains: dict[str, Brain] = {
        "before": PlainBrain(backend, profile),
        "penalties only": PlainBrain(backend, profile, AGENT_PENALTIES),
        "after": LLMBrain(backend, profile),
    }
    brain = brains[brain_name]
    provider = SimulatedProvider(seed=seed)
    row = Row(agent.name, brain_name, questions=tuple(agent.questions))
    number = 0
    while row.calls < calls:
        number += 1
        dialed = provider.dial(DialRequest(f"CALL-{number}-bench0", f"+1415555{number:04d}"))
        if dialed.session is None:
            continue
        result = converse(dialed.session, brain, profile, max_duration_s=180, silence_timeout_s=10)
        row.add(result.turns, str(result.reason), agent)
    return row


def pct(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "—"


def markdown(rows: Sequence[Row], command: str, model: str, seconds: float) -> str:
    m = describe()
    out = [
        "## Agent conversations",
        "",
        f"Generated by `{command}` on {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC ({m.cpu}, "
        f"{m.cores} cores, load average {os.getloadavg()[0]:.1f} at the end; Dispo {m.code}; "
        f"{seconds:,.0f} s). The embedded model ({model}) writes every agent turn of simulated calls "
        "(the `test` provider's callees, seeded: every row of an agent meets the same people). "
        "*before*: the model's reply as it came (the agent before issue 10); *penalties only*: the "
        "same with `AGENT_PENALTIES` (repeat penalty and 4-token n-gram blocking) and nothing else; "
        "*after*: `LLMBrain` — penalties, repetition cut or regenerated, the prompt's questions "
        "asked. *Repeated turns*: agent turns that near-duplicate an earlier "
        "agent turn of the call (most of their word trigrams in it), and word for word; *repeated "
        "clause*: turns that say a 4-word run twice or two near-identical clauses; *asked*: calls "
        "where the callee heard the prompt's question (its own keyword rules), each and all; a "
        "*silent callee* says nothing, so the call ends on the silence timeout after the agent's "
        "first turn, before a second question can be asked.",
        "",
        "| agent | brain | calls | agent turns | repeated turns | word for word | repeated clause "
        "| asked | asked all | silent callee | ended by | mean turn latency |",
        "|---|---|--:|--:|--:|--:|--:|---|--:|--:|---|--:|",
    ]
    for r in rows:
        asked = ", ".join(f"{q} {pct(r.asked[q], r.calls)}" for q in r.questions) or "—"
        ended = ", ".join(f"{k} {v}" for k, v in r.reasons.most_common())
        latency = f"{statistics.fmean(r.latencies):,.0f} ms" if r.latencies else "—"
        out.append(
            f"| {r.agent} | {r.brain} | {r.calls} | {r.turns} | **{pct(r.near_duplicates, r.turns)}** "
            f"| {pct(r.verbatim, r.turns)} | {pct(r.clause_repeats, r.turns)} | {asked} "
            f"| **{pct(r.asked_all, r.calls) if r.questions else '—'}**"
            f"{f' ({r.asked_all}/{r.calls})' if r.questions else ''} | {r.silent} | {ended} | {latency} |"
        )
    out += ["", "The first call of each row, as it went:", ""]
    for r in rows:
        out += [
            f"<details><summary>{r.agent}, {r.brain}</summary>",
            "",
            "```text",
            *r.example,
            "```",
            "",
            "</details>",
            "",
        ]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.agent", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--calls", type=int, default=10, help="answered calls per agent and brain (default 10)"
    )
    parser.add_argument(
        "--seed", type=int, default=4, help="the test provider's seed (default 4, `make demo`'s)"
    )
    parser.add_argument(
        "--agents", default=",".join(a.name for a in AGENTS), help="comma-separated agent names"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md", help="default BENCHMARKS.md")
    args = parser.parse_args(argv)
    from dispo.llm.local import LocalBackend, default_model_path

    chosen = [a for a in AGENTS if a.name in {n.strip() for n in args.agents.split(",")}]
    backend = LocalBackend(default_model_path())
    started = time.perf_counter()
    rows: list[Row] = []
    for agent in chosen:
        for brain in BRAINS:
            row = run_calls(backend, agent, brain, args.calls, args.seed)
            print(
                f"  {agent.name}, {brain}: {row.calls} calls, {row.turns} agent turns, repeated "
                f"{pct(row.near_duplicates, row.turns)}, clause {pct(row.clause_repeats, row.turns)}, "
                f"asked all {pct(row.asked_all, row.calls)}",
                flush=True,
            )
            rows.append(row)
    command = shlex.join(["python", "-m", "benchmarks.agent", *argv])
    sections.put(
        args.output, SECTION, markdown(rows, command, backend.model_id, time.perf_counter() - started)
    )
    print(f"Wrote the {SECTION} section of {args.output}")
    backend.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
