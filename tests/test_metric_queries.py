"""Filtering the call log by extracted values (metric.<identifier>=…) and GET /analytics/metrics."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from dispo.store.database import Database
from dispo.store.tables import calls
from tests.conftest import Org
from tests.importing import import_call, no_pending_jobs_left, record_analysis  # noqa: F401

pytestmark = pytest.mark.usefixtures("no_pending_jobs_left")

LIST = "/api/v1/conversation"

# Per call i: interested, budget, callback, name (None: the analysis found no value).
VALUES = [
    ("yes", 8000, "2026-12-02T10:00:00Z", "Ada"),
    ("no", 1000, None, None),
    ("yes", 5000, "2026-12-10T15:30:00Z", "Grace"),
    ("unclear", None, None, "Linus"),
    (True, 12000, "2026-11-29T09:00:00Z", None),  # a BOOLEAN-typed interest, to mix types
]


def _metrics(i: int) -> list[dict[str, Any]]:
    interested, budget, callback, name = VALUES[i]
    return [
        {
            "identifier": "user_interested",
            "type": "BOOLEAN" if isinstance(interested, bool) else "ENUM",
            "value": interested,
        },
        {"identifier": "budget", "type": "INTEGER", "value": budget},
        {"identifier": "callback_at", "type": "DATETIME", "value": callback},
        {"identifier": "user_name", "type": "STRING", "value": name},
    ]


@pytest.fixture
def analysed(client: TestClient, db: Database) -> list[str]:
    """Five imported calls, analysed with VALUES; their call ids in order."""
    body = {"calls": [import_call(i) for i in range(len(VALUES))]}
    results = client.post("/api/v1/conversation/import/batch", json=body).json()["data"]["results"]
    ids = [r["callId"] for r in results]
    with db.read() as conn:
        pks = {r.call_id: r.pk for r in conn.execute(calls.select().where(calls.c.call_id.in_(ids)))}
    record_analysis(db, [pks[c] for c in ids], lambda pk: _metrics([pks[c] for c in ids].index(pk)))
    return ids


def _ids(client: TestClient, **params: str) -> list[str]:
    body = client.get(LIST, params={"limit": 100, "sortOrder": "asc", **params}).json()
    assert body["status"] is True, body
    return [log["callId"] for log in body["data"]["logs"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"metric.user_interested": "yes"}, [0, 2]),
        ({"metric.user_interested": "in:no,unclear"}, [1, 3]),
        ({"metric.user_interested": "ne:yes"}, [1, 3, 4]),
        ({"metric.user_interested": "true"}, [4]),
        ({"metric.budget": "gte:5000"}, [0, 2, 4]),
        ({"metric.budget": "gt:5000"}, [0, 4]),
        ({"metric.budget": "lt:5000"}, [1]),
        ({"metric.budget": "between:1000,8000"}, [0, 1, 2]),
        ({"metric.budget": "8000"}, [0]),
        ({"metric.callback_at": "between:2026-12-01,2026-12-10"}, [0, 2]),
        ({"metric.callback_at": "lte:2026-12-02"}, [0, 4]),
        ({"metric.callback_at": "gte:2026-12-03T00:00:00Z"}, [2]),
        ({"metric.user_name": "is:null"}, [1, 4]),
        ({"metric.user_name": "is:notnull"}, [0, 2, 3]),
        ({"metric.user_interested": "yes", "metric.budget": "gte:6000"}, [0]),
        ({"metric.user_interested": "yes", "search": "brochure"}, []),
        ({"metric.user_interested": "yes", "search": "refund"}, [0]),
        ({"metric.nothing": "yes"}, []),
    ],
)
def test_calls_filter_by_extracted_values(
    client: TestClient, analysed: list[str], params: dict[str, str], expected: list[int]
) -> None:
    assert _ids(client, **params) == [analysed[i] for i in expected]
    total = client.get(LIST, params=params).json()["data"]["pagination"]["total"]
    assert total == len(expected)


def test_metric_filters_report_every_problem(client: TestClient) -> None:
    r = client.get(
        LIST,
        params={
            "metric.budget": "gte:lots",
            "metric.bad-name": "1",
            "metric.user_name": "is:maybe",
            "metric.callback_at": "between:2026-12-01",
            "metric.tags": "in:",
        },
    )
    assert r.status_code == 400
    errors = r.json()["errors"]
    assert len(errors) == 5, errors
    assert "metric.budget: 'lots' is neither a number nor a date" in errors[0] or any(
        "'lots' is neither a number nor a date" in e for e in errors
    )
    assert any("metric identifiers are letters, digits and _" in e for e in errors)
    assert any("use is:null (no value found) or is:notnull" in e for e in errors)
    assert any("give two bounds" in e for e in errors)
    assert any("list the values after in:" in e for e in errors)


def test_a_new_analysis_replaces_the_values(client: TestClient, db: Database, analysed: list[str]) -> None:
    from dispo.store import analytics_jobs

    with db.write() as conn:
        pk = conn.execute(calls.select().where(calls.c.call_id == analysed[1])).mappings().one()["pk"]
        analytics_jobs.mark_pending(conn, pk)
    record_analysis(db, [pk], lambda _pk: [{"identifier": "user_interested", "type": "ENUM", "value": "yes"}])
    assert _ids(client, **{"metric.user_interested": "yes"}) == [analysed[0], analysed[1], analysed[2]]
    assert analysed[1] not in _ids(client, **{"metric.budget": "gte:0"})


def test_analytics_metrics_aggregates_a_period(client: TestClient, analysed: list[str]) -> None:
    r = client.get("/api/v1/analytics/metrics", params={"dateFrom": "2026-11-30", "dateTo": "2026-11-30"})
    assert r.status_code == 200, r.json()
    data = r.json()["data"]
    assert data["calls"] == 5
    assert data["ended"] == 5
    assert data["connected"] == 5
    assert data["completed"] == 5
    assert data["connectRate"] == 1.0
    assert data["completionRate"] == 1.0
    metrics = {m["identifier"]: m for m in data["metrics"]}
    assert metrics["user_interested"]["distribution"] == {"yes": 2, "no": 1, "unclear": 1, "true": 1}
    budget = metrics["budget"]
    assert (budget["count"], budget["sum"], budget["avg"]) == (4, 26000.0, 6500.0)
    assert (budget["p50"], budget["p90"]) == (8000.0, 12000.0)
    assert data["days"] == [
        {
            "date": "2026-11-30",
            "calls": 5,
            "ended": 5,
            "connected": 5,
            "completed": 5,
            "cost": 1.25,
            "minutes": 7.5,
        }
    ]
    empty = client.get("/api/v1/analytics/metrics", params={"dateFrom": "2020-01-01", "dateTo": "2020-01-02"})
    assert empty.json()["data"]["calls"] == 0
    assert empty.json()["data"]["connectRate"] is None


def test_analytics_metrics_refuses_bad_parameters(client: TestClient) -> None:
    r = client.get(
        "/api/v1/analytics/metrics", params={"agentId": "x", "dateFrom": "2026-12-01", "dateTo": "2026-11-01"}
    )
    assert r.status_code == 400
    assert "agentId='x' is not an agent id" in r.json()["errors"][0]
    r = client.get("/api/v1/analytics/metrics", params={"dateFrom": "2026-12-01", "dateTo": "2026-11-01"})
    assert "is after dateTo" in r.json()["errors"][0]


def test_migration_0008_fills_values_and_the_search_index_from_existing_calls(empty_db_url: str) -> None:
    from sqlalchemy import insert, select

    from dispo.store import orgs
    from dispo.store.migrate import migrate
    from dispo.store.tables import analytics_results, call_metrics, transcript_messages

    db = Database(empty_db_url)
    try:
        migrate(db, "0006")
        with db.write() as conn:
            org_id = orgs.create_org(conn, "Before 0008")
            values = {"id": "a" * 24, "call_id": "CALL-1-abcdef", "org_id": org_id, "type": "chat"}
            pk = conn.execute(
                insert(calls)
                .values(**values, status="completed", created_at=1, updated_at=1)
                .returning(calls.c.pk)
            ).scalar_one()
            conn.execute(
                insert(transcript_messages).values(call_pk=pk, seq=0, role="user", content="Budget talk")
            )
            for at, budget in ((10, 100), (20, 200)):  # the newest result counts
                metrics = [{"identifier": "budget", "type": "INTEGER", "value": budget}]
                conn.execute(
                    insert(analytics_results).values(call_pk=pk, disposition_metrics=metrics, created_at=at)
                )
        migrate(db)
        with db.read() as conn:
            rows = conn.execute(select(call_metrics.c.identifier, call_metrics.c.value_num)).all()
            if db.is_sqlite:
                found = conn.exec_driver_sql(
                    "SELECT call_pk FROM transcript_fts WHERE transcript_fts MATCH 'budget'"
                )
                assert [r[0] for r in found] == [pk]
        assert [tuple(r) for r in rows] == [("budget", 200.0)]
    finally:
        db.dispose()


@pytest.mark.parametrize(
    "params",
    [
        {"metric.budget": "gte:5000"},
        {"metric.user_interested": "in:yes,no", "metric.user_name": "is:notnull"},
        {"metric.user_name": "is:null", "search": "refund"},
        {"search": "planning roof"},
        {"search": "thanks", "statusFilter": "completed"},
    ],
)
def test_the_plans_for_many_and_few_matches_find_the_same_calls(
    db: Database, org: Org, analysed: list[str], params: dict[str, str]
) -> None:
    # SQLite's page is written two ways (calls.list_statements): driven by the metric index when
    # few calls match, probing each call in time order when many do; and the capped count is
    # driven by the first metric's index (counts._count_from_metric). All agree.
    from dispo.api import calllog
    from dispo.store import calls as call_store
    from dispo.store import counts
    from dispo.store.driver import fetch_all
    from dispo.store.filters import on_connection

    query = calllog.parse_list_query(org.id, {**params, "limit": "100"})
    with db.read() as conn:
        f = on_connection(query.filter, conn)
        found = []
        for matching in (0, call_store.DEMOTE_AT):
            stmt = call_store.list_statements(f, limit=100, matching=matching, postgresql=not db.is_sqlite)
            found.append(sorted(row[2] for row in fetch_all(conn, stmt.sql, stmt.params)))
        capped = counts.count_calls(conn, f, cap=100)
        exact = counts.count_calls(conn, f, cap=0)
    assert found[0] == found[1]
    assert capped == exact == len(found[0])
