"""dispo.sdk: the requests it builds (mock transport), the errors it raises, and the real server.

The first half runs the SDK against ``httpx.MockTransport`` and checks the wire: paths, query
parameters, headers and bodies, the exception for every status, configuration precedence and
cursor-following. The second half runs it against a live Dispo (SQLite and PostgreSQL) seeded
with synthetic calls. The last part runs every Python sample of docs/sdk.md.
"""

from __future__ import annotations

import gc
import inspect
import io
import json
import re
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import smallestai.atoms.atoms_client as official_atoms
import smallestai.atoms.audience as official_audience
import smallestai.atoms.call as official_call
import smallestai.atoms.campaign as official_campaign
from smallestai.atoms.configuration import Configuration
from smallestai.atoms.models import AgentIdPatchRequest, CreateAgentRequest

import dispo.sdk
from dispo.sdk import (
    DEFAULT_BASE_URL,
    AtomsClient,
    Audience,
    AuthenticationError,
    BadRequestError,
    Call,
    Campaign,
    ConflictError,
    DispoAPIError,
    DispoConnectionError,
    DispoSDKError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDict,
    ServerError,
)
from dispo.store import synthetic
from dispo.store.database import Database
from dispo.timeutil import ms_to_iso

if TYPE_CHECKING:
    from tests.conftest import LiveServer, Org

BASE = "http://dispo.test/api/v1"
KEY = "sk_test_key"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "sdk.md"
ENV_VARS = ("DISPO_BASE_URL", "DISPO_API_KEY", "SMALLEST_BASE_URL", "SMALLEST_API_KEY")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test depends on the environment it runs in."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


# ---------------------------------------------------------------------------------------------
# A scripted server


class FakeAPI:
    """An httpx handler: records every request, answers with queued responses, then ``default``."""

    def __init__(self, *responses: httpx.Response, default: Any = None) -> None:
        self.requests: list[httpx.Request] = []
        self.responses = list(responses)
        self.default = {"status": True, "data": default if default is not None else {}}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.responses.pop(0) if self.responses else httpx.Response(200, json=self.default)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def body(self, i: int = -1) -> Any:
        return json.loads(self.requests[i].content)


def envelope(data: Any, status_code: int = 200) -> httpx.Response:
    return httpx.Response(status_code, json={"status": True, "data": data})


def failure(status_code: int, *errors: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status_code, json={"status": False, "errors": list(errors)}, headers=headers)


@pytest.fixture
def api() -> FakeAPI:
    return FakeAPI()


@pytest.fixture
def call(api: FakeAPI) -> Iterator[Call]:
    with Call(BASE, KEY, transport=api.transport) as c:
        yield c


@pytest.fixture
def atoms(api: FakeAPI) -> Iterator[AtomsClient]:
    with AtomsClient(BASE, KEY, transport=api.transport) as c:
        yield c


def params(request: httpx.Request) -> dict[str, str]:
    return dict(request.url.params)


# ---------------------------------------------------------------------------------------------
# Call: the requests


def test_get_calls_sends_what_the_official_sdk_sends(call: Call, api: FakeAPI) -> None:
    call.get_calls()
    request = api.last
    assert request.method == "GET"
    assert str(request.url).split("?")[0] == f"{BASE}/conversation"
    assert params(request) == {"page": "1", "limit": "10"}
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["accept"] == "application/json"
    assert request.headers["user-agent"].startswith("dispo-sdk/")


def test_get_calls_maps_the_official_arguments(call: Call, api: FakeAPI) -> None:
    call.get_calls("a" * 24, "b" * 24, 3, 25, "completed", "telephony_outbound", "+916366821717")
    assert params(api.last) == {
        "page": "3",
        "limit": "25",
        "agentIds": "a" * 24,
        "campaignIds": "b" * 24,
        "statusFilter": "completed",
        "callTypes": "telephony_outbound",
        "search": "+916366821717",
    }


def test_get_calls_maps_dispo_filters_lists_and_dates(call: Call, api: FakeAPI) -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    call.get_calls(
        agent_id=["a" * 24, "c" * 24],
        status=("failed", "no_answer"),
        call_type=["telephony_inbound", "chat"],
        disconnect_reason=["user_hangup", "timeout"],
        date_from=datetime(2026, 1, 19, 7, 28, 43, tzinfo=ist),
        date_to=date(2026, 1, 31),
        duration_filter=["0-30", "5+"],
        min_duration=0,
        max_duration=90.5,
        sort_by="callDuration",
        sort_order="asc",
    )
    assert params(api.last) == {
        "page": "1",
        "limit": "10",
        "agentIds": f"{'a' * 24},{'c' * 24}",
        "statusFilter": "failed,no_answer",
        "callTypes": "telephony_inbound,chat",
        "disconnectReasonFilter": "user_hangup,timeout",
        "dateFrom": "2026-01-19T07:28:43+05:30",
        "dateTo": "2026-01-31",
        "durationFilter": "0-30,5+",
        "minDuration": "0",
        "maxDuration": "90.5",
        "sortBy": "callDuration",
        "sortOrder": "asc",
    }
    # "+" must survive the query string, or the server would read a space.
    assert "dateFrom=2026-01-19T07%3A28%3A43%2B05%3A30" in str(api.last.url)


def test_get_calls_sends_naive_datetimes_and_strings_as_given(call: Call, api: FakeAPI) -> None:
    call.get_calls(date_from=datetime(2026, 1, 19, 7, 0), date_to="7 days ago")
    assert params(api.last)["dateFrom"] == "2026-01-19T07:00:00"
    assert params(api.last)["dateTo"] == "7 days ago"


def test_get_calls_cursor_replaces_page(call: Call, api: FakeAPI) -> None:
    call.get_calls(page=4, limit=50, cursor="WyJjcmVhdGVkQXQiXQ")
    assert params(api.last) == {"limit": "50", "cursor": "WyJjcmVhdGVkQXQiXQ"}


def test_get_calls_leaves_out_empty_filters(call: Call, api: FakeAPI) -> None:
    call.get_calls(agent_id="", status=[], search=None)
    assert params(api.last) == {"page": "1", "limit": "10"}


def test_get_calls_refuses_values_it_cannot_send(call: Call) -> None:
    with pytest.raises(TypeError, match="minDuration"):
        call.get_calls(min_duration=object())  # type: ignore[arg-type]


def test_get_call_quotes_the_id_into_one_path_segment(call: Call, api: FakeAPI) -> None:
    call.get_call("CALL-1768807723178-4561d0")
    assert api.last.url.raw_path == b"/api/v1/conversation/CALL-1768807723178-4561d0"
    call.get_call("../agent/x")
    assert api.last.url.raw_path == b"/api/v1/conversation/..%2Fagent%2Fx"


def test_search_calls_posts_the_ids(call: Call, api: FakeAPI) -> None:
    call.search_calls(["CALL-1768807723178-4561d0", "CALL-1768807723177-4561cd"])
    assert api.last.method == "POST"
    assert api.last.url.path == "/api/v1/conversation/search"
    assert api.last.headers["content-type"] == "application/json"
    assert api.body() == {"callIds": ["CALL-1768807723178-4561d0", "CALL-1768807723177-4561cd"]}


def test_post_call_config_paths_and_bodies(call: Call, api: FakeAPI) -> None:
    agent_id = "696e655577e1d88ff54b4fbf"
    call.get_post_call_config(agent_id)
    assert (api.last.method, api.last.url.path) == ("GET", f"/api/v1/agent/{agent_id}/post-call-analytics")
    metrics = [
        {
            "identifier": "user_name",
            "dispositionMetricPrompt": "Name?",
            "dispositionValues": {"type": "STRING"},
        }
    ]
    call.set_post_call_config(agent_id, "Summarize.", metrics)
    assert (api.last.method, api.last.url.path) == ("POST", f"/api/v1/agent/{agent_id}/post-call-analytics")
    assert api.body() == {"summaryPrompt": "Summarize.", "dispositionMetrics": metrics}
    call.set_post_call_config(agent_id, summary_prompt="Only this.")
    assert api.body() == {"summaryPrompt": "Only this."}
    call.set_post_call_config(agent_id, disposition_metrics=[])
    assert api.body() == {"dispositionMetrics": []}


def test_responses_are_dicts_with_attributes(call: Call, api: FakeAPI) -> None:
    api.responses.append(envelope({"logs": [], "pagination": {"total": 0}}))
    resp = call.get_calls()
    assert isinstance(resp, dict)
    assert resp == {"status": True, "data": {"logs": [], "pagination": {"total": 0}}}
    assert resp.status is True
    assert resp.data is resp["data"]
    assert json.loads(json.dumps(resp)) == resp
    assert ResponseDict().data is None
    assert ResponseDict().status is False


# ---------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("status_code", "exc_type"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, BadRequestError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServerError),
        (418, DispoAPIError),
    ],
)
def test_each_status_raises_its_exception_with_the_server_text(
    call: Call, api: FakeAPI, status_code: int, exc_type: type[DispoAPIError]
) -> None:
    response = failure(status_code, "First problem: fix it like this.", "Second problem.")
    api.responses.append(response)
    with pytest.raises(exc_type) as info:
        call.get_call("CALL-1768807723178-4561d0")
    exc = info.value
    assert type(exc) is exc_type
    assert exc.status_code == status_code
    assert exc.errors == ["First problem: fix it like this.", "Second problem."]
    assert exc.response is response
    assert str(exc).startswith(f"{status_code} ")
    assert "First problem: fix it like this.; Second problem." in str(exc)


def test_rate_limit_error_reads_retry_after(call: Call, api: FakeAPI) -> None:
    api.responses.append(failure(429, "Slow down.", headers={"Retry-After": "7"}))
    with pytest.raises(RateLimitError) as info:
        call.get_calls()
    assert info.value.retry_after == 7.0
    api.responses.append(failure(429, "Slow down."))
    with pytest.raises(RateLimitError) as info:
        call.get_calls()
    assert info.value.retry_after is None


def test_an_error_without_the_envelope_keeps_the_response_text(call: Call, api: FakeAPI) -> None:
    api.responses.append(httpx.Response(502, text="<html>Bad gateway</html>"))
    with pytest.raises(ServerError) as info:
        call.get_calls()
    assert info.value.errors == ["<html>Bad gateway</html>"]
    api.responses.append(httpx.Response(404, json={"detail": "Not Found"}))
    with pytest.raises(NotFoundError, match="Not Found"):
        call.get_calls()


def test_a_success_that_is_not_json_raises(call: Call, api: FakeAPI) -> None:
    api.responses.append(httpx.Response(200, text="hello"))
    with pytest.raises(DispoAPIError, match="not JSON"):
        call.get_calls()


@pytest.mark.parametrize("error", [httpx.ConnectError("refused"), httpx.ReadTimeout("too slow")])
def test_transport_failures_raise_dispo_connection_error(error: httpx.TransportError) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    with (
        Call(BASE, KEY, transport=httpx.MockTransport(handler)) as c,
        pytest.raises(DispoConnectionError) as info,
    ):
        c.get_calls()
    assert f"{BASE}/conversation" in str(info.value)
    assert info.value.__cause__ is error


def test_the_exception_tree() -> None:
    for exc_type in (
        BadRequestError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        ConflictError,
        RateLimitError,
        ServerError,
    ):
        assert issubclass(exc_type, DispoAPIError)
    assert issubclass(DispoAPIError, DispoSDKError)
    assert issubclass(DispoConnectionError, DispoSDKError)
    assert not issubclass(DispoConnectionError, DispoAPIError)
    tree = dispo.sdk._errors.__doc__ or ""
    for name in dispo.sdk._errors.__all__:
        assert name in tree, f"{name} is missing from the tree in _errors.py's docstring"


# ---------------------------------------------------------------------------------------------
# Configuration


@pytest.mark.parametrize(
    ("env", "argument", "expected"),
    [
        ({}, None, DEFAULT_BASE_URL),
        ({"SMALLEST_BASE_URL": "http://smallest/api/v1"}, None, "http://smallest/api/v1"),
        ({"DISPO_BASE_URL": "http://dispo/api/v1/"}, None, "http://dispo/api/v1"),
        (
            {"DISPO_BASE_URL": "http://dispo/api/v1", "SMALLEST_BASE_URL": "http://smallest/api/v1"},
            None,
            "http://dispo/api/v1",
        ),
        ({"DISPO_BASE_URL": "http://dispo/api/v1"}, "http://arg/api/v1", "http://arg/api/v1"),
    ],
)
def test_base_url_precedence(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], argument: str | None, expected: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    api = FakeAPI()
    with Call(argument, KEY, transport=api.transport) as c:
        assert c.base_url == expected
        c.get_calls()
    assert str(api.last.url).startswith(f"{expected}/conversation?")


@pytest.mark.parametrize(
    ("env", "argument", "expected"),
    [
        ({"SMALLEST_API_KEY": "sk_smallest"}, None, "Bearer sk_smallest"),
        ({"DISPO_API_KEY": "sk_dispo", "SMALLEST_API_KEY": "sk_smallest"}, None, "Bearer sk_dispo"),
        ({"DISPO_API_KEY": "sk_dispo", "SMALLEST_API_KEY": "sk_smallest"}, "sk_arg", "Bearer sk_arg"),
        ({}, None, None),
    ],
)
def test_api_key_precedence(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], argument: str | None, expected: str | None
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    api = FakeAPI()
    with Call(BASE, argument, transport=api.transport) as c:
        c.get_calls()
    assert api.last.headers.get("authorization") == expected


def test_atoms_client_shares_its_configuration_and_pool(api: FakeAPI) -> None:
    client = AtomsClient(BASE, KEY, transport=api.transport)
    for manager, cls in ((client.call, Call), (client.audience, Audience), (client.campaign, Campaign)):
        assert type(manager) is cls
        assert (manager.base_url, manager.api_key) == (BASE, KEY)
        assert manager._http is client._http
    client.call.get_calls()
    client.audience.list()
    client.campaign.list()
    assert [r.url.path for r in api.requests] == [
        "/api/v1/conversation",
        "/api/v1/audience",
        "/api/v1/campaign",
    ]
    call = client.call
    del client
    gc.collect()
    call.get_calls()  # the pool lives as long as a manager does
    assert len(api.requests) == 4


def test_close_leaves_a_borrowed_http_client_open(api: FakeAPI) -> None:
    http = httpx.Client(transport=api.transport)
    with Call(BASE, KEY, http_client=http) as c:
        c.get_calls()
    assert not http.is_closed
    http.close()
    with pytest.raises(ValueError, match="either transport or http_client"):
        Call(BASE, KEY, transport=api.transport, http_client=httpx.Client())


def test_repr_shows_the_base_url_not_the_key(call: Call) -> None:
    assert repr(call) == f"Call(base_url='{BASE}')"
    assert KEY not in repr(call)


# ---------------------------------------------------------------------------------------------
# iter_calls


def page(ids: list[str], *, has_more: bool, cursor: str | None, page_no: int | None = None) -> httpx.Response:
    return envelope(
        {
            "logs": [{"callId": i} for i in ids],
            "pagination": {
                "total": 7,
                "page": page_no,
                "limit": 3,
                "hasMore": has_more,
                "nextCursor": cursor,
            },
        }
    )


def test_iter_calls_follows_next_cursor(call: Call, api: FakeAPI) -> None:
    api.responses += [
        page(["c1", "c2", "c3"], has_more=True, cursor="cur1", page_no=1),
        page(["c4", "c5", "c6"], has_more=True, cursor="cur2"),
        page(["c7"], has_more=False, cursor=None),
    ]
    got = [log["callId"] for log in call.iter_calls(status="completed", date_from="2026-01-01", page_size=3)]
    assert got == ["c1", "c2", "c3", "c4", "c5", "c6", "c7"]
    sent = [params(r) for r in api.requests]
    common = {"limit": "3", "statusFilter": "completed", "dateFrom": "2026-01-01"}
    assert sent == [{**common, "page": "1"}, {**common, "cursor": "cur1"}, {**common, "cursor": "cur2"}]


def test_iter_calls_falls_back_to_page_numbers_without_cursors(call: Call, api: FakeAPI) -> None:
    api.responses += [
        page(["c1", "c2", "c3"], has_more=True, cursor=None, page_no=1),
        page(["c4"], has_more=False, cursor=None, page_no=2),
    ]
    assert [log["callId"] for log in call.iter_calls(page_size=3)] == ["c1", "c2", "c3", "c4"]
    assert [params(r)["page"] for r in api.requests] == ["1", "2"]


def test_iter_calls_stops_on_an_empty_page(call: Call, api: FakeAPI) -> None:
    api.responses.append(page([], has_more=True, cursor="cur1"))
    assert list(call.iter_calls()) == []
    assert len(api.requests) == 1


def test_iter_calls_is_lazy(call: Call, api: FakeAPI) -> None:
    api.responses.append(page(["c1"], has_more=True, cursor="cur1"))
    calls = call.iter_calls()
    assert api.requests == []
    assert next(calls)["callId"] == "c1"
    assert len(api.requests) == 1


# ---------------------------------------------------------------------------------------------
# AtomsClient, Audience, Campaign: the requests


def test_new_agent_posts_the_official_body_and_returns_data_both_ways(
    atoms: AtomsClient, api: FakeAPI
) -> None:
    api.responses.append(envelope("696ddd281ea16a73cb8aafbe", 201))
    agent = atoms.new_agent(name="Sales Agent", prompt="You are a sales agent.", description="Testing")
    assert (api.last.method, api.last.url.path) == ("POST", "/api/v1/agent")
    assert api.body() == {
        "name": "Sales Agent",
        "description": "Testing",
        "backgroundSound": "",
        "globalPrompt": "You are a sales agent.",
    }
    assert agent.data == agent["data"] == "696ddd281ea16a73cb8aafbe"
    atoms.new_agent("Bare", kb_id="k" * 24, background_sound="office")
    assert api.body() == {
        "name": "Bare",
        "description": "",
        "backgroundSound": "office",
        "globalKnowledgeBaseId": "k" * 24,
    }


def test_create_and_update_agent_take_dicts_or_official_models(atoms: AtomsClient, api: FakeAPI) -> None:
    atoms.create_agent({"name": "A", "language": "hi"})
    assert api.body() == {"name": "A", "language": "hi"}
    atoms.create_agent(CreateAgentRequest(name="B", global_prompt="Be brief."))
    assert api.body() == {"name": "B", "slmModel": "electron", "globalPrompt": "Be brief."}
    atoms.update_agent("a" * 24, {"description": "New"})
    assert (api.last.method, api.last.url.path) == ("PATCH", f"/api/v1/agent/{'a' * 24}")
    assert api.body() == {"description": "New"}
    atoms.update_agent(id="a" * 24, agent_id_patch_request=AgentIdPatchRequest(name="C"))
    assert api.body() == {"name": "C", "slmModel": "electron"}


def test_agent_reads_and_archive(atoms: AtomsClient, api: FakeAPI) -> None:
    atoms.get_agents()
    assert (api.last.url.path, params(api.last)) == ("/api/v1/agent", {})
    atoms.get_agents(page=2, offset=5, search="Sales")
    assert params(api.last) == {"page": "2", "offset": "5", "search": "Sales"}
    atoms.get_agent_by_id("a" * 24)
    assert (api.last.method, api.last.url.path) == ("GET", f"/api/v1/agent/{'a' * 24}")
    atoms.delete_agent(id="a" * 24)
    assert (api.last.method, api.last.url.path) == ("DELETE", f"/api/v1/agent/{'a' * 24}/archive")


def test_atoms_client_call_methods(atoms: AtomsClient, api: FakeAPI) -> None:
    atoms.get_calls(agent_id="a" * 24, limit=1, min_duration=30)
    assert params(api.last) == {"page": "1", "limit": "1", "agentIds": "a" * 24, "minDuration": "30"}
    atoms.get_call("CALL-1768807723178-4561d0")
    atoms.get_conversation_logs("CALL-1768807723178-4561d0")
    assert [r.url.path for r in api.requests[-2:]] == ["/api/v1/conversation/CALL-1768807723178-4561d0"] * 2
    atoms.search_calls(["CALL-1768807723178-4561d0"])
    assert api.body() == {"callIds": ["CALL-1768807723178-4561d0"]}
    atoms.set_post_call_config("a" * 24, summary_prompt="S")
    assert api.body() == {"summaryPrompt": "S"}
    atoms.get_post_call_config("a" * 24)
    assert api.last.url.path == f"/api/v1/agent/{'a' * 24}/post-call-analytics"
    atoms.start_outbound_call({"agentId": "a" * 24, "phoneNumber": "+14155550123"})
    assert (api.last.method, api.last.url.path) == ("POST", "/api/v1/conversation/outbound")
    assert api.body() == {"agentId": "a" * 24, "phoneNumber": "+14155550123"}
    api.responses.append(page(["c1"], has_more=False, cursor=None))
    assert [c["callId"] for c in atoms.iter_calls(status="failed")] == ["c1"]
    assert params(api.last)["statusFilter"] == "failed"


def multipart_fields(request: httpx.Request) -> dict[str, str]:
    """The parts of a multipart body, by name."""
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    fields = {}
    for part in request.content.split(b"--" + boundary)[1:-1]:
        head, _, body = part.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]+)"', head)
        assert name is not None
        fields[name.group(1).decode()] = body.removesuffix(b"\r\n").decode()
    return fields


def test_audience_create_uploads_a_csv(api: FakeAPI) -> None:
    with Audience(BASE, KEY, transport=api.transport) as audience:
        audience.create(
            name="Spring leads",
            phone_numbers=["+14155550123", "+14155550124", "+14155550125"],
            names=[("Jordan", "Lee, Jr."), ("Sam", 'The "Closer"')],
            description="From the fair",
        )
    assert (api.last.method, api.last.url.path) == ("POST", "/api/v1/audience")
    assert api.last.headers["content-type"].startswith("multipart/form-data")
    fields = multipart_fields(api.last)
    assert fields["name"] == "Spring leads"
    assert fields["phoneNumberColumnName"] == "phoneNumber"
    assert fields["description"] == "From the fair"
    assert fields["file"] == (
        "firstName,lastName,phoneNumber\n"
        'Jordan,"Lee, Jr.",+14155550123\n'
        'Sam,"The ""Closer""",+14155550124\n'
        "User,3,+14155550125\n"
    )
    assert 'filename="contacts.csv"' in api.last.content.decode()


def test_audience_methods(api: FakeAPI) -> None:
    aid = "a" * 24
    with Audience(BASE, KEY, transport=api.transport) as audience:
        audience.get(aid)
        audience.get_members(aid)
        audience.get_members(aid, page=2, offset=50, search="Jordan")
        audience.list()
        audience.delete(aid)
        audience.add_contacts(aid, ["+14155550123", "+14155550124"], names=[("Jordan", "Lee")])
    got = [(r.method, r.url.path, params(r)) for r in api.requests]
    assert got == [
        ("GET", f"/api/v1/audience/{aid}", {}),
        ("GET", f"/api/v1/audience/{aid}/members", {"page": "1", "offset": "10"}),
        ("GET", f"/api/v1/audience/{aid}/members", {"page": "2", "offset": "50", "search": "Jordan"}),
        ("GET", "/api/v1/audience", {}),
        ("DELETE", f"/api/v1/audience/{aid}", {}),
        ("POST", f"/api/v1/audience/{aid}/members", {}),
    ]
    assert api.body() == {
        "members": [
            {"phoneNumber": "+14155550123", "firstName": "Jordan", "lastName": "Lee"},
            {"phoneNumber": "+14155550124", "firstName": "User", "lastName": "2"},
        ]
    }


def test_atoms_client_audience_methods(atoms: AtomsClient, api: FakeAPI) -> None:
    aid = "a" * 24
    atoms.create_audience("Leads", ["+14155550123"], description="D", names=[("Jordan", "Lee")])
    fields = multipart_fields(api.last)
    assert fields["file"] == "firstName,lastName,phoneNumber\nJordan,Lee,+14155550123\n"
    assert (fields["name"], fields["description"]) == ("Leads", "D")
    atoms.get_audiences()
    atoms.get_audience_by_id(aid)
    atoms.get_audience_members(aid, page=3)
    atoms.delete_audience(aid)
    atoms.add_audience_members(aid, [{"phoneNumber": "+14155550199"}])
    got = [(r.method, r.url.path, params(r)) for r in api.requests[1:]]
    assert got == [
        ("GET", "/api/v1/audience", {}),
        ("GET", f"/api/v1/audience/{aid}", {}),
        ("GET", f"/api/v1/audience/{aid}/members", {"page": "3", "offset": "10"}),
        ("DELETE", f"/api/v1/audience/{aid}", {}),
        ("POST", f"/api/v1/audience/{aid}/members", {}),
    ]
    assert api.body() == {"members": [{"phoneNumber": "+14155550199"}]}


def test_campaign_methods(api: FakeAPI) -> None:
    cid = "c" * 24
    with Campaign(BASE, KEY, transport=api.transport) as campaign:
        campaign.create("Spring", "a" * 24, "b" * 24, ["p" * 24])
        assert api.body() == {
            "name": "Spring",
            "agentId": "a" * 24,
            "audienceId": "b" * 24,
            "phoneNumberIds": ["p" * 24],
            "description": "",
            "maxRetries": 3,
            "retryDelay": 15,
        }
        campaign.get(cid)
        campaign.list()
        campaign.start(cid)
        campaign.pause(cid)
        campaign.stop(cid)
        campaign.delete(cid)
    got = [(r.method, r.url.path, params(r)) for r in api.requests]
    assert got == [
        ("POST", "/api/v1/campaign", {}),
        ("GET", f"/api/v1/campaign/{cid}", {}),
        ("GET", "/api/v1/campaign", {"limit": "50"}),
        ("POST", f"/api/v1/campaign/{cid}/start", {}),
        ("POST", f"/api/v1/campaign/{cid}/pause", {}),
        ("POST", f"/api/v1/campaign/{cid}/stop", {}),
        ("DELETE", f"/api/v1/campaign/{cid}", {}),
    ]


def test_atoms_client_campaign_and_phone_methods(atoms: AtomsClient, api: FakeAPI) -> None:
    cid = "c" * 24
    atoms.new_campaign(
        "Spring", "a" * 24, "b" * 24, ["p" * 24], description="D", max_retries=0, retry_delay=60
    )
    assert api.body() == {
        "name": "Spring",
        "agentId": "a" * 24,
        "audienceId": "b" * 24,
        "phoneNumberIds": ["p" * 24],
        "description": "D",
        "maxRetries": 0,
        "retryDelay": 60,
    }
    atoms.create_campaign({"name": "X", "agentId": "a" * 24, "audienceId": "b" * 24})
    assert api.body() == {"name": "X", "agentId": "a" * 24, "audienceId": "b" * 24}
    atoms.get_campaigns()
    atoms.get_campaigns({"page": 2, "limit": 5})
    atoms.get_campaign_by_id(cid)
    atoms.start_campaign(cid)
    atoms.pause_campaign(cid)
    atoms.stop_campaign(cid)
    atoms.delete_campaign(cid)
    atoms.get_phone_numbers()
    got = [(r.method, r.url.path, params(r)) for r in api.requests[2:]]
    assert got == [
        ("GET", "/api/v1/campaign", {"page": "1", "limit": "10"}),
        ("GET", "/api/v1/campaign", {"page": "2", "limit": "5"}),
        ("GET", f"/api/v1/campaign/{cid}", {}),
        ("POST", f"/api/v1/campaign/{cid}/start", {}),
        ("POST", f"/api/v1/campaign/{cid}/pause", {}),
        ("POST", f"/api/v1/campaign/{cid}/stop", {}),
        ("DELETE", f"/api/v1/campaign/{cid}", {}),
        ("GET", "/api/v1/product/phone-numbers", {}),
    ]


# ---------------------------------------------------------------------------------------------
# The same interface as smallestai 4.3.1

# 4.3.1 AtomsClient members with no Dispo endpoint behind them.
NOT_MIRRORED = {
    "kb",
    "new_kb",
    "create_knowledge_base",
    "delete_knowledge_base",
    "get_knowledge_base_by_id",
    "get_knowledge_bases",
    "get_knowledge_base_items",
    "upload_text_to_knowledge_base",
    "upload_media_to_knowledge_base",
    "delete_knowledge_base_item",
    "get_agent_templates",
    "create_agent_from_template",
    "get_agent_workflow",
    "get_current_user",
    "get_organization",
}


def _public(cls: type) -> set[str]:
    return {n for n in vars(cls) if not n.startswith("_")}


def _assert_same_parameters(ours: Callable[..., Any], theirs: Callable[..., Any], where: str) -> None:
    """Their named parameters are ours, in order, with their defaults; ours may add keyword-only ones."""
    their_params = [
        p
        for p in inspect.signature(theirs).parameters.values()
        if not p.name.startswith("_") and p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    our_params = list(inspect.signature(ours).parameters.values())
    assert [p.name for p in our_params[: len(their_params)]] == [p.name for p in their_params], where
    for mine, their in zip(our_params, their_params, strict=False):
        assert mine.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, f"{where}: {mine.name}"
        if their.default is not inspect.Parameter.empty:
            assert mine.default == their.default, f"{where}: default of {mine.name}"
    for extra in our_params[len(their_params) :]:
        assert extra.kind is inspect.Parameter.KEYWORD_ONLY or extra.default is not inspect.Parameter.empty, (
            f"{where}: {extra.name} is an extra required parameter"
        )


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (Call, official_call.Call),
        (Audience, official_audience.Audience),
        (Campaign, official_campaign.Campaign),
        (AtomsClient, official_atoms.AtomsClient),
    ],
    ids=["Call", "Audience", "Campaign", "AtomsClient"],
)
def test_same_methods_and_arguments_as_smallestai_4_3_1(ours: type, theirs: type) -> None:
    missing = _public(theirs) - NOT_MIRRORED - set(dir(ours))
    assert not missing, f"{ours.__name__} lacks {sorted(missing)}"
    for name in sorted(_public(theirs) - NOT_MIRRORED):
        their_attr = getattr(theirs, name)
        if isinstance(their_attr, property):
            assert isinstance(getattr(ours, name), property), name
            continue
        _assert_same_parameters(getattr(ours, name), their_attr, f"{ours.__name__}.{name}")


def test_call_helpers_take_the_official_constructor_arguments() -> None:
    for cls in (Call, Audience, Campaign, AtomsClient):
        with cls("http://x/api/v1", "sk_x") as client:
            assert (client.base_url, client.api_key) == ("http://x/api/v1", "sk_x")


def test_public_api_is_exported() -> None:
    import types

    public = {
        name
        for name, value in vars(dispo.sdk).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(dispo.sdk.__all__) == public
    assert len(dispo.sdk.__all__) == len(set(dispo.sdk.__all__))


# ---------------------------------------------------------------------------------------------
# Against a live server


@dataclass
class Seeded:
    org: Org
    fleet: synthetic.Fleet
    rows: list[dict[str, Any]]  # in creation order: oldest first

    def ids(self, rows: list[dict[str, Any]] | None = None) -> list[str]:
        return [r["call_id"] for r in (self.rows if rows is None else rows)]

    @property
    def newest_first(self) -> list[dict[str, Any]]:
        return list(reversed(self.rows))


def seed(
    db: Database, org_id: str, n: int = 60, *, seed_no: int = 5
) -> tuple[synthetic.Fleet, list[dict[str, Any]]]:
    with db.write() as conn:
        fleet = synthetic.create_fleet(conn, org_id)
        items = list(synthetic.generate(org_id, fleet, n, days=10, seed=seed_no))
        for row, _, _ in items:
            if row["status"] == "completed":  # synthetic calls have no recordings; real ones do
                row["recording_url"] = f"https://recordings.example.com/{row['call_id']}.wav"
                row["recording_dual_url"] = f"https://recordings.example.com/{row['call_id']}-dual.wav"
        synthetic.insert_calls(conn, items)
    return fleet, [row for row, _, _ in items]


@pytest.fixture
def seeded(db: Database, org: Org) -> Seeded:
    fleet, rows = seed(db, org.id)
    return Seeded(org, fleet, rows)


@pytest.fixture
def live(live_server: LiveServer, seeded: Seeded) -> Iterator[Call]:
    with Call(live_server.api, seeded.org.key) as c:
        yield c


def test_live_get_calls_first_page(live: Call, seeded: Seeded) -> None:
    body = live.get_calls(limit=5)
    assert body["status"] is True
    assert [log["callId"] for log in body["data"]["logs"]] == seeded.ids(seeded.newest_first[:5])
    pagination = body["data"]["pagination"]
    assert (pagination["total"], pagination["page"], pagination["limit"]) == (60, 1, 5)
    assert pagination["hasMore"] is True
    assert pagination["totalPages"] == 12
    second = live.get_calls(page=2, limit=5)["data"]["logs"]
    assert [log["callId"] for log in second] == seeded.ids(seeded.newest_first[5:10])


def test_live_official_filters(live: Call, seeded: Seeded) -> None:
    rows = seeded.newest_first
    agent_id = rows[0]["agent_id"]
    campaign_id = next(r["campaign_id"] for r in rows if r["campaign_id"])
    phone = next(r["to_number"] for r in rows if r["type"] == "telephony_outbound")
    cases: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
        ({"status": "completed"}, lambda r: r["status"] == "completed"),
        ({"agent_id": agent_id}, lambda r: r["agent_id"] == agent_id),
        ({"campaign_id": campaign_id}, lambda r: r["campaign_id"] == campaign_id),
        ({"call_type": "telephony_inbound"}, lambda r: r["type"] == "telephony_inbound"),
        ({"search": phone}, lambda r: phone in (r["from_number"], r["to_number"])),
        (
            {"status": "completed", "call_type": "telephony_outbound"},
            lambda r: r["status"] == "completed" and r["type"] == "telephony_outbound",
        ),
    ]
    for filters, keep in cases:
        expected = [r for r in rows if keep(r)]
        assert expected, f"the seed has no call for {filters}"
        body = live.get_calls(limit=100, **filters)
        got = [log["callId"] for log in body["data"]["logs"]]
        assert got == seeded.ids(expected), filters
        assert body["data"]["pagination"]["total"] == len(expected), filters


def test_live_dispo_filters(live: Call, seeded: Seeded) -> None:
    rows = seeded.newest_first
    two_agents = (rows[0]["agent_id"], rows[-1]["agent_id"])
    cases: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
        ({"status": ["no_answer", "busy"]}, lambda r: r["status"] in ("no_answer", "busy")),
        ({"disconnect_reason": "dial_no_answer"}, lambda r: r["disconnection_reason"] == "dial_no_answer"),
        (
            {"disconnect_reason": ["user_hangup", "agent_hangup"]},
            lambda r: r["disconnection_reason"] in ("user_hangup", "agent_hangup"),
        ),
        ({"min_duration": 60, "max_duration": 300}, lambda r: 60 <= r["duration"] <= 300),
        ({"duration_filter": "0-30"}, lambda r: 0 <= r["duration"] < 30),
        ({"agent_id": [rows[0]["agent_id"], rows[-1]["agent_id"]]}, lambda r: r["agent_id"] in two_agents),
    ]
    for filters, keep in cases:
        expected = [r for r in rows if keep(r)]
        assert expected, f"the seed has no call for {filters}"
        got = [log["callId"] for log in live.get_calls(limit=100, **filters)["data"]["logs"]]
        assert sorted(got) == sorted(seeded.ids(expected)), filters


def test_live_sorting(live: Call, seeded: Seeded) -> None:
    logs = live.get_calls(limit=100, sort_by="callDuration", sort_order="asc")["data"]["logs"]
    durations = [log["duration"] for log in logs]
    assert len(logs) == 60
    assert durations == sorted(durations)
    oldest = live.get_calls(limit=3, sort_order="asc")["data"]["logs"]
    assert [log["callId"] for log in oldest] == seeded.ids(seeded.rows[:3])


def test_live_date_ranges(live: Call, seeded: Seeded) -> None:
    rows = seeded.rows
    start, end = rows[10]["created_at"], rows[40]["created_at"]
    expected = sorted(seeded.ids(rows[10:41]))
    start_dt = datetime.fromtimestamp(start / 1000, tz=UTC)
    end_dt = datetime.fromtimestamp(end / 1000, tz=UTC)
    ist = timezone(timedelta(hours=5, minutes=30))
    for date_from, date_to in [
        (ms_to_iso(start), ms_to_iso(end)),  # strings, as the server returns createdAt
        (start_dt, end_dt),  # aware datetimes
        (start_dt.astimezone(ist), end_dt.astimezone(ist)),  # the same instants, another offset
        (start_dt.replace(tzinfo=None), end_dt.replace(tzinfo=None)),  # naive: UTC
    ]:
        got = [log["callId"] for log in live.iter_calls(date_from=date_from, date_to=date_to)]
        assert sorted(got) == expected, (date_from, date_to)
        body = live.get_calls(date_from=date_from, date_to=date_to, limit=1)
        assert body["data"]["pagination"]["total"] == 31
    # Bare dates: whole UTC days, date_to inclusive.
    day = datetime.fromtimestamp(rows[30]["created_at"] / 1000, tz=UTC).date()
    in_day = [r for r in rows if datetime.fromtimestamp(r["created_at"] / 1000, tz=UTC).date() == day]
    got = [log["callId"] for log in live.iter_calls(date_from=day, date_to=day)]
    assert sorted(got) == sorted(seeded.ids(in_day))
    since = [log["callId"] for log in live.iter_calls(date_from=end_dt + timedelta(milliseconds=1))]
    assert sorted(since) == sorted(seeded.ids(rows[41:]))


def test_live_iter_calls_returns_every_call_once_in_order(live_server: LiveServer, seeded: Seeded) -> None:
    sent: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [sent.append]})
    with Call(live_server.api, seeded.org.key, http_client=http) as c:
        got = [log["callId"] for log in c.iter_calls(page_size=7)]
    http.close()
    assert got == seeded.ids(seeded.newest_first)
    assert len(sent) == 9  # ceil(60 / 7)
    assert all("cursor" in r.url.params and "page" not in r.url.params for r in sent[1:])


def test_live_iter_calls_with_filters_and_sorting(live: Call, seeded: Seeded) -> None:
    completed = [r for r in seeded.rows if r["status"] == "completed"]
    logs = list(live.iter_calls(status="completed", sort_by="callDuration", sort_order="asc", page_size=4))
    ids = [log["callId"] for log in logs]
    assert len(ids) == len(set(ids)) == len(completed)
    assert set(ids) == set(seeded.ids(completed))
    assert [log["duration"] for log in logs] == sorted(r["duration"] for r in completed)


def test_live_get_call(live: Call, seeded: Seeded) -> None:
    row = next(r for r in seeded.newest_first if r["status"] == "completed")
    data = live.get_call(row["call_id"])["data"]
    assert (data["callId"], data["status"], data["duration"]) == (
        row["call_id"],
        "completed",
        row["duration"],
    )
    assert (data["from"], data["to"], data["type"]) == (row["from_number"], row["to_number"], row["type"])
    assert data["recordingUrl"] == row["recording_url"]
    assert data["recordingDualUrl"] == row["recording_dual_url"]
    assert data["transcript"]
    assert {m["role"] for m in data["transcript"]} == {"agent", "user"}
    analytics = data["postCallAnalytics"]
    assert analytics["summary"] in synthetic.SUMMARIES
    assert [m["identifier"] for m in analytics["dispositionMetrics"]] == ["user_interested", "user_name"]
    assert data["average_agent_latency"] == row["avg_agent_latency"]


def test_live_search_calls(live: Call, seeded: Seeded) -> None:
    ids = seeded.ids(seeded.rows[:3])
    data = live.search_calls([*ids, "CALL-1768807723177-4561cd"])["data"]
    assert (data["total"], data["requestedCount"]) == (3, 4)
    assert sorted(log["callId"] for log in data["logs"]) == sorted(ids)


def test_live_post_call_config_round_trip(live: Call, seeded: Seeded) -> None:
    agent_id = seeded.fleet.agent_ids[0]
    assert live.get_post_call_config(agent_id)["data"]["dispositionMetrics"] == []
    live.set_post_call_config(
        agent_id,
        summary_prompt="Summarize this sales call briefly.",
        disposition_metrics=[
            {
                "identifier": "user_interested",
                "dispositionMetricPrompt": "Was the user interested? yes, no, or unclear",
                "dispositionValues": {"type": "ENUM"},
                "choices": ["yes", "no", "unclear"],
            },
            {
                "identifier": "user_name",
                "dispositionMetricPrompt": "What is the user's name?",
                "dispositionMetricType": "STRING",
            },
        ],
    )
    live.set_post_call_config(agent_id, summary_prompt="Two sentences at most.")  # metrics stay
    data = live.get_post_call_config(agent_id)["data"]
    assert data["summaryPrompt"] == "Two sentences at most."
    assert [(m["identifier"], m["dispositionMetricType"]) for m in data["dispositionMetrics"]] == [
        ("user_interested", "ENUM"),
        ("user_name", "STRING"),
    ]
    assert data["dispositionMetrics"][0]["choices"] == ["yes", "no", "unclear"]


def test_live_errors_carry_the_server_message(live_server: LiveServer, live: Call, seeded: Seeded) -> None:
    with pytest.raises(NotFoundError) as info:
        live.get_call("CALL-1768807723178-4561d0")
    assert info.value.errors == [
        "No call CALL-1768807723178-4561d0 in this organization: check the id, or list calls with GET /conversation."
    ]
    with pytest.raises(BadRequestError) as bad:
        live.search_calls([f"CALL-17688077231{i:02d}-4561d0" for i in range(101)])
    assert bad.value.errors == [
        "callIds lists 101 ids; at most 100 are allowed per request: send them in batches of 100."
    ]
    with pytest.raises(BadRequestError, match="statusFilter has unknown value answered"):
        live.get_calls(status="answered")
    with pytest.raises(BadRequestError, match="minDuration \\(300\\) is above maxDuration \\(60\\)"):
        live.get_calls(min_duration=300, max_duration=60)
    with pytest.raises(NotFoundError, match="No agent"):
        live.get_post_call_config("f" * 24)
    with Call(live_server.api, "sk_" + "x" * 43) as stranger, pytest.raises(AuthenticationError) as auth:
        stranger.get_calls()
    assert auth.value.errors == [
        "Unknown or revoked API key: check the key, or create one with `dispo keys create`."
    ]
    with Call(live_server.api) as anonymous, pytest.raises(AuthenticationError, match="Missing API key"):
        anonymous.get_calls()


def test_live_another_organizations_call_is_not_found(
    live_server: LiveServer, seeded: Seeded, other_org: Org
) -> None:
    with Call(live_server.api, other_org.key) as other, pytest.raises(NotFoundError):
        other.get_call(seeded.rows[0]["call_id"])


def test_live_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with (
        Call(f"http://127.0.0.1:{port}/api/v1", KEY) as c,
        pytest.raises(DispoConnectionError, match="dispo serve"),
    ):
        c.get_calls()


def test_live_agents_through_atoms_client(live_server: LiveServer, seeded: Seeded) -> None:
    with AtomsClient(live_server.api, seeded.org.key) as client:
        name = f"Sales Agent {uuid.uuid4().hex[:6]}"
        agent = client.new_agent(name=name, prompt="You are a sales agent.", description="Testing")
        agent_id = agent.data
        assert isinstance(agent_id, str)
        assert agent_id == agent["data"]
        assert len(agent_id) == 24
        listed = client.get_agents(search=name)["data"]
        assert [a["_id"] for a in listed["agents"]] == [agent_id]
        assert listed["total"] == 1
        assert client.get_agents(page=1, offset=2)["data"]["total"] == 6
        assert client.get_agent_by_id(agent_id)["data"]["globalPrompt"] == "You are a sales agent."
        assert client.update_agent(agent_id, {"description": "Outbound"})["data"] == agent_id
        assert client.get_agent_by_id(agent_id)["data"]["description"] == "Outbound"
        assert client.call.get_calls(agent_id=agent_id)["data"]["logs"] == []
        assert client.delete_agent(id=agent_id)["data"] == {"message": "Agent archived"}
        with pytest.raises(ConflictError, match="already archived"):
            client.delete_agent(id=agent_id)
        with pytest.raises(BadRequestError, match="slmModel"):
            client.create_agent({"name": "X", "slmModel": "gpt-2"})


def test_live_audience_campaign_and_phone_endpoints(live_server: LiveServer, seeded: Seeded) -> None:
    with AtomsClient(live_server.api, seeded.org.key) as client:
        assert isinstance(client.get_phone_numbers()["data"], list)
        assert isinstance(client.get_audiences()["data"], list)
        assert "campaigns" in client.get_campaigns()["data"]


def test_audience_delete_members(api: FakeAPI) -> None:
    aid = "a" * 24
    with Audience(BASE, KEY, transport=api.transport) as audience:
        audience.delete_members(aid, ["m" * 24])
    assert (api.last.method, api.last.url.path) == ("DELETE", f"/api/v1/audience/{aid}/members")
    assert api.body() == {"memberIds": ["m" * 24]}


def test_live_audiences_and_campaigns(live_server: LiveServer, seeded: Seeded, db: Database) -> None:
    """Audience and Campaign against the real server: the shapes they document, the errors they raise."""
    from dispo.store import phone_numbers

    with db.write() as conn:
        phone_numbers.add_number(conn, seeded.org.id, "+14155550100")
    with AtomsClient(live_server.api, seeded.org.key) as client:
        audience, campaign = client.audience, client.campaign
        phone_id = client.get_phone_numbers()["data"][0]["_id"]
        aud = audience.create(
            name="Spring leads",
            phone_numbers=["+14155550123", "+14155550124"],
            names=[("Lee, Jordan", 'Sam "S"')],
        )
        audience_id = aud["data"]["_id"]
        members = audience.get_members(audience_id)["data"]["members"]
        assert members[0]["data"] == {
            "firstName": "Lee, Jordan",
            "lastName": 'Sam "S"',
            "phoneNumber": "+14155550123",
        }
        added = audience.add_contacts(audience_id, ["+14155550124", "+14155550125"])
        assert added["data"][0]["data"] == {"added": 1, "skipped": 1}
        assert audience.delete_members(audience_id, [members[1]["_id"]])["data"] == {"deletedCount": 1}
        assert audience.get(audience_id)["data"]["membersCount"] == 2
        with pytest.raises(BadRequestError) as bad:
            audience.create(name="Bad", phone_numbers=["12345"])
        assert bad.value.errors[0].startswith("Row 2: '12345' is not a valid E.164 phone number")

        agent_id = seeded.fleet.agent_ids[0]
        camp = campaign.create("Spring", agent_id, audience_id, [phone_id], max_retries=0, retry_delay=60)
        campaign_id = camp["data"]["_id"]
        assert (camp["data"]["status"], camp["data"]["maxRetries"], camp["data"]["retryDelay"]) == (
            "draft",
            0,
            60,
        )
        assert campaign.start(campaign_id)["data"]["status"] == "running"
        assert campaign.list()["data"]["campaigns"][0]["_id"] == campaign_id
        assert client.get_campaigns({"page": 1, "limit": 1})["data"]["pagination"]["limit"] == 1
        assert campaign.get(campaign_id)["data"]["metrics"]["total_participants"] == 2
        with pytest.raises(BadRequestError) as in_use:
            audience.delete(audience_id)
        assert in_use.value.errors[0].startswith(f"Audience {audience_id} is used by campaign(s) 'Spring'")
        assert campaign.pause(campaign_id)["data"]["status"] == "paused"
        assert client.stop_campaign(campaign_id)["data"]["status"] == "completed"
        with pytest.raises(ConflictError) as done:
            campaign.start(campaign_id)
        assert done.value.errors[0].startswith(f"Campaign {campaign_id} is completed")
        assert campaign.delete(campaign_id)["status"] is True
        assert audience.delete(audience_id)["data"] == [audience_id]
        with pytest.raises(NotFoundError):
            campaign.create("Gone", agent_id, audience_id, [phone_id])


# ---------------------------------------------------------------------------------------------
# docs/sdk.md: every Python sample runs


@dataclass
class Sample:
    mode: str  # live (dispo.sdk against the server), mock (pending endpoints), official (smallestai)
    code: str
    output: str | None  # the plain code block that follows, if any
    line: int


def doc_samples() -> list[Sample]:
    text = DOCS.read_text()
    samples = []
    blocks = list(re.finditer(r"(?:<!-- run: (\w+) -->\n)?```(\w*)\n(.*?)```", text, re.S))
    for i, m in enumerate(blocks):
        if m.group(2) != "python":
            continue
        assert m.group(1) in ("live", "mock", "official"), (
            f"docs/sdk.md line {text[: m.start()].count(chr(10)) + 1}: mark the sample <!-- run: live|mock|official -->"
        )
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        between = text[m.end() : following.start()] if following else ""
        output = (
            following.group(3) if following and following.group(2) == "" and not between.strip() else None
        )
        samples.append(Sample(m.group(1), m.group(3), output, text[: m.start()].count("\n") + 1))
    return samples


def _shape(line: str) -> str:
    """A regex for lines like a documented example line: ids, numbers and words may differ."""
    tokens = re.finditer(r"CALL-\d+-[0-9a-f]{6}|\d+|[a-z_]+|.", line)
    return "".join(
        r"CALL-\d+-[0-9a-f]{6}"
        if t.group().startswith("CALL-")
        else r"\d+"
        if t.group().isdigit()
        else "[a-z_]+"
        if t.group()[0].isalpha()
        else re.escape(t.group())
        for t in tokens
    )


def check_output(sample: Sample, printed: str) -> None:
    if sample.output is None:
        return
    documented = sample.output.strip("\n").splitlines()
    actual = printed.strip("\n").splitlines()
    if "..." not in documented:
        assert actual == documented, f"docs/sdk.md line {sample.line}: output differs"
        return
    shapes = [_shape(line) for line in documented if line != "..."]
    assert actual
    for line in actual:
        assert any(re.fullmatch(s, line) for s in shapes), f"docs/sdk.md line {sample.line}: {line!r}"


def run_samples(samples: list[Sample]) -> list[str]:
    namespace: dict[str, Any] = {"__name__": "docs_sdk"}
    outputs = []
    try:
        for sample in samples:
            out = io.StringIO()
            with redirect_stdout(out):
                exec(compile(sample.code, f"docs/sdk.md:{sample.line}", "exec"), namespace)
            check_output(sample, out.getvalue())
            outputs.append(out.getvalue())
    finally:
        for value in namespace.values():
            if isinstance(value, dispo.sdk.BaseClient):
                value.close()
    return outputs


def test_docs_mark_every_sample() -> None:
    modes = [s.mode for s in doc_samples()]
    assert modes.count("live") >= 6
    assert modes.count("official") == 2


def test_docs_live_samples_run(
    monkeypatch: pytest.MonkeyPatch, live_server: LiveServer, seeded: Seeded, db: Database
) -> None:
    from dispo.store import phone_numbers

    with db.write() as conn:  # the audience and campaign sample calls from the first number
        phone_numbers.add_number(conn, seeded.org.id, "+14155550100")
    monkeypatch.setenv("DISPO_BASE_URL", live_server.api)
    monkeypatch.setenv("DISPO_API_KEY", seeded.org.key)
    outputs = run_samples([s for s in doc_samples() if s.mode == "live"])
    assert len(outputs[0].splitlines()) == 5
    completed = [r for r in seeded.rows if r["status"] == "completed"]
    assert f"{len(completed)} completed calls" in outputs[2]
    assert "Found 1 of 2 calls" in outputs[3]


def test_docs_official_samples_run(
    monkeypatch: pytest.MonkeyPatch, live_server: LiveServer, seeded: Seeded
) -> None:
    monkeypatch.setenv("SMALLEST_BASE_URL", live_server.api)
    monkeypatch.setenv("SMALLEST_API_KEY", seeded.org.key)
    try:
        outputs = run_samples([s for s in doc_samples() if s.mode == "official"])
    finally:
        Configuration.set_default(None)
    assert len(outputs[0].splitlines()) == 5
    assert outputs[1] == "Sales agent\n"
