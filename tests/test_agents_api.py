"""Agents and their versioned post-call analytics configuration."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from dispo.ids import new_object_id
from dispo.store.database import Database
from dispo.store.tables import audiences, campaigns
from dispo.timeutil import now_ms
from tests.conftest import Org

SEED_METRICS = [
    {
        "identifier": "user_interested",
        "dispositionMetricPrompt": "Was the user interested? yes, no, or unclear",
        "dispositionValues": {"type": "ENUM"},
        "choices": ["yes", "no", "unclear"],
    },
    {
        "identifier": "user_name",
        "dispositionMetricPrompt": "What is the user's name? Return 'unknown' if not mentioned.",
        "dispositionValues": {"type": "STRING"},
    },
]


def _create(client: TestClient, **body: Any) -> str:
    r = client.post("/api/v1/agent", json={"name": "Sales agent", **body})
    assert r.status_code == 201, r.text
    agent_id = r.json()["data"]
    assert isinstance(agent_id, str)
    return agent_id


def test_create_get_update_list(client: TestClient) -> None:
    agent_id = _create(
        client,
        description="Testing disposition metrics",
        globalPrompt="You are a sales agent.",
        backgroundSound="office",
        language={"enabled": "en", "switching": {"isEnabled": False}},
        synthesizer={"voiceConfig": {"model": "waves", "voiceId": "nyah"}},
    )
    agent = client.get(f"/api/v1/agent/{agent_id}").json()["data"]
    assert agent["_id"] == agent_id
    assert agent["name"] == "Sales agent"
    assert agent["globalPrompt"] == "You are a sales agent."
    assert agent["backgroundSound"] is True
    assert agent["backgroundSoundType"] == "office"
    assert agent["language"]["enabled"] == "en"
    assert agent["synthesizer"] == {"voiceConfig": {"model": "waves", "voiceId": "nyah"}}
    assert agent["archived"] is False

    r = client.patch(f"/api/v1/agent/{agent_id}", json={"description": "Updated", "slmModel": "gpt-4o"})
    assert r.json() == {"status": True, "data": agent_id}
    agent = client.get(f"/api/v1/agent/{agent_id}").json()["data"]
    assert agent["description"] == "Updated"
    assert agent["slmModel"] == "gpt-4o"
    assert agent["name"] == "Sales agent"  # untouched
    assert agent["synthesizer"] == {"voiceConfig": {"model": "waves", "voiceId": "nyah"}}

    _create(client, name="Support agent")
    listed = client.get("/api/v1/agent").json()["data"]
    assert listed["total"] == 2
    assert [a["name"] for a in listed["agents"]] == ["Support agent", "Sales agent"]
    searched = client.get("/api/v1/agent", params={"search": "supp"}).json()["data"]
    assert [a["name"] for a in searched["agents"]] == ["Support agent"]
    paged = client.get("/api/v1/agent", params={"page": 2, "offset": 1}).json()["data"]
    assert [a["name"] for a in paged["agents"]] == ["Sales agent"]


def test_archive_and_restore(client: TestClient) -> None:
    agent_id = _create(client)
    r = client.delete(f"/api/v1/agent/{agent_id}/archive")
    assert r.json() == {"status": True, "data": {"message": "Agent archived"}}
    assert client.get("/api/v1/agent").json()["data"]["total"] == 0
    assert client.get("/api/v1/agent", params={"archived": True}).json()["data"]["total"] == 1
    again = client.delete(f"/api/v1/agent/{agent_id}/archive")
    assert again.status_code == 409
    assert "already archived" in again.json()["errors"][0]
    restored = client.delete(f"/api/v1/agent/{agent_id}/archive", params={"on": False})
    assert restored.json()["data"] == {"message": "Agent restored"}
    assert client.get(f"/api/v1/agent/{agent_id}").json()["data"]["archived"] is False


def test_archive_refused_while_a_campaign_runs(client: TestClient, db: Database, org: Org) -> None:
    agent_id = _create(client)
    now = now_ms()
    with db.write() as conn:
        audience_id = new_object_id()
        conn.execute(
            audiences.insert().values(id=audience_id, org_id=org.id, name="A", created_at=now, updated_at=now)
        )
        conn.execute(
            campaigns.insert().values(
                id=new_object_id(),
                org_id=org.id,
                name="Spring promo",
                agent_id=agent_id,
                audience_id=audience_id,
                phone_number_ids=[],
                status="running",
                created_at=now,
                updated_at=now,
            )
        )
    r = client.delete(f"/api/v1/agent/{agent_id}/archive")
    assert r.status_code == 409
    assert "Spring promo" in r.json()["errors"][0]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "name is required"),
        ({"name": ""}, "name is empty"),
        ({"name": None}, "name cannot be null"),
        ({"name": 42}, "name must be a string"),
        ({"name": "x" * 201}, "longer than 200"),
        ({"name": "a", "language": "fr"}, "language 'fr' is not supported"),
        ({"name": "a", "slmModel": "gpt-9"}, "slmModel 'gpt-9' is not supported"),
        ({"name": "a", "backgroundSound": "jungle"}, "backgroundSound must be one of"),
        ({"name": "a", "defaultVariables": [1]}, "defaultVariables must be an object"),
    ],
)
def test_create_validation(client: TestClient, body: dict[str, Any], fragment: str) -> None:
    r = client.post("/api/v1/agent", json=body)
    assert r.status_code == 400
    assert fragment in " ".join(r.json()["errors"])


def test_other_organizations_agents_are_404(client: TestClient, other_org: Org) -> None:
    theirs = TestClient(client.app, headers=other_org.headers)
    agent_id = _create(theirs)
    for method, path in [
        ("get", f"/api/v1/agent/{agent_id}"),
        ("patch", f"/api/v1/agent/{agent_id}"),
        ("delete", f"/api/v1/agent/{agent_id}/archive"),
        ("get", f"/api/v1/agent/{agent_id}/post-call-analytics"),
        ("post", f"/api/v1/agent/{agent_id}/post-call-analytics"),
    ]:
        r = client.request(method, path, json={"description": "mine now"} if method != "get" else None)
        assert r.status_code == 404, (method, path, r.text)
        assert "No agent" in r.json()["errors"][0]
    assert theirs.get(f"/api/v1/agent/{agent_id}").json()["data"]["description"] == ""


# ---------------------------------------------------------------------------------------------
# Post-call analytics configuration


def test_config_starts_empty_and_round_trips_seed_shape(client: TestClient) -> None:
    agent_id = _create(client)
    empty = client.get(f"/api/v1/agent/{agent_id}/post-call-analytics").json()["data"]
    assert empty == {"summaryPrompt": None, "dispositionMetrics": [], "version": 0, "updatedAt": None}
    r = client.post(
        f"/api/v1/agent/{agent_id}/post-call-analytics",
        json={"summaryPrompt": "Summarize this sales call briefly.", "dispositionMetrics": SEED_METRICS},
    )
    assert r.status_code == 200, r.text
    config = client.get(f"/api/v1/agent/{agent_id}/post-call-analytics").json()["data"]
    assert config["version"] == 1
    assert config["summaryPrompt"] == "Summarize this sales call briefly."
    first, second = config["dispositionMetrics"]
    assert first == {
        "identifier": "user_interested",
        "dispositionMetricPrompt": "Was the user interested? yes, no, or unclear",
        "dispositionMetricType": "ENUM",
        "dispositionValues": {"type": "ENUM"},
        "choices": ["yes", "no", "unclear"],
    }
    assert second["dispositionMetricType"] == "STRING"
    assert "choices" not in second


def test_newer_metric_shape_is_accepted(client: TestClient) -> None:
    agent_id = _create(client)
    metric = {
        "identifier": "callback_at",
        "dispositionMetricPrompt": "When to call back?",
        "dispositionMetricType": "datetime",
    }
    r = client.post(f"/api/v1/agent/{agent_id}/post-call-analytics", json={"dispositionMetrics": [metric]})
    assert r.status_code == 200, r.text
    saved = r.json()["data"]["dispositionMetrics"][0]
    assert saved["dispositionMetricType"] == "DATETIME"
    assert saved["dispositionValues"] == {"type": "DATETIME"}


def test_every_change_is_a_new_version_and_partial_updates_keep_the_rest(client: TestClient) -> None:
    agent_id = _create(client)
    url = f"/api/v1/agent/{agent_id}/post-call-analytics"
    assert (
        client.post(url, json={"summaryPrompt": "One", "dispositionMetrics": SEED_METRICS}).json()["data"][
            "version"
        ]
        == 1
    )
    # Only the summary changes: the metrics carry over.
    v2 = client.post(url, json={"summaryPrompt": "Two"}).json()["data"]
    assert v2["version"] == 2
    assert [m["identifier"] for m in v2["dispositionMetrics"]] == ["user_interested", "user_name"]
    # Only the metrics change: the summary carries over.
    v3 = client.post(url, json={"dispositionMetrics": SEED_METRICS[:1]}).json()["data"]
    assert v3["version"] == 3
    assert v3["summaryPrompt"] == "Two"
    # The same config again is not a change.
    assert client.post(url, json={"dispositionMetrics": SEED_METRICS[:1]}).json()["data"]["version"] == 3
    versions = client.get(f"{url}/versions").json()["data"]["versions"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert versions[2]["summaryPrompt"] == "One"


@pytest.mark.parametrize(
    ("metrics", "fragment"),
    [
        ("nope", "dispositionMetrics must be a list"),
        ([42], "must be an object"),
        (
            [
                {
                    "identifier": "UserName",
                    "dispositionMetricPrompt": "?",
                    "dispositionValues": {"type": "STRING"},
                }
            ],
            "must be snake_case",
        ),
        (
            [
                {
                    "identifier": "user name",
                    "dispositionMetricPrompt": "?",
                    "dispositionValues": {"type": "STRING"},
                }
            ],
            "must be snake_case",
        ),
        (
            [
                {"identifier": "a", "dispositionMetricPrompt": "?", "dispositionValues": {"type": "STRING"}},
                {"identifier": "a", "dispositionMetricPrompt": "?", "dispositionValues": {"type": "STRING"}},
            ],
            "used twice",
        ),
        (
            [{"identifier": "a", "dispositionValues": {"type": "STRING"}}],
            "dispositionMetricPrompt is required",
        ),
        ([{"identifier": "a", "dispositionMetricPrompt": "?"}], "needs a type"),
        (
            [{"identifier": "a", "dispositionMetricPrompt": "?", "dispositionValues": {"type": "FLOAT"}}],
            "has type 'FLOAT'",
        ),
        (
            [{"identifier": "a", "dispositionMetricPrompt": "?", "dispositionValues": "ENUM"}],
            "dispositionValues must be an object",
        ),
        (
            [{"identifier": "a", "dispositionMetricPrompt": "?", "dispositionValues": {"type": "ENUM"}}],
            "is an ENUM and needs choices",
        ),
        (
            [
                {
                    "identifier": "a",
                    "dispositionMetricPrompt": "?",
                    "dispositionValues": {"type": "ENUM"},
                    "choices": ["y", "y"],
                }
            ],
            "lists 'y' twice",
        ),
        (
            [
                {
                    "identifier": "a",
                    "dispositionMetricPrompt": "?",
                    "dispositionValues": {"type": "ENUM"},
                    "choices": [""],
                }
            ],
            "must be non-empty strings",
        ),
        (
            [
                {
                    "identifier": "a",
                    "dispositionMetricPrompt": "?",
                    "dispositionValues": {"type": "STRING"},
                    "choices": ["x"],
                }
            ],
            "choices are only for ENUM",
        ),
        (
            [
                {
                    "identifier": "a",
                    "dispositionMetricPrompt": "?",
                    "dispositionValues": {"type": "STRING"},
                    "dispositionMetricType": "INTEGER",
                }
            ],
            "disagree",
        ),
    ],
)
def test_config_validation(client: TestClient, metrics: Any, fragment: str) -> None:
    agent_id = _create(client)
    url = f"/api/v1/agent/{agent_id}/post-call-analytics"
    r = client.post(url, json={"dispositionMetrics": metrics})
    assert r.status_code == 400, r.text
    assert fragment in " ".join(r.json()["errors"])
    # Nothing was stored.
    assert client.get(url).json()["data"]["version"] == 0


def test_config_rejects_unknown_fields_and_bad_summary(client: TestClient) -> None:
    agent_id = _create(client)
    url = f"/api/v1/agent/{agent_id}/post-call-analytics"
    r = client.post(url, json={"summary_prompt": "snake case by mistake"})
    assert r.status_code == 400
    assert "Unknown field summary_prompt" in r.json()["errors"][0]
    r = client.post(url, json={"summaryPrompt": 12})
    assert r.status_code == 400
    assert "summaryPrompt must be a string" in r.json()["errors"][0]


def test_all_metric_errors_reported_together(client: TestClient) -> None:
    agent_id = _create(client)
    bad = [
        {"identifier": "Bad", "dispositionMetricPrompt": "?", "dispositionValues": {"type": "STRING"}},
        {"identifier": "ok_one", "dispositionMetricPrompt": "", "dispositionValues": {"type": "ENUM"}},
    ]
    r = client.post(f"/api/v1/agent/{agent_id}/post-call-analytics", json={"dispositionMetrics": bad})
    assert len(r.json()["errors"]) == 3


def test_unknown_metric_field_refused_not_dropped(client: TestClient) -> None:
    # The spec says a metric object has additionalProperties false; the server agrees (400, nothing stored).
    agent_id = _create(client)
    url = f"/api/v1/agent/{agent_id}/post-call-analytics"
    metric = {
        "identifier": "user_name",
        "dispositionMetricPrompt": "What is the user's name?",
        "dispositionValues": {"type": "STRING"},
        "descripton": "typo",
    }
    r = client.post(url, json={"dispositionMetrics": [metric]})
    assert r.status_code == 400
    assert "unknown field descripton: a metric takes identifier" in r.json()["errors"][0]
    assert client.get(url).json()["data"]["version"] == 0
