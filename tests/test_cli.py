"""The `dispo` command line, against a real SQLite database."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dispo.cli import app
from dispo.config import get_settings

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("DISPO_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DISPO_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_orgs_keys_and_revocation(env: Path) -> None:
    out = run("orgs", "create", "Acme")
    org_id = re.search(r"Organization ([0-9a-f]{24})", out)
    assert org_id
    assert "sk_" in out
    key = run("keys", "create", "--name", "ci").strip().splitlines()[0]
    assert key.startswith("sk_")
    listing = run("keys", "list")
    assert "ci" in listing
    assert key not in listing  # only prefixes are shown
    prefix = key[:10]
    assert prefix in listing
    assert "Revoked key" in run("keys", "revoke", prefix)
    result = runner.invoke(app, ["keys", "revoke", "no-such-key"])
    assert result.exit_code == 1
    assert "No API key 'no-such-key'" in result.output


def test_several_orgs_need_an_explicit_org(env: Path) -> None:
    run("orgs", "create", "One")
    run("orgs", "create", "Two")
    result = runner.invoke(app, ["keys", "create"])
    assert result.exit_code == 1
    assert "--org" in result.output


def test_calls_list_and_show(env: Path) -> None:
    run("orgs", "create", "Acme")
    assert "Added 300 synthetic calls" in run("demo-data", "--calls", "300", "--days", "5")
    table = run("calls", "list", "--status", "completed", "--limit", "5")
    assert "completed" in table
    assert "CALL-" in table
    data = json.loads(run("calls", "list", "--status", "completed", "--limit", "5", "--json"))
    assert len(data["logs"]) == 5
    assert all(log["status"] == "completed" for log in data["logs"])
    call_id = data["logs"][0]["callId"]
    shown = run("calls", "show", call_id)
    assert call_id in shown
    assert "Transcript" in shown
    assert "Summary" in shown
    detail = json.loads(run("calls", "show", call_id, "--json"))
    assert detail["callId"] == call_id
    by_number = json.loads(run("calls", "list", "--search", detail["to"], "--json"))
    assert call_id in {log["callId"] for log in by_number["logs"]}
    ranged = json.loads(
        run("calls", "list", "--from", "2 days ago", "--duration", "5+", "--json", "--limit", "100")
    )
    assert all(log["duration"] >= 300 for log in ranged["logs"])


def test_calls_list_reports_bad_filters(env: Path) -> None:
    run("orgs", "create", "Acme")
    result = runner.invoke(app, ["calls", "list", "--status", "done", "--limit", "0"])
    assert result.exit_code == 1
    assert "statusFilter has unknown value done" in result.output
    assert "limit=0 is out of range" in result.output
    missing = runner.invoke(app, ["calls", "show", "CALL-1768807723178-4561d0"])
    assert missing.exit_code == 1
    assert "No call CALL-1768807723178-4561d0" in missing.output


def test_no_org_yet_says_what_to_do(env: Path) -> None:
    result = runner.invoke(app, ["calls", "list"])
    assert result.exit_code == 1
    assert "make run" in result.output


def test_migrate(env: Path) -> None:
    assert "is up to date" in run("migrate")
    assert (env / "dispo.db").exists()
