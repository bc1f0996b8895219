"""`dispo calls import FILE.jsonl` and `dispo calls export`, on the database and through a server."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dispo.cli import app
from dispo.store import orgs
from dispo.store.database import Database
from dispo.store.migrate import migrate
from tests.conftest import LiveServer, Org
from tests.importing import import_call

runner = CliRunner()


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    monkeypatch.setenv("DISPO_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DISPO_DATABASE_URL", raising=False)
    from dispo.config import get_settings

    get_settings.cache_clear()
    db = Database(get_settings().effective_database_url)
    migrate(db)
    with db.write() as conn:
        orgs.create_org(conn, "Only org")
    yield db  # type: ignore[misc]
    db.dispose()
    get_settings.cache_clear()


def _jsonl(path: Path, lines: list[object]) -> Path:
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n", encoding="utf-8")
    return path


def test_import_then_export_through_the_database(cli_db: Database, tmp_path: Path) -> None:
    calls = [import_call(i) for i in range(12)]
    source = _jsonl(tmp_path / "calls.jsonl", [*calls, {"externalId": "bad", "type": "pigeon"}])
    (tmp_path / "calls.jsonl").write_text(source.read_text() + "not json\n", encoding="utf-8")
    result = runner.invoke(app, ["calls", "import", str(source), "--batch", "5"])
    assert result.exit_code == 1, result.output  # two lines were invalid
    assert "12 imported, 0 already there (same externalId), 2 invalid." in result.output
    assert "line 13: type is 'pigeon'" in result.output
    assert "line 15: Expecting value" in result.output
    again = runner.invoke(app, ["calls", "import", str(source)])
    assert "0 imported, 12 already there" in again.output
    out = tmp_path / "refunds.csv"
    result = runner.invoke(app, ["calls", "export", "--out", str(out), "--search", "refund"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 3  # calls 0, 5 and 10 say refund
    result = runner.invoke(app, ["calls", "export", "--out", "-", "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 12


def test_list_filters_by_metric(cli_db: Database, tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "calls.jsonl", [import_call(i) for i in range(2)])
    assert runner.invoke(app, ["calls", "import", str(source)]).exit_code == 0
    result = runner.invoke(app, ["calls", "list", "--json", "--metric", "budget=gte:1"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["logs"] == []  # not analysed yet: no values
    result = runner.invoke(app, ["calls", "list", "--metric", "budget"])
    assert result.exit_code == 1
    assert "write IDENTIFIER=VALUE" in result.output


def test_export_refuses_bad_filters(cli_db: Database, tmp_path: Path) -> None:
    result = runner.invoke(app, ["calls", "export", "--out", str(tmp_path / "x"), "--metric", "budget"])
    assert result.exit_code == 1
    assert "write IDENTIFIER=VALUE" in result.output
    result = runner.invoke(
        app, ["calls", "export", "--out", str(tmp_path / "x"), "--metric", "budget=gte:zz"]
    )
    assert result.exit_code == 1
    assert "neither a number nor a date" in result.output


def test_import_posts_batches_to_a_server(live_server: LiveServer, org: Org, tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "calls.jsonl", [import_call(i) for i in range(7)])
    result = runner.invoke(
        app, ["calls", "import", str(source), "--server", live_server.url, "--key", org.key, "--batch", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "7 imported" in result.output
