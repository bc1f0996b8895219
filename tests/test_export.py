"""GET /conversation/export: every call matching the list filters, as CSV or JSONL, streamed; and
the issue's whole path at 10,000 calls: import, search, filter by metric, export."""

from __future__ import annotations

import csv
import io
import json

import pytest
from fastapi.testclient import TestClient

from dispo.api import exports
from dispo.store.database import Database
from dispo.store.tables import calls
from tests.analytics_fakes import make_agent
from tests.conftest import Org
from tests.importing import batches, import_call, no_pending_jobs_left, record_analysis  # noqa: F401

pytestmark = pytest.mark.usefixtures("no_pending_jobs_left")

EXPORT = "/api/v1/conversation/export"


def _import(client: TestClient, items: list[dict]) -> list[str]:  # type: ignore[type-arg]
    ids: list[str] = []
    for batch in batches(items):
        data = client.post("/api/v1/conversation/import/batch", json={"calls": batch}).json()["data"]
        assert data["invalid"] == 0, data
        ids += [r["callId"] for r in data["results"]]
    return ids


def _pks(db: Database, call_ids: list[str]) -> list[int]:
    with db.read() as conn:
        found = {r.call_id: r.pk for r in conn.execute(calls.select().where(calls.c.call_id.in_(call_ids)))}
    return [found[c] for c in call_ids]


def test_csv_has_a_column_per_configured_metric(client: TestClient, db: Database, org: Org) -> None:
    agent_id = make_agent(db, org.id)  # its config has one metric, user_interested
    ids = _import(client, [import_call(i, agentId=agent_id) for i in range(3)])
    pks = _pks(db, ids)
    record_analysis(
        db, pks, lambda pk: [{"identifier": "user_interested", "type": "ENUM", "value": f"v{pks.index(pk)}"}]
    )
    r = client.get(EXPORT, params={"format": "csv", "sortOrder": "asc"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0]) == [*exports.CSV_COLUMNS, "metric.user_interested", "transcript"]
    assert [row["callId"] for row in rows] == ids
    assert [row["metric.user_interested"] for row in rows] == ["v0", "v1", "v2"]
    assert rows[0]["summary"] == "recorded by the test"
    assert rows[0]["analyticsStatus"] == "completed"
    assert rows[0]["transcript"].splitlines()[0] == "agent: Hello, this is Maya from Brightline Solar."
    assert rows[0]["from"] == "+14155550123"
    assert rows[0]["duration"] == "90.0"


def test_jsonl_is_one_call_per_line_as_the_api_shows_it(client: TestClient) -> None:
    ids = _import(client, [import_call(i) for i in range(3)])
    r = client.get(EXPORT, params={"format": "jsonl", "search": "refund"})
    assert r.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [c["callId"] for c in lines] == [ids[0]]  # PHRASES[0] says refund
    assert lines[0] == client.get(f"/api/v1/conversation/{ids[0]}").json()["data"]


def test_export_refuses_bad_parameters_before_streaming(client: TestClient) -> None:
    r = client.get(EXPORT, params={"format": "xlsx"})
    assert r.status_code == 400
    assert "use csv or jsonl" in r.json()["errors"][0]
    r = client.get(EXPORT, params={"limit": "5"})
    assert r.status_code == 400
    assert "Unknown parameter limit" in r.json()["errors"][0]
    r = client.get(EXPORT, params={"metric.budget": "gte:x"})
    assert r.status_code == 400


def test_export_walks_every_page(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports, "PAGE", 7)  # several pages from few calls
    ids = _import(client, [import_call(i) for i in range(30)])
    lines = client.get(EXPORT, params={"format": "jsonl", "sortOrder": "asc"}).text.splitlines()
    assert [json.loads(line)["callId"] for line in lines] == ids


def test_ten_thousand_imported_calls_are_searched_filtered_and_exported(
    client: TestClient, db: Database
) -> None:
    n = 10_000
    items = [import_call(i) for i in range(n)]
    ids = _import(client, items)
    assert len(set(ids)) == n
    again = client.post("/api/v1/conversation/import/batch", json={"calls": items[:1000]}).json()["data"]
    assert again["duplicates"] == 1000
    assert again["imported"] == 0
    pks = _pks(db, ids)
    analysed = pks[::5]  # every fifth call: the calls that say "refund" (PHRASES[0])
    record_analysis(
        db, analysed, lambda pk: [{"identifier": "budget", "type": "INTEGER", "value": pk % 10_000}]
    )
    found = client.get("/api/v1/conversation", params={"search": "refund broken", "limit": 5}).json()["data"]
    assert found["pagination"]["total"] == n // 5  # PHRASES[0], every fifth call
    assert all("<mark>refund</mark>" in log["snippet"] for log in found["logs"])
    rich = client.get("/api/v1/conversation", params={"metric.budget": "gte:5000"}).json()["data"]
    assert rich["pagination"]["total"] == sum(1 for pk in analysed if pk % 10_000 >= 5000)
    exported = client.get(EXPORT, params={"format": "csv", "metric.budget": "gte:5000", "search": "refund"})
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    expected = {ids[i] for i, pk in enumerate(pks) if pk % 10_000 >= 5000 and i % 5 == 0}
    assert {row["callId"] for row in rows} == expected
    everything = client.get(EXPORT, params={"format": "jsonl"}).text.splitlines()
    assert len(everything) == n
