"""Re-analysis: POST /conversation/reanalyze (by ids, by filters, config versions, errors) and
`dispo analytics rerun` (inline and through the queue)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from dispo.analytics import jobs, reanalysis
from dispo.cli import app as cli_app
from dispo.config import Settings, get_settings
from dispo.store import orgs
from dispo.store.database import Database
from dispo.store.migrate import migrate
from dispo.timeutil import now_ms
from tests.analytics_fakes import (
    FakeEngine,
    attempt,
    call_row,
    end_call,
    fake_engine,
    make_agent,
    results,
    set_config,
    wait_for,
)
from tests.conftest import Org

__all__ = ["fake_engine"]  # the fixture, imported for pytest

DAY = 86_400_000


def run_all(db: Database, settings: Settings, pks: list[int]) -> None:
    """What the workers would do with the queued jobs."""
    for pk in pks:
        assert attempt(db, settings, pk).kind == "completed"


def reanalyze(client: TestClient, body: Any, prefix: str = "/api/v1") -> Any:
    return client.post(f"{prefix}/conversation/reanalyze", json=body)


def test_by_ids_queues_the_calls_and_keeps_earlier_results(
    client: TestClient, db: Database, org: Org, settings: Settings, fake_engine: FakeEngine
) -> None:
    agent_id = make_agent(db, org.id, summary_prompt="first")
    pk = end_call(db, org.id, agent_id)
    run_all(db, settings, [pk])
    with db.write() as conn:
        set_config(conn, org.id, agent_id, "second")
    call_id = call_row(db, pk)["call_id"]

    response = reanalyze(client, {"callIds": [call_id]})
    assert response.status_code == 202, response.text
    assert response.json() == {
        "status": True,
        "data": {"queued": 1, "callIds": [call_id], "configVersion": None},
    }
    shown = client.get(f"/api/v1/conversation/{call_id}").json()["data"]["postCallAnalytics"]
    # Pending again, while the previous result stays visible until the new one lands.
    assert shown["status"] == "pending"
    assert shown["configVersion"] == 1
    assert shown["startedAt"] is None
    assert pk in client.app.state.jobs.queue.live_calls()  # handed to the app's queue

    run_all(db, settings, [pk])
    assert [r["config_version"] for r in results(db, pk)] == [1, 2]
    shown = client.get(f"/api/v1/conversation/{call_id}").json()["data"]["postCallAnalytics"]
    assert shown["status"] == "completed"
    assert shown["configVersion"] == 2
    assert shown["summary"].endswith("prompt=second")


def test_a_chosen_config_version(
    client: TestClient, db: Database, org: Org, settings: Settings, fake_engine: FakeEngine
) -> None:
    agent_id = make_agent(db, org.id, summary_prompt="first")
    with db.write() as conn:
        set_config(conn, org.id, agent_id, "second")
    pk = end_call(db, org.id, agent_id)
    response = reanalyze(client, {"callIds": [call_row(db, pk)["call_id"]], "configVersion": 1})
    assert response.status_code == 202, response.text
    run_all(db, settings, [pk])
    assert [r["config_version"] for r in results(db, pk)] == [1]
    response = reanalyze(client, {"callIds": [call_row(db, pk)["call_id"]], "configVersion": 3})
    assert response.status_code == 400
    assert "has no post-call analytics config version 3" in response.json()["errors"][0]


def test_by_filters_takes_the_call_list_filters_and_only_ended_calls(
    client: TestClient, db: Database, org: Org, settings: Settings, fake_engine: FakeEngine
) -> None:
    a, b = make_agent(db, org.id), make_agent(db, org.id)
    now = now_ms()
    wanted = [end_call(db, org.id, a, created_at=now - DAY), end_call(db, org.id, a, status="no_answer")]
    end_call(db, org.id, a, created_at=now - 10 * DAY)  # before dateFrom
    end_call(db, org.id, b)  # another agent
    end_call(db, org.id, a, status="in_progress")  # not ended
    response = reanalyze(
        client, {"filters": {"agentIds": [a], "dateFrom": "3 days ago", "dateTo": now + 1000}}
    )
    assert response.status_code == 202, response.text
    data = response.json()["data"]
    assert data["queued"] == 2
    assert data["callIds"] == [call_row(db, pk)["call_id"] for pk in wanted]  # oldest first
    assert all(call_row(db, pk)["analytics_status"] == "pending" for pk in wanted)
    # Comma-separated strings work as in the query string; statusFilter narrows further.
    response = reanalyze(client, {"filters": {"agentIds": a, "statusFilter": "no_answer,in_progress"}})
    assert response.json()["data"]["queued"] == 1
    # SDK 5.x prefix.
    response = reanalyze(client, {"filters": {"agentIds": [b]}}, prefix="/atoms/v1")
    assert response.status_code == 202
    assert response.json()["data"]["queued"] == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Give either callIds"),
        ({"callIds": ["CALL-1"], "filters": {}}, "Give either callIds"),
        ({"callIds": "CALL-1"}, "callIds must be a list"),
        ({"callIds": []}, "callIds is empty"),
        ({"callIds": ["CALL-1"], "force": True}, "Unknown field force"),
        ({"filters": []}, "filters must be an object"),
        ({"filters": {"page": 2}}, "filters.page is not a filter"),
        ({"filters": {"statusFilter": "bogus"}}, "statusFilter has unknown value bogus"),
        ({"filters": {"agentIds": ["nope"]}}, "agentIds has malformed id nope"),
        ({"filters": {"dateFrom": {"x": 1}}}, "filters.dateFrom must be a string"),
        ({"filters": {"statusFilter": "in_progress"}}, "selects only calls that have not ended"),
        ({"filters": {}, "configVersion": 0}, "configVersion must be a version number"),
        ({"filters": {}, "configVersion": "2"}, "configVersion must be a version number"),
        ({"filters": {}, "configVersion": True}, "configVersion must be a version number"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_bad_requests_say_what_to_fix(client: TestClient, body: Any, message: str) -> None:
    response = reanalyze(client, body)
    assert response.status_code == 400, response.text
    assert response.json()["status"] is False
    assert message in response.json()["errors"][0]


def test_unknown_foreign_and_unfinished_calls_queue_nothing(
    client: TestClient, db: Database, org: Org, other_org: Org
) -> None:
    agent_id = make_agent(db, org.id)
    ended = end_call(db, org.id, agent_id)
    with db.write() as conn:  # as if its analytics had run
        conn.exec_driver_sql(f"UPDATE calls SET analytics_status = 'completed' WHERE pk = {ended}")
    live = end_call(db, org.id, agent_id, status="in_progress")
    foreign = end_call(db, other_org.id, make_agent(db, other_org.id))
    ids = {pk: call_row(db, pk)["call_id"] for pk in (ended, live, foreign)}

    response = reanalyze(client, {"callIds": [ids[ended], ids[foreign]]})
    assert response.status_code == 404
    assert ids[foreign] in response.json()["errors"][0]
    response = reanalyze(client, {"callIds": [ids[ended], ids[live]]})
    assert response.status_code == 409
    assert f"{ids[live]} (in_progress) has not ended" in response.json()["errors"][0]
    assert call_row(db, ended)["analytics_status"] == "completed"  # nothing was queued
    # By _id too, and the agent without the version is named.
    response = reanalyze(client, {"callIds": [call_row(db, ended)["id"]], "configVersion": 9})
    assert response.status_code == 400
    assert agent_id in response.json()["errors"][0]


def test_the_per_request_cap(
    client: TestClient, db: Database, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reanalysis, "REANALYZE_MAX", 2)
    agent_id = make_agent(db, org.id)
    pks = [end_call(db, org.id, agent_id) for _ in range(3)]
    response = reanalyze(client, {"filters": {"agentIds": [agent_id]}})
    assert response.status_code == 400
    assert "match more than 2 calls" in response.json()["errors"][0]
    response = reanalyze(client, {"callIds": [call_row(db, pk)["call_id"] for pk in pks]})
    assert response.status_code == 400
    assert "at most 2 are allowed" in response.json()["errors"][0]


# ------------------------------------------------------------------------------------------
# dispo analytics rerun

runner = CliRunner()


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Database, str]]:
    monkeypatch.setenv("DISPO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DISPO_ANALYTICS_RETRY_DELAY_SECONDS", "0")
    for name in ("DISPO_DATABASE_URL", "DISPO_QUEUE_URL"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    db = Database(f"sqlite:///{tmp_path / 'dispo.db'}")
    migrate(db)
    with db.write() as conn:
        org_id = orgs.create_org(conn, "CLI org")
    yield db, org_id
    db.dispose()
    get_settings.cache_clear()


def test_rerun_inline_with_a_progress_bar(cli_env: tuple[Database, str], fake_engine: FakeEngine) -> None:
    db, org_id = cli_env
    agent_id = make_agent(db, org_id)
    pks = [end_call(db, org_id, agent_id) for _ in range(3)]
    result = runner.invoke(cli_app, ["analytics", "rerun", "--agent-id", agent_id, "--inline"])
    assert result.exit_code == 0, result.output
    assert "Re-analyzing" in result.output
    assert "Re-analyzed 3 of 3 call(s)." in result.output
    assert all(len(results(db, pk)) == 1 for pk in pks)
    # A failure is reported with its reason, and the exit code says so.
    fake_engine.fail_first = fake_engine.calls + 99
    call_id = call_row(db, pks[0])["call_id"]
    result = runner.invoke(cli_app, ["analytics", "rerun", "--call-id", call_id, "--inline"])
    assert result.exit_code == 1
    assert f"failed {call_id}: Failed after 3 attempts: RuntimeError: model exploded" in result.output
    assert call_row(db, pks[0])["analytics_status"] == "failed"


def test_rerun_through_the_queue_follows_the_workers(
    cli_env: tuple[Database, str], fake_engine: FakeEngine
) -> None:
    db, org_id = cli_env
    agent_id = make_agent(db, org_id)
    pks = [end_call(db, org_id, agent_id) for _ in range(2)]
    settings = get_settings()
    # Without waiting: queued and pending.
    result = runner.invoke(cli_app, ["analytics", "rerun", "--since", "1 day ago", "--no-wait"])
    assert result.exit_code == 0, result.output
    assert "Queued 2 call(s)" in result.output
    assert all(call_row(db, pk)["analytics_status"] == "pending" for pk in pks)
    workers = jobs.Jobs(settings, db)
    workers.start(1)
    try:
        wait_for(lambda: all(call_row(db, pk)["analytics_status"] == "completed" for pk in pks))
        result = runner.invoke(cli_app, ["analytics", "rerun", "--agent-id", agent_id])
    finally:
        workers.stop()
    assert result.exit_code == 0, result.output
    assert "Re-analyzed 2 of 2 call(s)." in result.output
    assert all(len(results(db, pk)) == 2 for pk in pks)


def test_rerun_reports_bad_options(cli_env: tuple[Database, str]) -> None:
    result = runner.invoke(cli_app, ["analytics", "rerun", "--call-id", "CALL-1", "--agent-id", "x"])
    assert result.exit_code == 1
    assert "not both" in result.output
    result = runner.invoke(cli_app, ["analytics", "rerun", "--status", "bogus"])
    assert result.exit_code == 1
    assert "statusFilter has unknown value bogus" in result.output
    result = runner.invoke(cli_app, ["analytics", "rerun", "--call-id", "CALL-1795262808949-bdd3ea"])
    assert result.exit_code == 1
    assert "No call CALL-1795262808949-bdd3ea" in result.output
