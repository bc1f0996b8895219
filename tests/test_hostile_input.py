"""Hostile input gets a 4xx and changes nothing (issue 8): the request guard, limits and timeouts.

Each value below was once stored and then made every read of the organization's lists fail
(orjson refuses to encode it), or was a 500 on its own. Now each is refused with a 4xx naming
the field, and the lists answer 200 afterwards.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import ValidationError

from dispo.analytics import jobs
from dispo.api.app import create_app
from dispo.api.guard import MAX_DEPTH, json_problem
from dispo.api.ratelimit import storage_url
from dispo.api.server import head_timeout_protocol, server_options
from dispo.config import Settings
from dispo.runtime.dialogue import ScriptedBrain
from dispo.runtime.runner import CallRunner
from dispo.store import orgs
from dispo.store.calls import Cursor
from dispo.store.database import Database
from dispo.telephony.simulated import SimulatedProvider
from tests.analytics_fakes import end_call, make_agent
from tests.conftest import Org, _free_port

API = "/api/v1"
LISTS = ("/conversation", "/agent", "/campaign", "/audience", "/product/phone-numbers")
CSV = "firstName,phoneNumber\nAsha,+14155550123\n"


def _raw(client: TestClient, method: str, path: str, text: str, **kwargs: Any) -> Any:
    """Send ``text`` as the JSON body exactly (httpx would re-encode it)."""
    headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
    return client.request(method, f"{API}{path}", content=text.encode(), headers=headers, **kwargs)


def _refused(response: Any, status: int, *fragments: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] is False
    assert body["errors"], body
    for fragment in fragments:
        assert fragment in body["errors"][0], body["errors"]


def _lists_answer(client: TestClient) -> None:
    """Every list of the organization still answers 200 with a JSON envelope."""
    for path in LISTS:
        response = client.get(f"{API}{path}")
        assert response.status_code == 200, (path, response.text)
        assert response.json()["status"] is True


@pytest.fixture
def live(db: Database, settings: Settings, org: Org) -> Iterator[TestClient]:
    runner = CallRunner(
        db,
        settings,
        brain_factory=lambda _p: ScriptedBrain(latency_ms=1),
        providers={"test": SimulatedProvider()},
    )
    with TestClient(create_app(settings, db, runner=runner), headers=org.headers) as c:
        yield c


def _agent(client: TestClient) -> str:
    response = client.post(f"{API}/agent", json={"name": "Target", "globalPrompt": "You sell solar panels."})
    assert response.status_code == 201, response.text
    return str(response.json()["data"])


def _audience(client: TestClient) -> str:
    response = client.post(
        f"{API}/audience",
        files={"file": ("contacts.csv", CSV.encode(), "text/csv")},
        data={"name": "Leads", "phoneNumberColumnName": "phoneNumber", "description": ""},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["_id"])


# ---------------------------------------------------------------------------------------------
# Values that cannot be served back

BIG = str(2**64)
DEEP = "[" * (MAX_DEPTH + 10) + "]" * (MAX_DEPTH + 10)

# (a JSON text of a value, what the refusal says)
BAD_VALUES = [
    (BIG, "64 bits"),
    (str(2**63), "64 bits"),
    ("-" + str(2**63 + 1), "64 bits"),
    ("9" * 5000, "64 bits"),
    ('"\\ud800"', "unpaired surrogate"),
    ('"ok \\udfff then"', "unpaired surrogate"),
    ('"\\u0000"', "NUL"),
    ("NaN", "finite"),
    ("Infinity", "finite"),
    ("1e400", "finite"),
    (DEEP, f"more than {MAX_DEPTH} levels"),
]


@pytest.mark.parametrize(("value", "fragment"), BAD_VALUES)
def test_values_orjson_cannot_encode_are_refused_everywhere(
    live: TestClient, value: str, fragment: str
) -> None:
    agent_id = _agent(live)
    audience_id = _audience(live)
    attempts = [
        (
            "POST",
            "/conversation/chat",
            f'{{"agentId": "{agent_id}", "variables": {{"n": {value}}}}}',
            "variables.n",
        ),
        (
            "POST",
            "/conversation/outbound",
            f'{{"agentId": "{agent_id}", "phoneNumber": "+14155550123", "variables": {{"n": {value}}}}}',
            "variables.n",
        ),
        ("POST", "/agent", f'{{"name": "A", "defaultVariables": {{"n": {value}}}}}', "defaultVariables.n"),
        ("POST", "/agent", f'{{"name": "A", "anyExtraField": {value}}}', "anyExtraField"),
        ("PATCH", f"/agent/{agent_id}", f'{{"description": {value}}}', "description"),
        (
            "POST",
            f"/audience/{audience_id}/members",
            f'{{"members": [{{"phoneNumber": "+14155550124", "note": {value}}}]}}',
            "members[0].note",
        ),
        ("POST", "/conversation/search", f'{{"callIds": [{value}]}}', "callIds[0]"),
    ]
    for method, path, text, field in attempts:
        response = _raw(live, method, path, text)
        expected = (fragment,) if fragment.startswith("more than") else (field, fragment)
        _refused(response, 400, *expected)
        _lists_answer(live)
    # Nothing was stored: one agent, as it was; one member; no call.
    agents = live.get(f"{API}/agent").json()["data"]
    assert [a["name"] for a in agents["agents"]] == ["Target"]
    assert live.get(f"{API}/audience/{audience_id}/members").json()["data"]["totalCount"] == 1
    assert live.get(f"{API}/conversation").json()["data"]["pagination"]["total"] == 0


def test_a_lone_surrogate_in_a_name_is_refused_and_named(client: TestClient) -> None:
    _refused(_raw(client, "POST", "/agent", '{"name": "\\ud800"}'), 400, "name", "surrogate")
    # In a field name too, shown escaped (the message itself must be encodable).
    _refused(_raw(client, "POST", "/agent", '{"name": "A", "x\\ud800": 1}'), 400, "field name")
    # A valid pair is fine: that is how JSON spells characters beyond the BMP.
    response = _raw(client, "POST", "/agent", '{"name": "Rocket \\ud83d\\ude80"}')
    assert response.status_code == 201, response.text
    _lists_answer(client)


def test_brackets_nested_beyond_the_parser_are_a_400_not_a_500(client: TestClient) -> None:
    for text in ("[" * 100_000, '{"a":' * 100_000, "[" * 100_000 + "]" * 100_000):
        _refused(_raw(client, "POST", "/agent", text), 400)
    _lists_answer(client)


def test_what_round_trips_is_accepted(client: TestClient) -> None:
    nested: Any = "bottom"
    for _ in range(MAX_DEPTH - 3):
        nested = {"n": nested}
    body = {"name": "Edges", "defaultVariables": {"max": 2**63 - 1, "min": -(2**63), "deep": nested}}
    response = client.post(f"{API}/agent", json=body)
    assert response.status_code < 500, response.text
    _lists_answer(client)


def test_json_problem_names_the_path() -> None:
    assert json_problem({"a": [1, {"b": 2**64}]}) is not None
    assert "a[1].b" in (json_problem({"a": [1, {"b": 2**64}]}) or "")
    assert json_problem({"a": [1, {"b": 2**63 - 1}], "c": 1.5, "d": "ok", "e": None, "f": True}) is None
    assert "the request body" in (json_problem(float("nan")) or "")


def test_invalid_json_and_invalid_utf8_are_clear_400s(client: TestClient) -> None:
    _refused(_raw(client, "POST", "/agent", "{name: ["), 400, "not valid JSON")
    response = client.post(
        f"{API}/agent", content=b'{"name": "\xff\xfe"}', headers={"Content-Type": "application/json"}
    )
    _refused(response, 400, "not valid JSON")


# ---------------------------------------------------------------------------------------------
# Cursors


@pytest.mark.parametrize(
    "payload",
    [
        '["createdAt","desc",9223372036854775808,1]',
        '["createdAt","desc",1,9223372036854775808]',
        '["createdAt","desc",' + "9" * 5000 + ",1]",
        '["createdAt","desc",NaN,1]',
        '["createdAt","desc",Infinity,1]',
        '["createdAt","desc",true,1]',
        "[" * 3000,
        '{"a":1,"b":2,"c":3,"d":4}',
        '"abcd"',
    ],
)
def test_cursors_that_do_not_decode_are_400(client: TestClient, payload: str) -> None:
    import base64

    token = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    response = client.get(f"{API}/conversation", params={"cursor": token})
    assert response.status_code == 400, response.text
    assert "cursor" in response.json()["errors"][0]
    _lists_answer(client)


def test_a_real_cursor_still_works(client: TestClient) -> None:
    token = Cursor("createdAt", "desc", 1_700_000_000_000, 5).encode()
    assert Cursor.decode(token).value == 1_700_000_000_000
    assert client.get(f"{API}/conversation", params={"cursor": token}).status_code == 200
    token = Cursor("callDuration", "asc", 12.5, 5).encode()
    assert (
        client.get(
            f"{API}/conversation", params={"cursor": token, "sortBy": "callDuration", "sortOrder": "asc"}
        ).status_code
        == 200
    )


# ---------------------------------------------------------------------------------------------
# Body size


def test_a_body_over_the_cap_is_413_before_it_is_read(anon_client: TestClient, client: TestClient) -> None:
    big = b'{"name": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    for c in (anon_client, client):
        response = c.post(f"{API}/agent", content=big, headers={"Content-Type": "application/json"})
        _refused(response, 413, "larger than 1 MiB", "DISPO_MAX_BODY_BYTES")
        assert response.headers["connection"] == "close"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap is enforced while it streams
        yield b'{"name": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    response = client.post(f"{API}/agent", content=chunks(), headers={"Content-Type": "application/json"})
    _refused(response, 413, "larger than")
    _lists_answer(client)


def test_no_key_no_body_read(anon_client: TestClient) -> None:
    # Under the cap but without a key: 401, and the body is not read (nor parsed).
    response = anon_client.post(
        f"{API}/agent", content=b"[" * 500_000, headers={"Content-Type": "application/json"}
    )
    _refused(response, 401, "Missing API key")


def test_a_csv_upload_may_be_larger_than_a_json_body(db: Database, org: Org, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, max_body_bytes=2048, max_upload_bytes=64 * 1024)
    with TestClient(create_app(settings, db), headers=org.headers) as client:
        rows = "".join(f"Asha,+1415555{i:04d}\n" for i in range(200))
        response = client.post(
            f"{API}/audience",
            files={"file": ("contacts.csv", ("firstName,phoneNumber\n" + rows).encode(), "text/csv")},
            data={"name": "Leads", "phoneNumberColumnName": "phoneNumber", "description": ""},
        )
        assert response.status_code == 200, response.text
        _refused(client.post(f"{API}/agent", json={"name": "x" * 4000}), 413, "2048 bytes")


# ---------------------------------------------------------------------------------------------
# Rate limits


def test_rate_limit_per_key_answers_429_with_retry_after(
    db: Database, org: Org, other_org: Org, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, rate_limit="3/minute")
    with TestClient(create_app(settings, db)) as client:
        for _ in range(3):
            assert client.get(f"{API}/agent", headers=org.headers).status_code == 200
        response = client.get(f"{API}/agent", headers=org.headers)
        _refused(response, 429, "Too many requests with this API key", "3 per 1 minute")
        assert 1 <= int(response.headers["retry-after"]) <= 60
        # Another key is counted apart; /health is never limited.
        assert client.get(f"{API}/agent", headers=other_org.headers).status_code == 200
        assert all(client.get("/health").status_code == 200 for _ in range(5))


def test_rate_limit_per_address_counts_bad_keys_too(db: Database, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, rate_limit_address="5/minute")
    with TestClient(create_app(settings, db)) as client:
        for i in range(5):
            headers = {"Authorization": f"Bearer sk_guess{i}"}
            assert client.get(f"{API}/conversation", headers=headers).status_code == 401
        response = client.get(f"{API}/conversation", headers={"Authorization": "Bearer sk_another"})
        _refused(response, 429, "from this address")
        assert "retry-after" in response.headers


def test_expensive_operations_have_a_tighter_limit(db: Database, org: Org, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, rate_limit_expensive="2/minute")
    runner = CallRunner(
        db,
        settings,
        brain_factory=lambda _p: ScriptedBrain(latency_ms=1),
        providers={"test": SimulatedProvider()},
    )
    with TestClient(create_app(settings, db, runner=runner), headers=org.headers) as client:
        agent_id = _agent(client)
        for _ in range(2):
            assert client.post(f"{API}/conversation/chat", json={"agentId": agent_id}).status_code == 200
        response = client.post(f"{API}/conversation/chat", json={"agentId": agent_id})
        _refused(response, 429, "start calls, chats or re-analysis")
        assert "retry-after" in response.headers
        response = client.post(
            f"{API}/conversation/outbound", json={"agentId": agent_id, "phoneNumber": "+14155550123"}
        )
        assert response.status_code == 429
        response = client.post(
            f"{API}/conversation/reanalyze", json={"callIds": ["CALL-1768807723178-4561d0"]}
        )
        assert response.status_code == 429
        # Cheap requests are still fine.
        assert client.get(f"{API}/agent").status_code == 200


def test_limits_can_be_turned_off_and_bad_ones_are_refused_at_start(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, rate_limit="off", rate_limit_expensive="0", rate_limit_address="")
    assert settings.rate_limit == "off"
    with pytest.raises(ValidationError, match="is not a rate limit"):
        Settings(data_dir=tmp_path, rate_limit="lots")
    assert Settings(data_dir=tmp_path, rate_limit="10/second;100/minute").rate_limit == "10/second;100/minute"


def test_benchmarks_turn_the_limits_off() -> None:
    text = (Path(__file__).resolve().parent.parent / "benchmarks" / "server.py").read_text()
    for name in ("rate_limit", "rate_limit_expensive", "rate_limit_address"):
        assert f'{name}="off"' in text


# ---------------------------------------------------------------------------------------------
# Re-analysis: one request queues a bounded number of calls


def test_reanalyze_is_capped_by_the_setting(db: Database, org: Org, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, reanalyze_max=2)
    agent_id = make_agent(db, org.id)
    pks = [end_call(db, org.id, agent_id) for _ in range(3)]
    with TestClient(create_app(settings, db), headers=org.headers) as client:
        response = client.post(f"{API}/conversation/reanalyze", json={"filters": {"agentIds": [agent_id]}})
        _refused(response, 400, "more than 2 calls", "narrow the filters", "dispo analytics rerun")
        response = client.post(
            f"{API}/conversation/reanalyze", json={"callIds": [f"CALL-{pk}" for pk in pks]}
        )
        _refused(response, 400, "at most 2")
    with jobs.make_huey(settings).storage.conn as conn:  # nothing was queued
        assert conn.execute("SELECT count(*) FROM task").fetchone()[0] == 0


# ---------------------------------------------------------------------------------------------
# LIKE wildcards are literal


def test_search_treats_percent_and_underscore_literally(client: TestClient) -> None:
    for name in ("100% sure", "100 percent", "a_b agent", "axb agent", "back\\slash"):
        assert client.post(f"{API}/agent", json={"name": name}).status_code == 201

    def names(search: str) -> list[str]:
        response = client.get(f"{API}/agent", params={"search": search})
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        items = data if isinstance(data, list) else next(v for v in data.values() if isinstance(v, list))
        return sorted(a["name"] for a in items)

    assert names("%") == ["100% sure"]
    assert names("_") == ["a_b agent"]
    assert names("a_b") == ["a_b agent"]
    assert names("\\") == ["back\\slash"]
    assert names("100") == ["100 percent", "100% sure"]


def test_member_search_treats_percent_literally(client: TestClient) -> None:
    csv = "firstName,note,phoneNumber\nAsha,50% off,+14155550123\nBo,fifty,+14155550124\n"
    response = client.post(
        f"{API}/audience",
        files={"file": ("c.csv", csv.encode(), "text/csv")},
        data={"name": "Leads", "phoneNumberColumnName": "phoneNumber", "description": ""},
    )
    assert response.status_code == 200, response.text
    audience_id = response.json()["data"]["_id"]
    response = client.get(f"{API}/audience/{audience_id}/members", params={"search": "%"})
    assert response.status_code == 200, response.text
    assert "50% off" in response.text
    assert "fifty" not in response.text


# ---------------------------------------------------------------------------------------------
# Revocation


def test_a_key_revoked_in_process_is_refused_at_once(db: Database, org: Org, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.auth_cache_seconds <= 1
    with TestClient(create_app(settings.model_copy(update={"auth_cache_seconds": 1.0}), db)) as client:
        assert client.get(f"{API}/conversation", headers=org.headers).status_code == 200  # cached now
        with db.write() as conn:
            orgs.revoke_key(conn, orgs.list_keys(conn, org.id)[0]["id"])
        _refused(client.get(f"{API}/conversation", headers=org.headers), 401, "revoked")


def test_the_key_cache_is_at_most_a_second(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, auth_cache_seconds=5)


# ---------------------------------------------------------------------------------------------
# File modes


def test_data_files_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir)
    db = Database(settings.effective_database_url)
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    with db.read() as conn:
        conn.exec_driver_sql("SELECT * FROM t")
        huey = jobs.make_huey(settings)
        huey.storage.enqueue(b"x", 0)
        created = sorted(p.name for p in data_dir.iterdir())
        for path in data_dir.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, (path.name, oct(path.stat().st_mode))
    assert {"dispo.db", "dispo.db-wal", "queue.db"} <= set(created)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    db.dispose()


# ---------------------------------------------------------------------------------------------
# A real server: half-sent requests


@pytest.fixture(params=["auto", "h11"])
def guarded_server(
    request: pytest.FixtureRequest, db: Database, tmp_path: Path
) -> Iterator[tuple[int, Settings]]:
    """uvicorn as `dispo serve` runs it (with either HTTP parser), with short timeouts."""
    settings = Settings(
        data_dir=tmp_path, request_header_timeout_seconds=0.5, request_body_timeout_seconds=0.5
    )
    runner = CallRunner(
        db,
        settings,
        brain_factory=lambda _p: ScriptedBrain(latency_ms=1),
        providers={"test": SimulatedProvider()},
    )
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings, db, runner=runner),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        **{**server_options(settings), "http": head_timeout_protocol(0.5, request.param)},
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
        time.sleep(0.02)
    yield port, settings
    server.should_exit = True
    thread.join(timeout=10)


def _read_all(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    start = time.monotonic()
    sock.settimeout(limit)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data, time.monotonic() - start
        data += chunk


def test_a_half_sent_head_is_answered_408_and_closed(guarded_server: tuple[int, Settings]) -> None:
    port, _ = guarded_server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /api/v1/conversation HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        data, took = _read_all(sock, 5)
    assert data.startswith(b"HTTP/1.1 408"), data
    assert b"did not all arrive" in data
    assert 0.3 < took < 3
    # A connection that never sends anything is closed too.
    with socket.create_connection(("127.0.0.1", port)) as sock:
        data, took = _read_all(sock, 5)
    assert data == b""
    assert took < 3


def test_many_half_sent_requests_do_not_hold_the_server(guarded_server: tuple[int, Settings]) -> None:
    port, _ = guarded_server
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
    try:
        for s in socks:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        time.sleep(1.5)
        for s in socks:
            data, _ = _read_all(s, 3)
            assert data.startswith(b"HTTP/1.1 408"), data
    finally:
        for s in socks:
            s.close()
    with socket.create_connection(("127.0.0.1", port)) as sock:  # still serving
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data, _ = _read_all(sock, 5)
    assert data.startswith(b"HTTP/1.1 200"), data


def test_keep_alive_requests_are_unaffected(guarded_server: tuple[int, Settings]) -> None:
    port, _ = guarded_server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(2):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.settimeout(5)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            time.sleep(0.8)  # idle longer than the head timeout between requests: keep-alive's business


def test_a_half_sent_body_is_408(guarded_server: tuple[int, Settings], org: Org) -> None:
    port, _ = guarded_server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /api/v1/agent HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + org.key.encode() + b'\r\nContent-Length: 100\r\n\r\n{"name": '
        )
        data, took = _read_all(sock, 5)
    assert data.startswith(b"HTTP/1.1 408"), data
    assert b"did not arrive within" in data
    assert took < 3


def test_50_mb_without_a_key_is_refused_at_once(guarded_server: tuple[int, Settings]) -> None:
    port, _ = guarded_server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        start = time.monotonic()
        sock.sendall(
            b"POST /api/v1/agent HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 52428800\r\n\r\n" + b"x" * 65536
        )
        data, _ = _read_all(sock, 5)
        took = time.monotonic() - start
    assert data.startswith(b"HTTP/1.1 413"), data
    assert took < 1.5


def test_a_websocket_outlives_the_head_timeout(
    guarded_server: tuple[int, Settings], db: Database, org: Org
) -> None:
    from websockets.sync.client import connect

    port, _ = guarded_server
    agent_id = make_agent(db, org.id)
    url = f"ws://127.0.0.1:{port}/api/v1/conversation/chat/ws?apiKey={org.key}&agentId={agent_id}"
    with connect(url) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "started"
        while json.loads(ws.recv(timeout=5)).get("role") != "agent":
            pass
        time.sleep(1.0)  # twice the head timeout
        ws.send(json.dumps({"type": "message", "content": "ok", "extra": 2**64}))
        frame = json.loads(ws.recv(timeout=5))
        assert frame["type"] == "error"
        assert "64 bits" in frame["errors"][0]
        ws.send(json.dumps({"type": "message", "content": "Yes, tell me more."}))
        assert json.loads(ws.recv(timeout=5))["type"] in ("message", "ended")


def test_the_protocol_class_is_cached() -> None:
    assert head_timeout_protocol(1.0) is head_timeout_protocol(1.0)


def test_rate_limits_are_shared_through_the_queues_redis(db: Database, org: Org, tmp_path: Path) -> None:
    url = os.environ.get("DISPO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception as exc:
        pytest.skip(f"Redis not reachable at {url} ({type(exc).__name__}); set DISPO_TEST_REDIS_URL")
    settings = Settings(
        data_dir=tmp_path, queue_url=f"{url}?queue=hostile", rate_limit="2/minute", rate_limit_address="off"
    )
    assert storage_url(settings) == url
    # Two apps (two server processes) count against the same limit.
    with (
        TestClient(create_app(settings, db), headers=org.headers) as one,
        TestClient(create_app(settings, db), headers=org.headers) as two,
    ):
        assert one.get(f"{API}/agent").status_code == 200
        assert two.get(f"{API}/agent").status_code == 200
        _refused(one.get(f"{API}/agent"), 429, "with this API key")


def test_an_unreachable_limit_store_lets_requests_through(db: Database, org: Org, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, rate_limit="1/minute", rate_limit_storage="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings, db), headers=org.headers) as client:
        assert [client.get(f"{API}/agent").status_code for _ in range(3)] == [200, 200, 200]


def test_routes_take_the_body_the_guard_parsed() -> None:
    """The guard parses and checks each JSON body once; the route reads that value, not the bytes again."""
    import asyncio

    from starlette.requests import Request

    from dispo.api.bodies import read_json
    from dispo.api.guard import JSON_BODY_SCOPE_KEY

    checked = {"name": "parsed by the guard"}
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/agent",
        "headers": [(b"content-type", b"application/json")],
        JSON_BODY_SCOPE_KEY: checked,
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b'{"name": "the raw bytes"}', "more_body": False}

    assert asyncio.run(read_json(Request(scope, receive))) is checked
    del scope[JSON_BODY_SCOPE_KEY]  # no guard in front: the same parser and checks run here
    assert asyncio.run(read_json(Request(scope, receive))) == {"name": "the raw bytes"}
