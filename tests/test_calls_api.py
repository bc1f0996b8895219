"""The call-log API: listing, filters, totals, cursors, single fetch and batch search."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dispo.api import calllog
from dispo.api.app import create_app
from dispo.config import Settings
from dispo.store import calls as call_store
from dispo.store import counts
from dispo.store.database import Database
from dispo.timeutil import ms_to_iso, now_ms
from tests.conftest import Org
from tests.helpers import all_calls, seed_calls

CALL_FIELDS = {
    "_id",
    "callId",
    "status",
    "duration",
    "from",
    "to",
    "type",
    "agentId",
    "campaignId",
    "createdAt",
    "updatedAt",
    "transcript",
    "recordingUrl",
    "recordingDualUrl",
    "callCost",
    "disconnectionReason",
    "callFailureReason",
    "retryCount",
    "variables",
    "postCallAnalytics",
    "average_transcriber_latency",
    "average_agent_latency",
    "average_synthesizer_latency",
}


@pytest.fixture
def seeded(db: Database, org: Org) -> Any:
    return seed_calls(db, org.id, 150)


def test_default_list_is_newest_first_with_pagination_block(client: TestClient, seeded: Any) -> None:
    body = client.get("/api/v1/conversation").json()
    assert body["status"] is True
    data = body["data"]
    assert len(data["logs"]) == 10
    p = data["pagination"]
    assert p == {
        **p,
        "total": 150,
        "page": 1,
        "limit": 10,
        "hasMore": True,
        "totalPages": 15,
    }
    assert p["nextCursor"]
    created = [log["createdAt"] for log in data["logs"]]
    assert created == sorted(created, reverse=True)
    assert set(data["logs"][0]) >= CALL_FIELDS


def test_both_prefixes_serve_the_same_data(client: TestClient, seeded: Any) -> None:
    a = client.get("/api/v1/conversation", params={"limit": 5}).json()
    b = client.get("/atoms/v1/conversation", params={"limit": 5}).json()
    assert a == b


def test_last_page_has_no_more(client: TestClient, seeded: Any) -> None:
    p = client.get("/api/v1/conversation", params={"page": 3, "limit": 60}).json()["data"]
    assert len(p["logs"]) == 30
    assert p["pagination"]["hasMore"] is False
    assert p["pagination"]["nextCursor"] is None
    beyond = client.get("/api/v1/conversation", params={"page": 9, "limit": 60}).json()["data"]
    assert beyond["logs"] == []
    assert beyond["pagination"]["total"] == 150


@pytest.mark.parametrize(
    ("param", "field", "value"),
    [
        ("statusFilter", "status", "completed"),
        ("callTypes", "type", "chat"),
        ("disconnectReasonFilter", "disconnectionReason", "user_hangup"),
    ],
)
def test_single_value_filters(client: TestClient, seeded: Any, param: str, field: str, value: str) -> None:
    logs = all_calls(client, **{param: value})
    assert logs
    assert all(log[field] == value for log in logs)
    everything = all_calls(client)
    assert len(logs) == sum(1 for log in everything if log[field] == value)


def test_multi_value_filter_is_a_union(client: TestClient, seeded: Any) -> None:
    logs = all_calls(client, statusFilter="failed,busy")
    everything = all_calls(client)
    assert {log["status"] for log in logs} <= {"failed", "busy"}
    assert len(logs) == sum(1 for log in everything if log["status"] in ("failed", "busy"))


def test_agent_and_campaign_filters(client: TestClient, seeded: Any) -> None:
    agent = seeded.agent_ids[0]
    campaign = next(iter(seeded.campaigns))
    by_agent = all_calls(client, agentIds=agent)
    by_campaign = all_calls(client, campaignIds=campaign)
    assert by_agent
    assert all(log["agentId"] == agent for log in by_agent)
    assert by_campaign
    assert all(log["campaignId"] == campaign for log in by_campaign)


def test_duration_buckets_and_ranges(client: TestClient, seeded: Any) -> None:
    everything = all_calls(client)
    long_calls = all_calls(client, durationFilter="5+")
    assert len(long_calls) == sum(1 for c in everything if c["duration"] >= 300)
    short = all_calls(client, durationFilter="0-30,30-60")
    assert len(short) == sum(1 for c in everything if c["duration"] < 60)
    ranged = all_calls(client, minDuration=60, maxDuration=120)
    assert len(ranged) == sum(1 for c in everything if 60 <= c["duration"] <= 120)
    assert ranged


def test_date_range_filters_by_created_at(client: TestClient, seeded: Any) -> None:
    everything = all_calls(client)
    times = sorted(c["createdAt"] for c in everything)
    lo, hi = times[30], times[90]
    logs = all_calls(client, dateFrom=lo, dateTo=hi)
    assert len(logs) == sum(1 for t in times if lo <= t <= hi)
    total = client.get("/api/v1/conversation", params={"dateFrom": lo, "dateTo": hi}).json()["data"][
        "pagination"
    ]
    assert total["total"] == len(logs)


def test_bare_date_to_includes_that_whole_day(client: TestClient, seeded: Any) -> None:
    everything = all_calls(client)
    day = everything[0]["createdAt"][:10]
    logs = all_calls(client, dateFrom=day, dateTo=day)
    assert len(logs) == sum(1 for c in everything if c["createdAt"][:10] == day)
    assert logs


def test_relative_dates_are_understood(client: TestClient, seeded: Any) -> None:
    everything = all_calls(client)
    week_ago = ms_to_iso(now_ms() - 7 * 86_400_000)
    assert week_ago is not None
    logs = all_calls(client, dateFrom="7 days ago")
    # The phrase resolves a moment after week_ago was computed: allow calls right on the edge.
    expected = sum(1 for c in everything if c["createdAt"] >= week_ago)
    assert abs(len(logs) - expected) <= 1
    assert logs


def test_search_by_phone_prefix_and_call_id(client: TestClient, seeded: Any) -> None:
    everything = all_calls(client)
    target = next(c for c in everything if c["to"] and c["to"].startswith("+91"))
    by_number = all_calls(client, search=target["to"])
    assert target["callId"] in {c["callId"] for c in by_number}
    assert all(target["to"] in (c["from"], c["to"]) for c in by_number)
    prefix = target["to"][:6]
    by_prefix = all_calls(client, search=prefix)
    assert len(by_prefix) == sum(
        1 for c in everything if (c["from"] or "").startswith(prefix) or (c["to"] or "").startswith(prefix)
    )
    # A number typed without the plus sign, with spaces, still matches.
    spaced = " ".join([target["to"][1:4], target["to"][4:]])
    assert target["callId"] in {c["callId"] for c in all_calls(client, search=spaced)}
    by_id = all_calls(client, search=target["callId"])
    assert [c["callId"] for c in by_id] == [target["callId"]]


def test_totals_counted_call_by_call_stop_at_the_cap(
    db: Database, org: Org, seeded: Any, tmp_path: Path
) -> None:
    # DISPO_LIST_TOTAL_CAP: a search or duration range past the cap answers the cap, flagged; the
    # pages themselves are unchanged, and totals the rollups answer stay exact.
    settings = Settings(data_dir=tmp_path, list_total_cap=20)
    with TestClient(create_app(settings, db), headers=org.headers) as capped:
        everything = all_calls(capped, minDuration=0)
        assert len(everything) == 150  # every page is still there
        p = capped.get("/api/v1/conversation", params={"minDuration": 0}).json()["data"]["pagination"]
        assert (p["total"], p["totalPages"], p["totalIsLowerBound"], p["hasMore"]) == (20, 2, True, True)
        exact = capped.get("/api/v1/conversation", params={"minDuration": 10**6}).json()["data"]["pagination"]
        assert exact["total"] == 0
        assert "totalIsLowerBound" not in exact
        rollup = capped.get("/api/v1/conversation").json()["data"]["pagination"]
        assert rollup["total"] == 150
        assert "totalIsLowerBound" not in rollup
    with TestClient(create_app(Settings(data_dir=tmp_path, list_total_cap=0), db), headers=org.headers) as c:
        p = c.get("/api/v1/conversation", params={"minDuration": 0}).json()["data"]["pagination"]
        assert p["total"] == 150
        assert "totalIsLowerBound" not in p
    with db.read() as conn:
        f = calllog.parse_list_query(org.id, {"minDuration": "0"}).filter
        assert counts.count_calls(conn, f) == 150
        assert counts.count_calls(conn, f, cap=20) == 21  # "more than 20"
        assert counts.count_calls(conn, f, cap=500) == 150


@pytest.mark.parametrize("sort_by", ["createdAt", "updatedAt", "callDuration", "avgLatency"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sorting_and_cursor_walk_every_call_once(
    client: TestClient, seeded: Any, sort_by: str, order: str
) -> None:
    logs = all_calls(client, sortBy=sort_by, sortOrder=order, limit=17)
    assert len(logs) == 150
    assert len({c["callId"] for c in logs}) == 150
    key = {
        "createdAt": "createdAt",
        "updatedAt": "updatedAt",
        "callDuration": "duration",
    }.get(sort_by)
    if key:
        values = [c[key] for c in logs]
        assert values == sorted(values, reverse=order == "desc")


def test_cursor_is_stable_under_inserts(client: TestClient, db: Database, org: Org, seeded: Any) -> None:
    first = client.get("/api/v1/conversation", params={"limit": 40}).json()["data"]
    seen = [c["callId"] for c in first["logs"]]
    # New calls arrive (newest first, so they sort before the cursor) while a client pages.
    seed_calls(db, org.id, 10, days=1, seed=99)
    cursor = first["pagination"]["nextCursor"]
    while cursor:
        page = client.get("/api/v1/conversation", params={"limit": 40, "cursor": cursor}).json()["data"]
        seen.extend(c["callId"] for c in page["logs"])
        cursor = page["pagination"]["nextCursor"]
    assert len(seen) == len(set(seen)) == 150


def test_list_items_carry_transcripts_and_analytics(client: TestClient, seeded: Any) -> None:
    logs = all_calls(client, statusFilter="completed")
    assert all(10 <= len(c["transcript"]) <= 40 for c in logs)
    message = logs[0]["transcript"][0]
    assert set(message) == {"role", "content", "timestamp"}
    assert message["role"] in ("agent", "user")
    assert logs[0]["postCallAnalytics"]["summary"]
    assert logs[0]["postCallAnalytics"]["dispositionMetrics"][0]["identifier"] == "user_interested"
    not_connected = all_calls(client, statusFilter="no_answer")
    assert not_connected[0]["transcript"] == []
    assert not_connected[0]["postCallAnalytics"] == {
        "status": None,
        "summary": None,
        "dispositionMetrics": [],
    }


# ---------------------------------------------------------------------------------------------
# Totals from the rollup agree with counting rows, for any mix of filters.


def _random_params(rng: random.Random, fleet: Any, everything: list[dict[str, Any]]) -> dict[str, str]:
    params: dict[str, str] = {}
    if rng.random() < 0.4:
        params["agentIds"] = ",".join(rng.sample(fleet.agent_ids, rng.randint(1, 2)))
    if rng.random() < 0.3:
        params["campaignIds"] = rng.choice(list(fleet.campaigns))
    if rng.random() < 0.5:
        params["statusFilter"] = ",".join(
            rng.sample(["completed", "no_answer", "failed", "busy"], rng.randint(1, 2))
        )
    if rng.random() < 0.3:
        params["callTypes"] = rng.choice(["chat", "telephony_inbound", "telephony_outbound"])
    if rng.random() < 0.3:
        params["durationFilter"] = rng.choice(["0-30", "1-5", "5+", "30-60,1-5"])
    if rng.random() < 0.2:
        params["minDuration"] = str(rng.randint(0, 100))
    if rng.random() < 0.6:
        a, b = sorted(rng.sample([c["createdAt"] for c in everything], 2))
        params["dateFrom"], params["dateTo"] = a, b
    return params


def test_rollup_totals_equal_exact_counts(client: TestClient, db: Database, org: Org, seeded: Any) -> None:
    everything = all_calls(client)
    rng = random.Random(5)
    for _ in range(60):
        params = _random_params(rng, seeded, everything)
        total = client.get("/api/v1/conversation", params=params).json()["data"]["pagination"]["total"]
        walked = all_calls(client, **params)
        assert total == len(walked), params


def test_updating_a_call_moves_it_between_rollup_cells(
    client: TestClient, db: Database, org: Org, seeded: Any
) -> None:
    before = client.get("/api/v1/conversation", params={"statusFilter": "completed"}).json()["data"][
        "pagination"
    ]
    victim = all_calls(client, statusFilter="no_answer")[0]
    with db.write() as conn:
        row = call_store.get_call(conn, org.id, victim["callId"])
        assert row is not None
        call_store.update_call(conn, row["pk"], {"status": "completed", "duration": 400.0})
    after = client.get("/api/v1/conversation", params={"statusFilter": "completed"}).json()["data"][
        "pagination"
    ]
    assert after["total"] == before["total"] + 1
    assert client.get(
        "/api/v1/conversation",
        params={"statusFilter": "completed", "durationFilter": "5+"},
    ).json()["data"]["pagination"]["total"] == len(
        all_calls(client, statusFilter="completed", durationFilter="5+")
    )


@pytest.mark.parametrize("table_name", ["call_counts", "call_counts_weekly"])
def test_rebuild_counts_reproduces_incremental_counts(
    db: Database, org: Org, seeded: Any, table_name: str
) -> None:
    from sqlalchemy import select

    from dispo.store import tables

    table = getattr(tables, table_name)

    def snapshot() -> list[tuple[Any, ...]]:
        with db.read() as conn:
            stmt = select(table).where(table.c.org_id == org.id, table.c.calls != 0)
            return sorted(tuple(r) for r in conn.execute(stmt))

    incremental = snapshot()
    with db.write() as conn:
        call_store.rebuild_counts(conn, org.id)
    assert snapshot() == incremental
    assert sum(r[-1] for r in incremental) == 150


@pytest.mark.parametrize(
    ("lo", "hi", "unit", "blocks", "ends"),
    [
        (None, None, 7, (None, None), []),
        (0, 13, 7, (0, 1), []),
        (3, 19, 7, (1, 1), [(3, 6), (14, 19)]),
        (3, 20, 7, (1, 2), [(3, 6)]),
        (3, 5, 7, None, [(3, 5)]),
        (None, 10, 7, (None, 0), [(7, 10)]),
        (10, None, 7, (2, None), [(10, 13)]),
        (
            86_400_000 + 5,
            3 * 86_400_000 - 1,
            86_400_000,
            (2, 2),
            [(86_400_005, 2 * 86_400_000 - 1)],
        ),
    ],
)
def test_split_into_whole_blocks_and_ragged_ends(
    lo: int | None, hi: int | None, unit: int, blocks: Any, ends: list[tuple[int, int]]
) -> None:
    assert counts.split(lo, hi, unit) == (blocks, ends)


# ---------------------------------------------------------------------------------------------
# Single call and batch search


def test_get_call_returns_every_documented_field(client: TestClient, seeded: Any) -> None:
    listed = all_calls(client, statusFilter="completed")[0]
    body = client.get(f"/api/v1/conversation/{listed['callId']}").json()
    assert body["status"] is True
    data = body["data"]
    assert set(data) >= CALL_FIELDS
    assert data == listed
    assert data["callId"].startswith("CALL-")
    assert isinstance(data["average_agent_latency"], float)
    # Also reachable by its object id.
    assert client.get(f"/api/v1/conversation/{data['_id']}").json()["data"]["callId"] == data["callId"]


def test_search_returns_calls_in_the_order_asked(client: TestClient, seeded: Any) -> None:
    ids = [c["callId"] for c in all_calls(client)[:5]]
    wanted = [ids[3], ids[0], "CALL-1768807723178-ffffff", ids[4]]
    data = client.post("/api/v1/conversation/search", json={"callIds": wanted}).json()["data"]
    assert [c["callId"] for c in data["logs"]] == [ids[3], ids[0], ids[4]]
    assert data["total"] == 3
    assert data["requestedCount"] == 4


def test_search_accepts_100_ids_and_refuses_101(client: TestClient, seeded: Any) -> None:
    ids = [c["callId"] for c in all_calls(client)[:101]]
    ok = client.post("/api/v1/conversation/search", json={"callIds": ids[:100]})
    assert ok.status_code == 200
    assert ok.json()["data"]["total"] == 100
    too_many = client.post("/api/v1/conversation/search", json={"callIds": ids})
    assert too_many.status_code == 400
    assert too_many.json() == {
        "status": False,
        "errors": [
            "callIds lists 101 ids; at most 100 are allowed per request: send them in batches of 100."
        ],
    }


# ---------------------------------------------------------------------------------------------
# Organizations do not see each other


def test_another_organizations_calls_are_invisible(
    client: TestClient, db: Database, seeded: Any, other_org: Org
) -> None:
    seed_calls(db, other_org.id, 20, seed=11)
    mine = all_calls(client)
    assert len(mine) == 150
    theirs = all_calls(TestClient(client.app, headers=other_org.headers))
    assert len(theirs) == 20
    foreign = theirs[0]["callId"]
    r = client.get(f"/api/v1/conversation/{foreign}")
    assert r.status_code == 404
    assert r.json()["status"] is False
    searched = client.post("/api/v1/conversation/search", json={"callIds": [foreign]}).json()["data"]
    assert searched["logs"] == []
    assert all_calls(client, search=foreign) == []
    assert all_calls(client, agentIds=theirs[0]["agentId"]) == []


def test_empty_organization_lists_nothing(client: TestClient) -> None:
    data = client.get("/api/v1/conversation").json()["data"]
    assert data["logs"] == []
    assert data["pagination"] == {
        "total": 0,
        "page": 1,
        "limit": 10,
        "hasMore": False,
        "totalPages": 0,
        "nextCursor": None,
    }


def test_dates_far_outside_the_data_count_zero(client: TestClient, seeded: Any) -> None:
    old = (datetime.now(UTC) - timedelta(days=4000)).date().isoformat()
    older = (datetime.now(UTC) - timedelta(days=5000)).date().isoformat()
    data = client.get("/api/v1/conversation", params={"dateFrom": older, "dateTo": old}).json()["data"]
    assert data["pagination"]["total"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"minDuration": 60, "maxDuration": 200},
        {"durationFilter": "1-5,5+"},
        {"search": "+91"},
        {"search": "CALL-1"},
        {"minDuration": 30, "sortBy": "updatedAt", "sortOrder": "asc"},
    ],
)
def test_demoted_plans_return_the_same_calls(
    client: TestClient,
    db: Database,
    seeded: Any,
    params: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = all_calls(client, **params)
    assert expected
    monkeypatch.setattr(call_store, "DEMOTE_AT", 1)  # every match count takes the demoted plan
    assert all_calls(client, **params) == expected
    monkeypatch.setattr(call_store, "DEMOTE_AT", 10**9)  # every match count takes the sort-key hint
    assert all_calls(client, **params) == expected
    # The two forms really differ: demoted wraps the filtered column, hinted wraps the sort key.
    q = calllog.parse_list_query("x" * 24, {k: str(v) for k, v in params.items()})
    hinted = str(call_store.list_statements(q.filter, sort_by=q.sort_by, order=q.order, matching=5))
    assert f"ORDER BY calls.{'updated_at' if 'sortBy' in params else 'created_at'} + 0" in hinted, hinted
    assert "calls.duration + 0" not in hinted, hinted
    assert "|| ''" not in hinted, hinted
    monkeypatch.setattr(call_store, "DEMOTE_AT", 1)
    demoted = str(call_store.list_statements(q.filter, sort_by=q.sort_by, order=q.order, matching=5))
    assert "calls.duration + 0" in demoted or "|| ''" in demoted, demoted
    assert " + 0 DESC" not in demoted, demoted
    assert " + 0 ASC" not in demoted, demoted
