"""Post-call analytics jobs: outbox marking, retries with backoff, failures with reasons, crash
recovery, idempotent duplicates, config versions, and the queues: in memory (run when the test
says, or by worker threads), and real ones (SQLite in a thread, Redis, a `dispo worker` process
killed mid-job)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispo.analytics import jobs, lifecycle
from dispo.analytics.jobs import HueyQueue, Jobs, MemoryQueue
from dispo.api import calllog
from dispo.calls import CallEnding, CallStatus
from dispo.config import Settings
from dispo.store import calls as call_store
from dispo.store import orgs
from dispo.store.analytics_jobs import mark_pending
from dispo.store.database import Database
from dispo.store.migrate import migrate
from dispo.timeutil import now_ms
from tests.analytics_fakes import (
    BACKEND,
    FakeEngine,
    attempt,
    call_row,
    end_call,
    fake_engine,
    make_agent,
    result_count,
    results,
    set_config,
    wait_for,
)
from tests.conftest import Org

__all__ = ["fake_engine"]  # the fixture, imported for pytest

REDIS_URL = os.environ.get("DISPO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def job_settings(db: Database, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "database_url": db.url.render_as_string(hide_password=False),
        "analytics_max_attempts": 3,
        "analytics_retry_delay_seconds": 5.0,
        "analytics_lease_seconds": 300.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# The outbox: marking in the transaction that ends the call


def test_a_call_that_ends_is_marked_pending_with_its_agents_config(db: Database, org: Org) -> None:
    agent_id = make_agent(db, org.id)
    before = now_ms()
    pk = end_call(db, org.id, agent_id)
    row = call_row(db, pk)
    assert row["analytics_status"] == "pending"
    assert row["analytics_queued_at"] >= before
    assert row["analytics_attempts"] == 0
    assert row["analytics_config_id"] is not None
    # A call that has not ended is not marked; end_call marks it when it ends.
    live = end_call(db, org.id, agent_id, status="in_progress")
    assert call_row(db, live)["analytics_status"] is None
    with db.write() as conn:
        at = now_ms()
        ending = CallEnding(CallStatus.COMPLETED, None, ended_at=at, updated_at=at)
        assert call_store.end_call(conn, live, ending).marked is True
    assert call_row(db, live)["analytics_status"] == "pending"


def test_the_marking_rolls_back_with_the_transaction(db: Database, org: Org) -> None:
    pk = end_call(db, org.id, make_agent(db, org.id), status="in_progress")

    def end_then_fail() -> None:
        with db.write() as conn:
            mark_pending(conn, pk)
            raise RuntimeError("the call's own update failed")

    with pytest.raises(RuntimeError):
        end_then_fail()
    assert call_row(db, pk)["analytics_status"] is None


def test_an_attempt_records_the_result_the_config_version_and_timings(
    db: Database, org: Org, tmp_path: Path, fake_engine: FakeEngine
) -> None:
    pk = end_call(db, org.id, make_agent(db, org.id, summary_prompt="Be brief."))
    outcome = attempt(db, job_settings(db, tmp_path), pk)
    assert outcome.kind == "completed"
    row = call_row(db, pk)
    assert row["analytics_status"] == "completed"
    assert row["analytics_attempts"] == 1
    assert row["analytics_started_at"] <= row["analytics_finished_at"]
    (result,) = results(db, pk)
    assert result["config_version"] == 1
    assert result["config_id"] == row["analytics_config_id"]
    assert result["model"] == "fake-model"
    assert result["duration_ms"] == 1.5
    assert result["model_ms"] == 1.0
    assert result["summary"] == "2 turns; prompt=Be brief."
    with db.read() as conn:
        shown = calllog.get_call(conn, org.id, row["call_id"])
    assert shown is not None
    analytics = shown["postCallAnalytics"]
    assert analytics["status"] == "completed"
    assert analytics["configVersion"] == 1
    assert analytics["summary"] == "2 turns; prompt=Be brief."
    assert analytics["dispositionMetrics"] == [
        {
            "identifier": "user_interested",
            "type": "ENUM",
            "value": "yes",
            "confidence": 0.9,
            "reasoning": "fake reasoning",
        }
    ]
    assert analytics["queuedAt"] is not None
    assert analytics["startedAt"] is not None
    assert analytics["completedAt"] is not None
    assert analytics["error"] is None
    assert analytics["attempts"] == 1


def test_without_a_config_the_job_writes_a_default_summary_and_no_metrics(
    db: Database, org: Org, tmp_path: Path, fake_engine: FakeEngine
) -> None:
    pk = end_call(db, org.id, make_agent(db, org.id, summary_prompt=None))
    assert call_row(db, pk)["analytics_config_id"] is None
    assert attempt(db, job_settings(db, tmp_path), pk).kind == "completed"
    (result,) = results(db, pk)
    assert result["summary"] == "2 turns; prompt=None"
    assert result["disposition_metrics"] == []
    assert result["config_version"] is None


def test_a_call_nobody_answered_needs_no_model(
    db: Database, org: Org, tmp_path: Path, fake_engine: FakeEngine
) -> None:
    pk = end_call(db, org.id, make_agent(db, org.id), status="no_answer")
    assert attempt(db, job_settings(db, tmp_path), pk).kind == "completed"
    assert fake_engine.calls == 0
    (result,) = results(db, pk)
    assert result["summary"] is None
    assert [m["value"] for m in result["disposition_metrics"]] == [None]


def test_a_changed_config_applies_to_new_calls_only(
    db: Database, org: Org, tmp_path: Path, fake_engine: FakeEngine
) -> None:
    agent_id = make_agent(db, org.id, summary_prompt="version one")
    old_call = end_call(db, org.id, agent_id)  # ended under v1, job not run yet
    with db.write() as conn:
        set_config(conn, org.id, agent_id, "version two")
    new_call = end_call(db, org.id, agent_id)
    settings = job_settings(db, tmp_path)
    for pk in (old_call, new_call):
        assert attempt(db, settings, pk).kind == "completed"
    assert [r["config_version"] for r in results(db, old_call)] == [1]
    assert results(db, old_call)[0]["summary"].endswith("prompt=version one")
    assert [r["config_version"] for r in results(db, new_call)] == [2]


# ------------------------------------------------------------------------------------------
# Retries, failures, duplicates, crashes


def test_failed_attempts_retry_with_doubling_delays_then_fail_with_the_reason(
    db: Database, org: Org, tmp_path: Path, fake_engine: FakeEngine
) -> None:
    fake_engine.fail_first = 99
    settings = job_settings(db, tmp_path, analytics_max_attempts=3, analytics_retry_delay_seconds=5)
    pk = end_call(db, org.id, make_agent(db, org.id))
    delays = []
    for n in (1, 2):
        before = now_ms()
        outcome = attempt(db, settings, pk)
        assert outcome.kind == "retry"
        delays.append(outcome.retry_in)
        row = call_row(db, pk)
        assert row["analytics_status"] == "pending"
        assert row["analytics_attempts"] == n
        assert f"Attempt {n} of 3 failed" in row["analytics_error"]
        assert "RuntimeError: model exploded" in row["analytics_error"]
        # The retry is due after the delay: the sweeper does not treat it as lost before then.
        assert row["analytics_queued_at"] >= before + int(outcome.retry_in * 1000)
    assert delays == [5.0, 10.0]
    outcome = attempt(db, settings, pk)
    assert outcome.kind == "failed"
    row = call_row(db, pk)
    assert row["analytics_status"] == "failed"
    assert row["analytics_error"] == "Failed after 3 attempts: RuntimeError: model exploded"
    assert row["analytics_finished_at"] is not None
    assert results(db, pk) == []
    with db.read() as conn:
        shown = calllog.get_call(conn, org.id, row["call_id"])
    assert shown is not None
    assert shown["postCallAnalytics"]["status"] == "failed"
    assert shown["postCallAnalytics"]["error"] == row["analytics_error"]
    assert shown["postCallAnalytics"]["failedAt"] is not None
    # A failed job is finished: another delivery does nothing.
    assert attempt(db, settings, pk).kind == "skipped"


def test_a_retry_that_succeeds_clears_the_error(
    db: Database, org: Org, tmp_path: Path, fake_engine: FakeEngine
) -> None:
    fake_engine.fail_first = 1
    settings = job_settings(db, tmp_path)
    pk = end_call(db, org.id, make_agent(db, org.id))
    assert attempt(db, settings, pk).kind == "retry"
    assert attempt(db, settings, pk).kind == "completed"
    row = call_row(db, pk)
    assert (row["analytics_status"], row["analytics_attempts"], row["analytics_error"]) == (
        "completed",
        2,
        None,
    )
    assert result_count(db, pk) == 1


def test_duplicate_deliveries_produce_one_result(
    db: Database, org: Org, tmp_path: Path, fake_engine: FakeEngine
) -> None:
    fake_engine.delay = 0.3
    settings = job_settings(db, tmp_path)
    pk = end_call(db, org.id, make_agent(db, org.id))
    outcomes: list[str] = []
    threads = [
        threading.Thread(target=lambda: outcomes.append(attempt(db, settings, pk).kind)) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["completed", "skipped", "skipped", "skipped"]
    assert fake_engine.calls == 1
    assert attempt(db, settings, pk).kind == "skipped"
    assert result_count(db, pk) == 1


def test_a_job_whose_worker_died_is_swept_and_completes_exactly_once(
    db: Database, org: Org, tmp_path: Path, fake_engine: FakeEngine
) -> None:
    settings = job_settings(db, tmp_path, analytics_lease_seconds=60)
    pk = end_call(db, org.id, make_agent(db, org.id))
    # A worker claims the job and dies: the row says "running", and nothing will finish it.
    dead = lifecycle.claim(db, pk)
    assert dead is not None
    assert call_row(db, pk)["analytics_status"] == "running"
    # Within the lease the sweeper leaves it alone (the worker may just be slow).
    assert pk not in lifecycle.sweep_database(db, settings, set())
    # After the lease it is pending again, with the reason, and enqueued.
    later = now_ms() + 61_000
    assert pk in lifecycle.sweep_database(db, settings, set(), now_ms=later)
    row = call_row(db, pk)
    assert row["analytics_status"] == "pending"
    assert "worker stopped before finishing" in row["analytics_error"]
    assert attempt(db, settings, pk).kind == "completed"
    assert call_row(db, pk)["analytics_attempts"] == 2
    # The presumed-dead worker finishing late writes nothing.
    inputs = lifecycle.load_inputs(db, pk)
    analysis = fake_engine(None, inputs.transcript, inputs.config, inputs.call_start)
    assert lifecycle.complete(db, dead, inputs, analysis) is False
    assert result_count(db, pk) == 1
    assert call_row(db, pk)["analytics_status"] == "completed"


def test_a_job_that_kills_every_worker_ends_failed(db: Database, org: Org, tmp_path: Path) -> None:
    settings = job_settings(db, tmp_path, analytics_max_attempts=2, analytics_lease_seconds=1)
    pk = end_call(db, org.id, make_agent(db, org.id))
    later = now_ms()
    for _ in range(2):
        assert lifecycle.claim(db, pk) is not None  # ... and the worker dies
        later += 5_000
        lifecycle.sweep_database(db, settings, set(), now_ms=later)
    row = call_row(db, pk)
    assert row["analytics_status"] == "failed"
    assert row["analytics_error"].startswith("Failed after 2 attempts: the worker stopped")


def test_the_sweeper_enqueues_lost_jobs_but_not_queued_ones(db: Database, org: Org, tmp_path: Path) -> None:
    settings = job_settings(db, tmp_path)
    agent_id = make_agent(db, org.id)
    lost, queued, fresh = (end_call(db, org.id, agent_id) for _ in range(3))
    later = now_ms() + 120_000
    with db.write() as conn:  # "fresh" was marked just now (relative to `later`)
        mark_pending(conn, fresh, now_ms=later - 1_000)
    swept = lifecycle.sweep_database(db, settings, {queued}, now_ms=later)
    assert lost in swept
    assert queued not in swept
    assert fresh not in swept
    # Sweeping again right away finds nothing new: the lost job's due time moved to now.
    assert lost not in lifecycle.sweep_database(db, settings, set(), now_ms=later + 1)


def test_enqueue_never_raises_when_the_queue_is_down(db: Database, org: Org, tmp_path: Path) -> None:
    settings = job_settings(db, tmp_path, queue_url="redis://127.0.0.1:1/0")
    pk = end_call(db, org.id, make_agent(db, org.id))
    assert Jobs(settings, db).enqueue(pk) is False
    assert call_row(db, pk)["analytics_status"] == "pending"  # the sweeper will find it


def test_new_calls_are_queued_ahead_of_reanalysis(tmp_path: Path) -> None:
    huey_queue, memory_queue = HueyQueue(Settings(data_dir=tmp_path)), MemoryQueue()
    for queue in (huey_queue, memory_queue):
        analytics = Jobs(Settings(data_dir=tmp_path), queue=queue)
        assert analytics.enqueue_many([1, 2], priority=jobs.PRIORITY_RERUN) == 2
        assert analytics.enqueue(3, priority=jobs.PRIORITY_NEW)
        assert queue.live_calls() == {1, 2, 3}
    assert [task.args[0] for task in huey_queue.huey.pending()] == [3, 1, 2]
    assert memory_queue.pending() == [3, 1, 2]


def test_an_unknown_queue_url_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(jobs.QueueConfigError, match="DISPO_QUEUE_URL='amqp://x' is not a queue"):
        jobs.make_huey(Settings(data_dir=tmp_path, queue_url="amqp://x"))


# ------------------------------------------------------------------------------------------
# Real queues


@pytest.fixture
def workers_for() -> Iterator[list[Jobs]]:
    started: list[Jobs] = []
    yield started
    for w in started:
        w.stop()


def _run_through_queue(
    db: Database, org: Org, analytics: Jobs, fake: FakeEngine, started: list[Jobs]
) -> None:
    """Three calls through a queue's worker threads: one fails once and is retried by the queue."""
    fake.fail_first = 1
    agent_id = make_agent(db, org.id)
    pks = [end_call(db, org.id, agent_id) for _ in range(3)]
    started.append(analytics)
    analytics.start(2)
    for pk in pks:
        assert analytics.enqueue(pk) is True
    wait_for(
        lambda: all(call_row(db, pk)["analytics_status"] == "completed" for pk in pks),
        timeout=45,
        what="three jobs to complete",
    )
    assert sorted(call_row(db, pk)["analytics_attempts"] for pk in pks) == [1, 1, 2]
    assert [result_count(db, pk) for pk in pks] == [1, 1, 1]
    assert all(backend is analytics.backend for backend in fake.backends)  # the injected one


def test_sqlite_queue_with_worker_threads(
    db: Database, org: Org, tmp_path: Path, fake_engine: FakeEngine, workers_for: list[Jobs]
) -> None:
    settings = job_settings(db, tmp_path, analytics_retry_delay_seconds=0.5)
    _run_through_queue(db, org, Jobs(settings, db, backend=BACKEND), fake_engine, workers_for)
    assert (tmp_path / "queue.db").exists()


def test_memory_queue_with_worker_threads(
    db: Database, org: Org, tmp_path: Path, fake_engine: FakeEngine, workers_for: list[Jobs]
) -> None:
    settings = job_settings(db, tmp_path, analytics_retry_delay_seconds=0.5)
    analytics = Jobs(settings, db, backend=BACKEND, queue=MemoryQueue())
    _run_through_queue(db, org, analytics, fake_engine, workers_for)
    assert not (tmp_path / "queue.db").exists()


def test_memory_queue_runs_jobs_when_told_and_retries_on_its_clock(
    db: Database, org: Org, tmp_path: Path, fake_engine: FakeEngine
) -> None:
    """The in-memory queue, deterministic: nothing runs until run_pending(), in the test's thread;
    a failed attempt is retried once the queue's clock has passed the delay."""
    fake_engine.fail_first = 1
    clock = [1000.0]
    queue = MemoryQueue(clock=lambda: clock[0])
    settings = job_settings(db, tmp_path, analytics_retry_delay_seconds=5)
    analytics = Jobs(settings, db, backend=BACKEND, queue=queue)
    agent_id = make_agent(db, org.id)
    first, second = end_call(db, org.id, agent_id), end_call(db, org.id, agent_id)
    assert analytics.enqueue(first)
    assert analytics.enqueue(second)
    assert queue.live_calls() == {first, second}
    assert fake_engine.calls == 0  # queued, not run
    assert queue.run_pending() == 2
    assert [call_row(db, pk)["analytics_status"] for pk in (first, second)] == ["pending", "completed"]
    assert queue.live_calls() == {first}  # its retry is scheduled: the sweeper leaves it alone
    assert queue.run_pending() == 0  # not due yet
    clock[0] += 5.0
    assert queue.run_pending() == 1
    assert call_row(db, first)["analytics_status"] == "completed"
    assert call_row(db, first)["analytics_attempts"] == 2
    assert queue.live_calls() == set()
    assert fake_engine.backends == [BACKEND] * 3


def _redis_problem() -> str | None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def test_redis_queue_with_worker_threads(
    db: Database, org: Org, tmp_path: Path, fake_engine: FakeEngine, workers_for: list[Jobs]
) -> None:
    problem = _redis_problem()
    if problem is not None:
        pytest.skip(f"Redis not reachable at {REDIS_URL} ({problem}); set DISPO_TEST_REDIS_URL to run it.")
    queue = f"dispo-test-{uuid.uuid4().hex[:10]}"
    settings = job_settings(
        db, tmp_path, queue_url=f"{REDIS_URL}?queue={queue}", analytics_retry_delay_seconds=0.5
    )
    redis_queue = HueyQueue(settings)
    huey = redis_queue.huey
    assert huey.name == queue
    try:
        _run_through_queue(
            db, org, Jobs(settings, db, backend=BACKEND, queue=redis_queue), fake_engine, workers_for
        )
    finally:
        for w in workers_for:
            w.stop()
        huey.flush()
    assert not (tmp_path / "queue.db").exists()


# ------------------------------------------------------------------------------------------
# A real `dispo worker` process, killed mid-job

WORKER_SCRIPT = """
import sys, time
from dispo.analytics import engine
from tests.analytics_fakes import FakeEngine
delay = float(sys.argv[1])
engine.analyze = FakeEngine(delay=delay)
from dispo.cli import app
app(["worker"], prog_name="dispo")
"""


def _start_worker(tmp_path: Path, env: dict[str, str], delay: float, name: str) -> subprocess.Popen[bytes]:
    root = Path(__file__).resolve().parent.parent
    with (tmp_path / f"{name}.log").open("wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-c", WORKER_SCRIPT, str(delay)],
            # This checkout's code, whichever one the virtualenv has installed.
            env={**env, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])},
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def test_a_worker_process_killed_mid_job_loses_nothing(tmp_path: Path) -> None:
    """SIGKILL a `dispo worker` while its job runs; the next worker's start-up sweep finishes it."""
    db = Database(f"sqlite:///{tmp_path / 'dispo.db'}")
    migrate(db)
    with db.write() as conn:
        org_id = orgs.create_org(conn, "Crash test")
    env = {
        **os.environ,
        "DISPO_DATA_DIR": str(tmp_path),
        "DISPO_ANALYTICS_LEASE_SECONDS": "2",
        "DISPO_QUEUE_URL": "",
        "DISPO_LOG_LEVEL": "info",
        # The worker's backend (never loaded: the fake engine does not call it).
        "DISPO_LLM_BACKEND": "scripted",
        "DISPO_LLM_ISOLATION": "none",
    }
    env.pop("DISPO_DATABASE_URL", None)
    settings = Settings(data_dir=tmp_path, queue_url="")
    pk = end_call(db, org_id, make_agent(db, org_id))
    assert Jobs(settings, db).enqueue(pk)
    first = _start_worker(tmp_path, env, delay=120, name="first")
    try:
        wait_for(
            lambda: call_row(db, pk)["analytics_status"] == "running", timeout=60, what="the job to start"
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    assert call_row(db, pk)["analytics_status"] == "running"  # nobody will finish it...
    time.sleep(2.1)  # ... and its lease runs out
    second = _start_worker(tmp_path, env, delay=0, name="second")
    try:
        wait_for(
            lambda: call_row(db, pk)["analytics_status"] == "completed",
            timeout=60,
            what=f"the swept job to complete; log:\n{(tmp_path / 'second.log').read_text()}",
        )
    finally:
        second.send_signal(signal.SIGINT)
        try:
            second.wait(timeout=15)
        except subprocess.TimeoutExpired:
            second.kill()
    row = call_row(db, pk)
    assert row["analytics_attempts"] == 2
    assert result_count(db, pk) == 1
    db.dispose()


# ------------------------------------------------------------------------------------------
# The real model, end to end


def _local_model_problem() -> str | None:
    try:
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        return f"llama-cpp-python is not installed ({exc})"
    from dispo.llm import get_backend

    try:
        get_backend(Settings())
    except Exception as exc:
        return f"the local model does not load ({type(exc).__name__}: {exc})"
    return None


@pytest.mark.slow
def test_real_model_through_the_queue(tmp_path: Path, workers_for: list[Jobs]) -> None:
    """A call ends, its job goes through the SQLite queue to a worker thread, and the local model
    writes the summary and the metrics."""
    problem = _local_model_problem()
    if problem is not None:
        pytest.skip(f"No local model: {problem}.")
    db = Database(f"sqlite:///{tmp_path / 'dispo.db'}")
    migrate(db)
    with db.write() as conn:
        org_id = orgs.create_org(conn, "Model org")
    settings = Settings(data_dir=tmp_path, queue_url="", analytics_lease_seconds=600)
    pk = end_call(db, org_id, make_agent(db, org_id, summary_prompt="Summarize the call in one sentence."))
    analytics = Jobs(settings, db)  # the settings' backend: the local model, loaded by the job
    workers_for.append(analytics)
    analytics.start(1)
    assert analytics.enqueue(pk)
    wait_for(
        lambda: call_row(db, pk)["analytics_status"] in ("completed", "failed"),
        timeout=400,
        what="the model to analyze the call",
    )
    row = call_row(db, pk)
    assert row["analytics_status"] == "completed", row["analytics_error"]
    (result,) = results(db, pk)
    assert result["config_version"] == 1
    assert result["model"]
    assert result["summary"]
    assert result["duration_ms"] > 0
    (metric,) = result["disposition_metrics"]
    assert metric["identifier"] == "user_interested"
    assert metric["type"] == "ENUM"
    assert metric["value"] in ("yes", "no", "unclear", None)
    assert 0 <= metric["confidence"] <= 1
    assert isinstance(metric["reasoning"], str)
    db.dispose()
