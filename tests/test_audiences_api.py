"""Audiences: CSV upload (multipart, as the official SDK sends it), members, deletion."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from smallestai.atoms.models import (
    AudienceGet200Response,
    AudienceIdDelete200Response,
    AudienceIdMembersGet200Response,
    AudienceIdMembersPost200Response,
    AudiencePost200Response,
)
from sqlalchemy import func, select

from dispo.store import campaigns as campaign_store
from dispo.store import phone_numbers as number_store
from dispo.store.database import Database
from dispo.store.tables import audience_members, audiences
from tests.conftest import Org

CSV = "firstName,lastName,phoneNumber\nTest,User,+916366821717\nJordan,Lee,+1 415 555 0123\n"


def upload(
    client: TestClient, csv_text: str | bytes = CSV, *, name: str | None = "Spring leads", **fields: str
) -> Any:
    """POST /audience exactly as smallestai's Audience.create builds it."""
    raw = csv_text.encode() if isinstance(csv_text, str) else csv_text
    data = {"phoneNumberColumnName": "phoneNumber", "description": "", **fields}
    if name is not None:
        data["name"] = name
    return client.post("/api/v1/audience", files={"file": ("contacts.csv", raw, "text/csv")}, data=data)


def create(client: TestClient, csv_text: str = CSV, **fields: str) -> str:
    r = upload(client, csv_text, **fields)
    assert r.status_code == 200, r.text
    audience_id = r.json()["data"]["_id"]
    assert isinstance(audience_id, str)
    return audience_id


def stored(db: Database, org: Org) -> tuple[int, int]:
    """(audiences, members) of the organization in the database, deleted ones included."""
    with db.read() as conn:
        n_aud = conn.execute(select(func.count()).where(audiences.c.org_id == org.id)).scalar_one()
        n_mem = conn.execute(
            select(func.count())
            .select_from(audience_members.join(audiences))
            .where(audiences.c.org_id == org.id)
        ).scalar_one()
    return int(n_aud), int(n_mem)


def test_create_get_list(client: TestClient) -> None:
    r = upload(client, description="From the spring fair")
    body = r.json()
    assert r.status_code == 200
    assert AudiencePost200Response.from_dict(body) is not None
    data = body["data"]
    assert (data["name"], data["description"], data["phoneNumberColumnName"]) == (
        "Spring leads",
        "From the spring fair",
        "phoneNumber",
    )
    assert data["membersCount"] == 2
    audience_id = data["_id"]

    got = client.get(f"/api/v1/audience/{audience_id}").json()
    assert got["data"] == data
    listed = client.get("/api/v1/audience").json()
    assert AudienceGet200Response.from_dict(listed) is not None
    assert [a["_id"] for a in listed["data"]] == [audience_id]
    assert client.get("/atoms/v1/audience").json() == listed


def test_members_are_normalised_and_paged_in_file_order(client: TestClient) -> None:
    rows = "\n".join(f"User,{i},+1415555{i:04d}" for i in range(100, 125))
    audience_id = create(client, "firstName,lastName,phoneNumber\n" + rows + "\n")
    first = client.get(f"/api/v1/audience/{audience_id}/members").json()
    assert AudienceIdMembersGet200Response.from_dict(first) is not None
    data = first["data"]
    assert (data["totalCount"], data["totalPages"], data["hasMore"]) == (25, 3, True)
    assert [m["data"]["lastName"] for m in data["members"]] == [str(i) for i in range(100, 110)]
    assert data["members"][0]["data"] == {
        "firstName": "User",
        "lastName": "100",
        "phoneNumber": "+14155550100",
    }
    last = client.get(f"/api/v1/audience/{audience_id}/members", params={"page": 3, "offset": 10}).json()[
        "data"
    ]
    assert [m["data"]["lastName"] for m in last["members"]] == [str(i) for i in range(120, 125)]
    assert last["hasMore"] is False
    found = client.get(f"/api/v1/audience/{audience_id}/members", params={"search": "+1 415 555 0123"}).json()
    assert [m["data"]["lastName"] for m in found["data"]["members"]] == ["123"]


def test_search_matches_member_data(client: TestClient) -> None:
    audience_id = create(client)
    found = client.get(f"/api/v1/audience/{audience_id}/members", params={"search": "jordan"}).json()["data"]
    assert [m["data"]["firstName"] for m in found["members"]] == ["Jordan"]


def test_custom_phone_column_and_extra_columns(client: TestClient) -> None:
    csv_text = 'name,mobile,city\n"Lee, Jordan",+14155550123,"San Francisco"\n'
    audience_id = create(client, csv_text, phoneNumberColumnName="mobile")
    (member,) = client.get(f"/api/v1/audience/{audience_id}/members").json()["data"]["members"]
    assert member["data"] == {"name": "Lee, Jordan", "mobile": "+14155550123", "city": "San Francisco"}
    # The official add_contacts sends phoneNumber whatever the column: it lands in the column.
    r = client.post(
        f"/api/v1/audience/{audience_id}/members", json={"members": [{"phoneNumber": "+14155550124"}]}
    )
    assert r.json()["data"][0]["data"] == {"added": 1, "skipped": 0}
    members = client.get(f"/api/v1/audience/{audience_id}/members").json()["data"]["members"]
    assert members[1]["data"] == {"mobile": "+14155550124"}


def test_add_members_skips_duplicates_and_reports_counts(client: TestClient) -> None:
    audience_id = create(client)
    r = client.post(
        f"/api/v1/audience/{audience_id}/members",
        json={
            "members": [
                {"phoneNumber": "+916366821717", "firstName": "Again"},  # already in the audience
                {"phoneNumber": "+14155550199", "firstName": "New", "lastName": "User"},
                {"phoneNumber": "+1 415 555 0199", "firstName": "Repeat"},  # repeat within the body
            ]
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert AudienceIdMembersPost200Response.from_dict(body) is not None
    assert body["data"] == [
        {"message": "Added 1 member; skipped 2 already in the audience.", "data": {"added": 1, "skipped": 2}}
    ]
    members = client.get(f"/api/v1/audience/{audience_id}/members").json()["data"]["members"]
    assert [m["data"]["firstName"] for m in members] == ["Test", "Jordan", "New"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"members": []}, "members must be a non-empty list"),
        (
            {"members": [{"firstName": "No number"}]},
            "members[0] has no phoneNumber: give each member a phone number.",
        ),
        (
            {"members": [{"phoneNumber": "+14155550100"}, {"phoneNumber": "555-0100"}]},
            "members[1]: '555-0100' is not a valid E.164 phone number: write it with the country code, "
            "e.g. +14155550123.",
        ),
        ([1, 2], "The request body must be a JSON object"),
    ],
)
def test_add_members_refuses_bad_bodies_and_adds_nothing(
    client: TestClient, db: Database, org: Org, body: Any, message: str
) -> None:
    audience_id = create(client)
    r = client.post(f"/api/v1/audience/{audience_id}/members", json=body)
    assert r.status_code == 400
    assert r.json()["errors"][0].startswith(message)
    assert stored(db, org) == (1, 2)


def test_delete_members(client: TestClient) -> None:
    audience_id = create(client)
    members = client.get(f"/api/v1/audience/{audience_id}/members").json()["data"]["members"]
    r = client.request(
        "DELETE", f"/api/v1/audience/{audience_id}/members", json={"memberIds": [members[0]["_id"], "f" * 24]}
    )
    assert r.json() == {"status": True, "data": {"deletedCount": 1}}
    left = client.get(f"/api/v1/audience/{audience_id}/members").json()["data"]
    assert [m["_id"] for m in left["members"]] == [members[1]["_id"]]
    r = client.request("DELETE", f"/api/v1/audience/{audience_id}/members", json={"memberIds": []})
    assert r.status_code == 400
    assert r.json()["errors"][0].startswith("memberIds must be a non-empty list of member ids")


# ---------------------------------------------------------------------------------------------
# Bad uploads: a clear 400, and nothing stored


BAD_UPLOADS = [
    (
        'firstName,lastName,phoneNumber\nTest,User,+916366821717\nJordan,"Lee,+14155550123\n',
        ["The CSV is malformed at line 3: unexpected end of data. Check its quotes"],
    ),
    (
        "firstName,lastName,phoneNumber\nTest,User,+916366821717\nJordan,Lee,Jr.,+14155550123\n",
        [
            "Row 3 has 4 values but the header has 3 columns: put values that contain commas in double "
            'quotes ("Lee, Jr.").'
        ],
    ),
    (
        "firstName,lastName,mobile\nTest,User,+916366821717\n",
        [
            "The CSV has no phoneNumber column (its columns: firstName, lastName, mobile): add one, or set "
            "phoneNumberColumnName to the column that holds the numbers."
        ],
    ),
    (
        "firstName,lastName,phoneNumber\nA,B,+916366821717\nC,D,6366821717\nE,F,\nG,H,+1 415 555 0123\nI,J,+1-415-555-0123\n",
        [
            "Row 3: '6366821717' is not a valid E.164 phone number: write it with the country code, "
            "e.g. +14155550123.",
            "Row 4 has no phoneNumber: fill it in or delete the row.",
            "Row 6 repeats +14155550123 from row 5: numbers must be unique within an audience; delete the "
            "duplicate row.",
        ],
    ),
    ("", ["The CSV is empty: its first line must be a header such as firstName,lastName,phoneNumber."]),
    (
        "firstName,lastName,phoneNumber\n\n",
        [
            "The CSV has a header but no contacts: add one row per contact under firstName,lastName,phoneNumber."
        ],
    ),
    ("firstName,,phoneNumber\nA,B,+14155550123\n", ["Column 2 of the CSV header has no name"]),
    (
        "phoneNumber,phoneNumber\n+14155550123,+14155550124\n",
        ["The CSV header repeats phoneNumber: column names must be unique."],
    ),
    (
        "firstName,phoneNumber\nJos\xe9,+14155550123\n".encode("latin-1"),
        ["The CSV is not UTF-8 text: save it as CSV UTF-8 and upload it again."],
    ),
]


@pytest.mark.parametrize(("csv_text", "errors"), BAD_UPLOADS)
def test_bad_csv_is_refused_with_every_problem_and_nothing_is_stored(
    client: TestClient, db: Database, org: Org, csv_text: str | bytes, errors: list[str]
) -> None:
    r = upload(client, csv_text)
    assert r.status_code == 400, r.text
    got = r.json()["errors"]
    assert len(got) == len(errors), got
    for message, expected in zip(got, errors, strict=True):
        assert message.startswith(expected), (message, expected)
    assert stored(db, org) == (0, 0)
    assert client.get("/api/v1/audience").json()["data"] == []


def test_many_bad_rows_are_listed_up_to_a_limit(client: TestClient) -> None:
    rows = "\n".join(f"U,{i},not-a-number" for i in range(30))
    errors = upload(client, "firstName,lastName,phoneNumber\n" + rows).json()["errors"]
    assert len(errors) == 21
    assert errors[-1] == "… and 10 more problems like these."


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": None}, "name is required: send it as a form field"),
        ({"name": "   "}, "name is required: send it as a form field"),
        ({"name": "x" * 201}, "name is longer than 200 characters"),
    ],
)
def test_bad_fields_are_refused(
    client: TestClient, db: Database, org: Org, kwargs: dict[str, Any], message: str
) -> None:
    r = upload(client, **kwargs)
    assert r.status_code == 400
    assert r.json()["errors"][0].startswith(message)
    assert stored(db, org) == (0, 0)


def test_not_multipart_or_no_file_says_what_to_send(client: TestClient, db: Database, org: Org) -> None:
    r = client.post("/api/v1/audience", json={"name": "Leads", "phoneNumbers": ["+14155550123"]})
    assert r.status_code == 400
    assert r.json()["errors"] == [
        "POST /audience takes multipart/form-data: a CSV part named file plus the fields name, "
        "phoneNumberColumnName and description (the official SDK's Audience.create sends exactly this)."
    ]
    r = client.post("/api/v1/audience", files={"other": ("x.csv", b"a", "text/csv")}, data={"name": "Leads"})
    assert r.status_code == 400
    assert r.json()["errors"][0].startswith("file is missing: attach the contacts as a CSV part named file")
    assert stored(db, org) == (0, 0)


# ---------------------------------------------------------------------------------------------
# Ownership and deletion


def test_another_organizations_audience_is_404(client: TestClient, other_org: Org) -> None:
    audience_id = create(client)
    for method, path in (
        ("GET", f"/api/v1/audience/{audience_id}"),
        ("GET", f"/api/v1/audience/{audience_id}/members"),
        ("DELETE", f"/api/v1/audience/{audience_id}"),
    ):
        r = client.request(method, path, headers=other_org.headers)
        assert r.status_code == 404
        assert r.json()["errors"] == [
            f"No audience {audience_id} in this organization: list audiences with GET /audience."
        ]
    r = client.post(
        f"/api/v1/audience/{audience_id}/members",
        json={"members": [{"phoneNumber": "+14155550100"}]},
        headers=other_org.headers,
    )
    assert r.status_code == 404
    assert client.get("/api/v1/audience/not-an-id").status_code == 404


def _campaign(client: TestClient, db: Database, org: Org, audience_id: str) -> str:
    with db.write() as conn:
        row, _ = number_store.add_number(conn, org.id, "+14155550100")
    agent_id = client.post("/api/v1/agent", json={"name": "Caller"}).json()["data"]
    r = client.post(
        "/api/v1/campaign",
        json={
            "name": "Spring",
            "agentId": agent_id,
            "audienceId": audience_id,
            "phoneNumberIds": [row["id"]],
        },
    )
    assert r.status_code == 201, r.text
    campaign_id = r.json()["data"]["_id"]
    assert isinstance(campaign_id, str)
    return campaign_id


def test_delete_is_refused_while_a_campaign_uses_it(client: TestClient, db: Database, org: Org) -> None:
    audience_id = create(client)
    campaign_id = _campaign(client, db, org, audience_id)
    for step in ("draft", "start", "pause"):
        if step != "draft":
            assert client.post(f"/api/v1/campaign/{campaign_id}/{step}").status_code in (200, 202)
        r = client.delete(f"/api/v1/audience/{audience_id}")
        assert r.status_code == 400
        status = {"draft": "draft", "start": "running", "pause": "paused"}[step]
        assert r.json()["errors"] == [
            f"Audience {audience_id} is used by campaign(s) 'Spring' ({campaign_id}, {status}): stop them "
            "(POST /campaign/{id}/stop) or delete them (DELETE /campaign/{id}) first."
        ]
    assert stored(db, org) == (1, 2)
    assert client.post(f"/api/v1/campaign/{campaign_id}/stop").status_code == 200

    r = client.delete(f"/api/v1/audience/{audience_id}")  # a completed campaign lets go
    assert r.status_code == 200
    assert AudienceIdDelete200Response.from_dict(r.json()) is not None
    assert r.json() == {"status": True, "data": [audience_id]}
    assert client.get(f"/api/v1/audience/{audience_id}").status_code == 404
    assert client.get("/api/v1/audience").json()["data"] == []
    assert stored(db, org) == (1, 0)  # the row stays for the campaign's history; members are gone
    campaign = client.get(f"/api/v1/campaign/{campaign_id}").json()["data"]["campaign"]
    assert campaign["audience"] == {"_id": audience_id, "name": "Spring leads"}
    assert client.delete(f"/api/v1/audience/{audience_id}").status_code == 404


def test_delete_after_the_campaign_is_deleted(client: TestClient, db: Database, org: Org) -> None:
    audience_id = create(client)
    campaign_id = _campaign(client, db, org, audience_id)
    assert client.delete(f"/api/v1/campaign/{campaign_id}").status_code == 200
    assert client.delete(f"/api/v1/audience/{audience_id}").status_code == 200
    with db.read() as conn:
        assert campaign_store.get_campaign(conn, org.id, campaign_id) is not None
