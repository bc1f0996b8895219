"""Dialer throughput: campaign calls completed per minute on the ``test`` provider.

``python -m benchmarks dialer`` (also the last part of ``make bench``) runs, on a fresh SQLite
database in a temporary directory, in this process:

- a campaign of ``--calls`` members at concurrency 1, 8 and 32 with the scripted agent (fixed
  lines, no model): the cost of the call machinery itself (claims, call rows, transcripts,
  settling, analytics outbox), with simulated call time, so no call waits on a clock;
- a campaign of ``--model-calls`` members at concurrency 1 and 8 with the embedded model writing
  every agent turn (``DISPO_LLM_BACKEND``, SmolLM2-135M by default): what a real agent costs.

Every member is checked accounted for (one call row per dial, all settled) before a figure counts.
It writes the "Dialer throughput" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from benchmarks import sections
from benchmarks.machine import describe
from dispo.config import Settings
from dispo.runtime.dialer import Dialer
from dispo.runtime.dialogue import ScriptedBrain
from dispo.runtime.runner import CallRunner
from dispo.store import agents as agent_store
from dispo.store import audiences as audience_store
from dispo.store import campaigns as campaign_store
from dispo.store import orgs
from dispo.store import phone_numbers as phone_store
from dispo.store.database import Database
from dispo.store.migrate import migrate
from dispo.store.tables import calls, campaign_members, campaigns
from dispo.telephony.simulated import SimulatedProvider

ROOT = Path(__file__).resolve().parent.parent
SECTION = "dialer"


@dataclass(frozen=True)
class Run:
    agent: str
    concurrency: int
    calls: int
    seconds: float
    answered: int
    mean_agent_latency_ms: float | None

    @property
    def per_minute(self) -> float:
        return self.calls / self.seconds * 60


def make_campaign(db: Database, org_id: str, size: int, tag: str) -> str:
    numbers = [f"+1415555{i:04d}" for i in range(size)]
    with db.write() as conn:
        agent_id = agent_store.create_agent(
            conn,
            org_id,
            {
                "name": f"Bench agent {tag}",
                "global_prompt": "You are a sales agent. Ask if interested and get their name.",
            },
        )
        phone, _ = phone_store.add_number(conn, org_id, "+12025550100")
        audience_id = audience_store.create_audience(
            conn,
            org_id,
            name=f"Bench {tag}",
            description="",
            phone_number_column_name="phoneNumber",
            members=[(n, {"phoneNumber": n}) for n in numbers],
        )
        campaign_id = campaign_store.create_campaign(
            conn,
            org_id,
            {
                "name": f"Bench {tag}",
                "agent_id": agent_id,
                "audience_id": audience_id,
                "phone_number_ids": [phone["id"]],
                "max_retries": 0,
                "retry_delay": 1,
            },
        )
    return campaign_id


def measure(
    db: Database, settings: Settings, org_id: str, *, size: int, concurrency: int, scripted: bool
) -> Run:
    tag = f"{'scripted' if scripted else 'model'}-{concurrency}-{time.monotonic_ns()}"
    campaign_id = make_campaign(db, org_id, size, tag)
    provider = SimulatedProvider()
    runner = CallRunner(
        db,
        settings,
        brain_factory=(lambda _p: ScriptedBrain()) if scripted else None,
        providers={"test": provider},
        max_workers=concurrency,
    )
    dialer = Dialer(db, settings, runner, concurrency=concurrency, poll_seconds=0.05)
    with db.write() as conn:
        row = campaign_store.get_campaign(conn, org_id, campaign_id)
        assert row is not None
        campaign_store.start(conn, row)
    started = time.perf_counter()
    dialer.start()
    try:
        while True:
            with db.read() as conn:
                status = conn.execute(
                    select(campaigns.c.status).where(campaigns.c.id == campaign_id)
                ).scalar_one()
            if status == "completed":
                break
            time.sleep(0.02)
        seconds = time.perf_counter() - started
    finally:
        dialer.stop()
        runner.shutdown()
    with db.read() as conn:
        m = campaign_members.c
        statuses = Counter(
            dict(
                conn.execute(
                    select(m.status, func.count()).where(m.campaign_id == campaign_id).group_by(m.status)
                ).all()
            )
        )
        rows = conn.execute(
            select(calls.c.status, calls.c.avg_agent_latency).where(calls.c.campaign_id == campaign_id)
        ).all()
    # Every member accounted for: settled, one call row and one dial each.
    assert sum(statuses.values()) == size, statuses
    assert not statuses.get("queued"), statuses
    assert not statuses.get("dialing"), statuses
    assert len(rows) == size == sum(provider.dials.values()), (len(rows), size)
    latencies = [lat for _, lat in rows if lat is not None]
    return Run(
        agent="scripted" if scripted else "model",
        concurrency=concurrency,
        calls=size,
        seconds=seconds,
        answered=sum(1 for s, _ in rows if s == "completed"),
        mean_agent_latency_ms=statistics.fmean(latencies) if latencies and not scripted else None,
    )


def markdown(runs: list[Run], command: str, model: str) -> str:
    m = describe()
    out = [
        "## Dialer throughput",
        "",
        f"Generated by `{command}` on {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC "
        f"({m.cpu}, {m.cores} cores, load average {os.getloadavg()[0]:.1f} at the end; Dispo {m.code}). One campaign per row on a fresh SQLite database, "
        "in process: the dialer claims members, the `test` provider simulates each callee (seeded, "
        "so every row meets the same people), the agent talks, and each call is settled and its "
        "analytics queued. Simulated call time: no call waits on a clock, so the figures are the "
        "cost of the machinery (scripted agent) or of the model (embedded model), not of call "
        "length. Every member was checked accounted for (settled, one call row and one dial each).",
        "",
        "| agent | concurrency | calls | seconds | calls completed / minute | answered | mean agent latency |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in runs:
        agent = "scripted (no model)" if r.agent == "scripted" else f"embedded model ({model})"
        latency = f"{r.mean_agent_latency_ms:,.0f} ms" if r.mean_agent_latency_ms is not None else "—"
        out.append(
            f"| {agent} | {r.concurrency} | {r.calls:,} | {r.seconds:,.1f} | **{r.per_minute:,.0f}** "
            f"| {r.answered:,} | {latency} |"
        )
    out += [
        "",
        "The model serves one turn at a time per process (llama.cpp on the CPU), so with it more "
        "concurrency mostly overlaps dialling and the callee's side with the model's work; a "
        "production deployment points `DISPO_LLM_BACKEND=openai` at a batching server (vLLM) instead.",
        "",
    ]
    return "\n".join(out)


def run(
    calls_per_level: int, model_calls: int, levels: tuple[int, ...], output: Path, command: str
) -> list[Run]:
    with tempfile.TemporaryDirectory(prefix="dispo-bench-dialer-") as tmp:
        settings = Settings(data_dir=Path(tmp), agent_brain="llm")
        db = Database(settings.effective_database_url, pool_size=max(levels) + 8)
        migrate(db)
        with db.write() as conn:
            org_id = orgs.create_org(conn, "Dialer bench")
        runs: list[Run] = []
        for concurrency in levels:
            r = measure(db, settings, org_id, size=calls_per_level, concurrency=concurrency, scripted=True)
            print(
                f"  scripted agent, concurrency {concurrency:>2}: {r.calls} calls in {r.seconds:.1f} s = {r.per_minute:,.0f}/min",
                flush=True,
            )
            runs.append(r)
        model = "none"
        if model_calls:
            from dispo.llm import get_backend

            model = get_backend(settings).model_id
            for concurrency in (1, 8):
                r = measure(db, settings, org_id, size=model_calls, concurrency=concurrency, scripted=False)
                print(
                    f"  embedded model, concurrency {concurrency:>2}: {r.calls} calls in {r.seconds:.1f} s = {r.per_minute:,.1f}/min",
                    flush=True,
                )
                runs.append(r)
        db.dispose()
    sections.put(output, SECTION, markdown(runs, command, model))
    print(f"Wrote the dialer section of {output}")
    return runs


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks dialer", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--calls", type=int, default=1000, help="members per scripted campaign (default 1000)"
    )
    parser.add_argument(
        "--model-calls", type=int, default=4, help="members per model campaign; 0 skips the model (default 4)"
    )
    parser.add_argument(
        "--levels", default="1,8,32", help="concurrency levels for the scripted agent (default 1,8,32)"
    )
    parser.add_argument(
        "--output", type=Path, default=ROOT / "BENCHMARKS.md", help="report file (default BENCHMARKS.md)"
    )
    args = parser.parse_args(argv)
    levels = tuple(int(x) for x in args.levels.split(",") if x.strip())
    command = shlex.join(["python", "-m", "benchmarks", "dialer", *argv])
    print(
        f"Dialer throughput: {args.calls} calls per level at concurrency {levels}; model: {args.model_calls} calls"
    )
    run(args.calls, args.model_calls, levels, args.output, command)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
