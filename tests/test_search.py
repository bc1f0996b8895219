"""search= on GET /conversation matches what was said (SQLite FTS5, PostgreSQL full-text)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete

from dispo.store import calls as call_store
from dispo.store.database import Database
from dispo.store.tables import calls
from tests.conftest import Org
from tests.importing import import_call, no_pending_jobs_left  # noqa: F401

pytestmark = pytest.mark.usefixtures("no_pending_jobs_left")

LIST = "/api/v1/conversation"


def _import(client: TestClient, *items: dict) -> list[str]:  # type: ignore[type-arg]
    data = client.post("/api/v1/conversation/import/batch", json={"calls": list(items)}).json()["data"]
    return [r["callId"] for r in data["results"]]


def _search(client: TestClient, **params: str) -> list[dict]:  # type: ignore[type-arg]
    body = client.get(LIST, params={"limit": 100, **params}).json()
    assert body["status"] is True, body
    return list(body["data"]["logs"])


def test_words_said_in_a_call_find_it_with_the_match_marked(client: TestClient) -> None:
    refund, brochure = _import(
        client,
        import_call(0, words="I would like a REFUND for the <broken> panel"),
        import_call(1, words="Can you send the brochure by email"),
    )
    logs = _search(client, search="refund panel")
    assert [log["callId"] for log in logs] == [refund]
    assert (
        logs[0]["snippet"] == "I would like a <mark>REFUND</mark> for the &lt;broken&gt; <mark>panel</mark>"
    )
    assert [log["callId"] for log in _search(client, search="Brochure")] == [brochure]
    assert _search(client, search="refund brochure") == []  # every word, in one message
    assert _search(client, search="refunds") == []  # whole words, no stemming (the same on both)


def test_numbers_and_call_ids_are_still_matched_as_before_without_a_snippet(client: TestClient) -> None:
    (call_id,) = _import(client, import_call(2))
    by_number = _search(client, search="+1415555")
    assert [log["callId"] for log in by_number] == [call_id]
    assert "snippet" not in by_number[0]  # Atoms' keys only, as before
    assert [log["callId"] for log in _search(client, search=call_id)] == [call_id]


def test_relevance_puts_the_best_match_first(client: TestClient) -> None:
    weak, strong, other = _import(
        client,
        import_call(3, words="About the refund I mentioned, there are many other things to discuss today"),
        import_call(4, words="refund refund refund"),
        import_call(5, words="nothing to see"),
    )
    newest_first = [log["callId"] for log in _search(client, search="refund")]
    assert newest_first == [strong, weak]
    ranked = _search(client, search="refund", sortBy="relevance")
    assert [log["callId"] for log in ranked] == [strong, weak]
    assert other not in newest_first


def test_search_combines_with_the_other_filters(client: TestClient) -> None:
    done, missed = _import(
        client,
        import_call(6, words="refund please"),
        import_call(7, words="refund please", status="no_answer"),
    )
    assert [log["callId"] for log in _search(client, search="refund", statusFilter="no_answer")] == [missed]
    body = client.get(LIST, params={"search": "refund", "limit": 1}).json()["data"]
    assert body["pagination"]["total"] == 2
    assert body["pagination"]["hasMore"] is True
    rest = client.get(
        LIST, params={"search": "refund", "limit": 1, "cursor": body["pagination"]["nextCursor"]}
    )
    assert [log["callId"] for log in rest.json()["data"]["logs"]] == [done]


def test_relevance_needs_search_words_and_pages_without_a_cursor(client: TestClient) -> None:
    r = client.get(LIST, params={"sortBy": "relevance"})
    assert r.status_code == 400
    assert "sortBy=relevance ranks calls by how well their transcript matches search" in r.json()["errors"][0]
    r = client.get(LIST, params={"sortBy": "relevance", "search": "refund", "cursor": "abc"})
    assert r.status_code == 400
    assert "not cursor" in r.json()["errors"][0]


def test_the_index_follows_appends_and_deletes(client: TestClient, db: Database, org: Org) -> None:
    (call_id,) = _import(client, import_call(8, words="hello there"))
    assert _search(client, search="zeppelin") == []
    with db.write() as conn:
        pk = conn.execute(calls.select().where(calls.c.call_id == call_id)).mappings().one()["pk"]
        call_store.append_transcript(
            conn, pk, [{"role": "user", "content": "a zeppelin overhead", "timestamp": None}]
        )
    assert [log["callId"] for log in _search(client, search="zeppelin")] == [call_id]
    with (
        db.write() as conn
    ):  # deleting the call deletes its messages (ON DELETE CASCADE), and their index entries
        conn.execute(delete(calls).where(calls.c.pk == pk))
    assert _search(client, search="zeppelin") == []
    if db.is_sqlite:
        with db.read() as conn:
            left = conn.exec_driver_sql(
                "SELECT count(*) FROM transcript_fts WHERE call_pk = ?", (pk,)
            ).scalar()
        assert left == 0


def test_other_organizations_calls_are_not_searched(
    client: TestClient, anon_client: TestClient, other_org: Org
) -> None:
    _import(client, import_call(9, words="secret refund"))
    theirs = anon_client.get(LIST, params={"search": "secret"}, headers=other_org.headers).json()["data"]
    assert theirs["logs"] == []
