"""Bad input answers 4xx in the envelope with a message that says what to do — never a 500."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dispo.api.app import create_app
from dispo.config import Settings
from dispo.store import orgs
from dispo.store.database import Database
from dispo.store.tables import api_keys
from tests.conftest import Org


def _assert_envelope(r: Any, status: int, *fragments: str) -> list[str]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] is False
    assert isinstance(body["errors"], list)
    assert body["errors"]
    assert all(isinstance(e, str) and e for e in body["errors"])
    text = " ".join(body["errors"])
    for fragment in fragments:
        assert fragment in text, text
    return list(body["errors"])


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"limit": 0}, "limit=0 is out of range"),
        ({"limit": 1_000_000}, "limit=1000000 is out of range"),
        ({"limit": "ten"}, "limit='ten' is not a whole number"),
        ({"page": 0}, "page=0 is out of range"),
        ({"page": "-3"}, "page=-3 is out of range"),
        ({"statusFilter": "done"}, "statusFilter has unknown value done"),
        ({"callTypes": "fax"}, "callTypes has unknown value fax"),
        ({"disconnectReasonFilter": "hung"}, "disconnectReasonFilter has unknown value hung"),
        ({"durationFilter": "10-20"}, "durationFilter has unknown value 10-20"),
        ({"agentIds": "not-an-id"}, "agentIds has malformed id not-an-id"),
        ({"campaignIds": "x,y"}, "campaignIds has malformed ids x, y"),
        ({"dateFrom": "2026-13-45"}, "dateFrom"),
        ({"dateTo": "whenever it suits"}, "dateTo='whenever it suits' is not a date"),
        ({"dateFrom": "2026-02-01", "dateTo": "2026-01-01"}, "swap them"),
        ({"minDuration": "abc"}, "minDuration='abc' is not a number"),
        ({"minDuration": "-5"}, "minDuration=-5 must be a number of seconds"),
        ({"minDuration": 90, "maxDuration": 30}, "minDuration (90) is above maxDuration (30)"),
        ({"sortBy": "price"}, "sortBy='price' is not a sort key"),
        ({"sortOrder": "sideways"}, "sortOrder='sideways' must be asc or desc"),
        ({"cursor": "garbage!!"}, "cursor is not one this server issued"),
        ({"status": "completed"}, "Unknown parameter status"),
        ({"search": "9" * 65}, "search is longer than 64"),
    ],
)
def test_list_rejects_bad_parameters(client: TestClient, params: dict[str, Any], fragment: str) -> None:
    _assert_envelope(client.get("/api/v1/conversation", params=params), 400, fragment)


def test_every_problem_is_reported_at_once(client: TestClient) -> None:
    errors = _assert_envelope(
        client.get("/api/v1/conversation", params={"limit": 0, "statusFilter": "x", "sortBy": "y"}), 400
    )
    assert len(errors) == 3


def test_cursor_with_another_sort_or_a_page_is_refused(client: TestClient, db: Database, org: Org) -> None:
    from tests.helpers import seed_calls

    seed_calls(db, org.id, 30)
    cursor = client.get("/api/v1/conversation").json()["data"]["pagination"]["nextCursor"]
    _assert_envelope(
        client.get("/api/v1/conversation", params={"cursor": cursor, "sortBy": "callDuration"}),
        400,
        "pass the same sortBy and sortOrder",
    )
    _assert_envelope(
        client.get("/api/v1/conversation", params={"cursor": cursor, "page": 3}), 400, "either page or cursor"
    )


@pytest.mark.parametrize(
    "call_id", ["CALL-1768807723178-4561d0", "nonsense", "6b0189e7dfa121cc9a4435f9", "CALL-1-zz", "%00"]
)
def test_unknown_or_malformed_call_ids_are_404(client: TestClient, call_id: str) -> None:
    _assert_envelope(client.get(f"/api/v1/conversation/{call_id}"), 404, "No call", "GET /conversation")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "callIds is required"),
        ({"callIds": []}, "callIds is empty"),
        ({"callIds": "CALL-1"}, "callIds is required: a list"),
        ({"callIds": [1, 2]}, "a list of call id strings"),
        ({"callIds": ["CALL-1"], "extra": 1}, "Unknown field extra"),
        ([1, 2], "request body"),
    ],
)
def test_search_rejects_bad_bodies(client: TestClient, body: Any, fragment: str) -> None:
    _assert_envelope(client.post("/api/v1/conversation/search", json=body), 400, fragment)


def test_invalid_json_is_a_clear_400(client: TestClient) -> None:
    r = client.post(
        "/api/v1/conversation/search", content=b"{callIds: [", headers={"Content-Type": "application/json"}
    )
    _assert_envelope(r, 400, "not valid JSON")


def test_unknown_route_and_method(client: TestClient) -> None:
    _assert_envelope(client.get("/api/v1/nothing-here"), 404, "No endpoint GET /api/v1/nothing-here", "/docs")
    _assert_envelope(client.put("/api/v1/conversation"), 405, "PUT is not allowed")


# ---------------------------------------------------------------------------------------------
# Authentication


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({}, "Missing API key"),
        ({"Authorization": "sk_abc"}, "Authorization must be 'Bearer sk_…'"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Authorization must be 'Bearer sk_…'"),
        ({"Authorization": "Bearer "}, "Authorization must be"),
        ({"Authorization": "Bearer pk_live_123"}, "keys start with 'sk_'"),
        ({"Authorization": "Bearer sk_not_a_real_key"}, "Unknown or revoked API key"),
    ],
)
def test_missing_or_bad_keys_are_401(anon_client: TestClient, headers: dict[str, str], fragment: str) -> None:
    for path in ("/api/v1/conversation", "/api/v1/agent", "/api/v1/conversation/CALL-1768807723178-4561d0"):
        _assert_envelope(anon_client.get(path, headers=headers), 401, fragment, "dispo keys create")


def _revoke(db: Database, org: Org) -> None:
    with db.write() as conn:
        key = orgs.list_keys(conn, org.id)[0]
        orgs.revoke_key(conn, key["id"])


def test_revoked_key_stops_working_at_once_without_the_cache(db: Database, org: Org, tmp_path: Path) -> None:
    client = TestClient(create_app(Settings(data_dir=tmp_path, auth_cache_seconds=0), db))
    assert client.get("/api/v1/conversation", headers=org.headers).status_code == 200
    _revoke(db, org)
    _assert_envelope(client.get("/api/v1/conversation", headers=org.headers), 401, "revoked")


def test_revoked_key_stops_working_when_the_cache_expires(db: Database, org: Org, tmp_path: Path) -> None:
    client = TestClient(create_app(Settings(data_dir=tmp_path, auth_cache_seconds=0.5), db))
    assert client.get("/api/v1/conversation", headers=org.headers).status_code == 200
    # Revoked from another process (the CLI), i.e. not through this process's orgs.revoke_key,
    # which would drop the key from this process's caches at once (tests/test_hostile_input.py).
    with db.write() as conn:
        conn.execute(api_keys.update().where(api_keys.c.org_id == org.id).values(revoked_at=1))
    # This server still trusts its cache for a moment...
    assert client.get("/api/v1/conversation", headers=org.headers).status_code == 200
    time.sleep(0.6)
    # ...and no longer once the entry expires.
    _assert_envelope(client.get("/api/v1/conversation", headers=org.headers), 401, "revoked")


def test_keys_are_stored_hashed(db: Database, org: Org) -> None:
    with db.read() as conn:
        rows = orgs.list_keys(conn, org.id)
    assert rows
    assert all(org.key not in str(dict(r).values()) for r in rows)
    assert rows[0]["key_hash"] == orgs.hash_key(org.key)
    assert org.key.startswith("sk_")
    assert len(org.key) > 40


def test_health_needs_no_key(anon_client: TestClient) -> None:
    body = anon_client.get("/health").json()
    assert body["status"] is True
    assert body["data"]["database"] in ("sqlite", "postgresql")


# ---------------------------------------------------------------------------------------------
# A broad sweep: garbage into every endpoint answers 4xx in the envelope.

GARBAGE: list[Any] = [
    None,
    0,
    -1,
    1e308,
    "",
    "x" * 5000,
    [],
    {},
    [None],
    {"a": {"b": [1]}},
    True,
    "☃",
    "\x00",
]


def test_no_garbage_body_causes_a_500(client: TestClient) -> None:
    agent_id = client.post("/api/v1/agent", json={"name": "Target"}).json()["data"]
    endpoints = [
        ("post", "/api/v1/conversation/search"),
        ("post", "/api/v1/agent"),
        ("patch", f"/api/v1/agent/{agent_id}"),
        ("post", f"/api/v1/agent/{agent_id}/post-call-analytics"),
    ]
    for method, path in endpoints:
        for value in GARBAGE:
            bodies = [
                value,
                {"callIds": value},
                {"name": value},
                {"dispositionMetrics": value},
                {"dispositionMetrics": [value]},
                {"summaryPrompt": value},
                {"language": value},
            ]
            for body in bodies:
                r = client.request(method, path, json=body)
                assert r.status_code < 500, (method, path, body, r.text)
                if r.status_code >= 400:
                    _assert_envelope(r, r.status_code)


def test_no_garbage_query_causes_a_500(client: TestClient) -> None:
    names = [
        "page",
        "limit",
        "agentIds",
        "statusFilter",
        "dateFrom",
        "dateTo",
        "minDuration",
        "cursor",
        "search",
        "sortBy",
        "durationFilter",
    ]
    for name in names:
        for value in ["", " ", "null", "-0", "1e400", "NaN", "inf", "☃", "%", "\x00", ",,,", "9" * 40]:
            r = client.get("/api/v1/conversation", params={name: value})
            assert r.status_code in (200, 400), (name, value, r.text)
            if r.status_code == 400:
                _assert_envelope(r, 400)
    for value in ["", "abc", "-1", "1e9", "99999999999"]:
        r = client.get("/api/v1/agent", params={"page": value, "offset": value})
        assert r.status_code in (200, 400), (value, r.text)
    for value in ["\x00", "%", "☃", "x" * 300]:
        r = client.get("/api/v1/agent", params={"search": value})
        assert r.status_code in (200, 400), (value, r.text)


def test_every_response_says_how_long_the_app_took(client: TestClient, anon_client: TestClient) -> None:
    for r in (
        client.get("/api/v1/conversation"),
        anon_client.get("/api/v1/conversation"),
        anon_client.get("/health"),
    ):
        timing = r.headers["server-timing"]
        assert re.fullmatch(r"app;dur=\d+\.\d{3}", timing), timing
