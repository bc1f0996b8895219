"""Phone numbers: ``GET /product/phone-numbers``, DISPO_PHONE_NUMBERS provisioning, ``dispo numbers``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pydantic
import pytest
from fastapi.testclient import TestClient
from smallestai.atoms.models import ProductPhoneNumbersGet200Response
from typer.testing import CliRunner

from dispo.bootstrap import prepare
from dispo.cli import app as cli_app
from dispo.config import Settings, get_settings
from dispo.phones import country_of, parse_list, to_e164
from dispo.store import orgs
from dispo.store import phone_numbers as store
from dispo.store.database import Database
from tests.conftest import Org

runner = CliRunner()


def test_to_e164_normalises_and_refuses() -> None:
    assert to_e164("+1 (415) 555-0123") == "+14155550123"
    assert to_e164("14155550123") == "+14155550123"
    assert to_e164("0091 63668 21717") == "+916366821717"
    for bad in ("", "abc", "+1415555", "+15550100000", "4155550123x", "+999123456"):
        assert to_e164(bad) is None, bad
    assert country_of("+916366821717") == "IN"
    assert parse_list(" +14155550123, ,+1 415 555 0123,+916366821717") == ["+14155550123", "+916366821717"]
    with pytest.raises(ValueError, match=r"'abc' is not a valid phone number: write numbers in E.164"):
        parse_list("+14155550123,abc")


def test_setting_is_normalised_and_a_bad_number_names_itself() -> None:
    settings = Settings(phone_numbers="+1 415 555 0123,+916366821717")
    assert settings.phone_numbers == "+14155550123,+916366821717"
    assert settings.phone_number_list == ["+14155550123", "+916366821717"]
    # The default: one number of the 555-01xx range kept for fiction, so `make run` can place test calls.
    assert Settings().phone_number_list == ["+14155550100"]
    assert Settings(phone_numbers="").phone_number_list == []
    with pytest.raises(pydantic.ValidationError, match=r"phone_numbers[\s\S]*'\+1415' is not a valid phone"):
        Settings(phone_numbers="+1415")


def test_list_is_empty_then_shows_numbers_in_the_atoms_shape(
    client: TestClient, db: Database, org: Org
) -> None:
    assert client.get("/api/v1/product/phone-numbers").json() == {"status": True, "data": []}
    with db.write() as conn:
        store.add_number(conn, org.id, "+14155550100")
        store.add_number(conn, org.id, "+916366821717", provider="twilio")
    body = client.get("/api/v1/product/phone-numbers").json()
    # Both were added in one transaction, often in the same millisecond: the list orders by
    # createdAt, then by id, which does not follow insertion order within one second.
    first, second = sorted(body["data"], key=lambda n: n["attributes"]["provider"] != "test")
    assert set(first) == {"_id", "productType", "isActive", "agentId", "attributes", "createdAt", "updatedAt"}
    assert first["productType"] == "telephony"
    assert first["isActive"] is True
    assert first["agentId"] is None
    assert first["attributes"] == {"provider": "test", "phoneNumber": "+14155550100", "countryCode": "US"}
    assert second["attributes"] == {"provider": "twilio", "phoneNumber": "+916366821717", "countryCode": "IN"}
    assert re.fullmatch(r"[0-9a-f]{24}", first["_id"])
    model = ProductPhoneNumbersGet200Response.from_dict(body)  # what the generated client reads
    assert model is not None
    assert model.data is not None
    assert model.data[0].attributes is not None
    assert model.data[0].attributes.phone_number == "+14155550100"
    assert client.get("/atoms/v1/product/phone-numbers").json() == body


def test_numbers_of_another_organization_are_not_listed(
    client: TestClient, db: Database, other_org: Org
) -> None:
    with db.write() as conn:
        store.add_number(conn, other_org.id, "+14155550100")
    assert client.get("/api/v1/product/phone-numbers").json()["data"] == []


def test_add_number_is_idempotent_and_assigns_an_agent(db: Database, org: Org) -> None:
    with db.write() as conn:
        row, created = store.add_number(conn, org.id, "+14155550100")
        again, created_again = store.add_number(conn, org.id, "+14155550100", agent_id=None)
        assert (created, created_again) == (True, False)
        assert again["id"] == row["id"]
        assert len(store.list_numbers(conn, org.id)) == 1


def test_every_start_provisions_the_configured_numbers_into_every_org(empty_db_url: str) -> None:
    db = Database(empty_db_url)
    try:
        settings = Settings(phone_numbers="+14155550100,+916366821717")
        boot = prepare(settings, db)
        with db.write() as conn:
            second_org = orgs.create_org(conn, "Second")
        prepare(settings, db)
        prepare(Settings(phone_numbers="+14155550100,+14155550123"), db)  # one more number
        with db.read() as conn:
            first = [r["phone_number"] for r in store.list_numbers(conn, boot.org_id)]
            second = [r["phone_number"] for r in store.list_numbers(conn, second_org)]
            providers = {r["provider"] for r in store.list_numbers(conn)}
        # Numbers added within one millisecond have no defined order among themselves.
        assert sorted(first) == sorted(["+14155550100", "+916366821717", "+14155550123"])
        assert sorted(second) == sorted(first)
        assert providers == {"test"}
    finally:
        db.dispose()


# ---------------------------------------------------------------------------------------------
# dispo numbers add | list


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("DISPO_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DISPO_DATABASE_URL", raising=False)
    monkeypatch.setenv("DISPO_PHONE_NUMBERS", "")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def _run(*args: str, code: int = 0) -> str:
    result = runner.invoke(cli_app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_cli_numbers_add_and_list(env: Path) -> None:
    org_id = re.search(r"Organization ([0-9a-f]{24})", _run("orgs", "create", "Acme"))
    assert org_id
    out = _run("numbers", "add", "+1 415 555 0123")
    assert re.search(r"Added \+14155550123 \(id [0-9a-f]{24}\) in organization", out)
    assert "Already there: +14155550123" in _run("numbers", "add", "+14155550123")
    listing = _run("numbers", "list")
    assert "+14155550123" in listing
    assert "test" in listing
    assert "US" in listing
    db = Database(f"sqlite:///{env / 'dispo.db'}")
    with db.write() as conn:
        from dispo.store import agents

        agent_id = agents.create_agent(conn, org_id.group(1), {"name": "Inbound"})
    _run("numbers", "add", "+14155550123", "--agent", agent_id)
    with db.read() as conn:
        (row,) = store.list_numbers(conn, org_id.group(1))
    assert row["agent_id"] == agent_id
    db.dispose()


def test_cli_numbers_add_refuses_bad_input(env: Path) -> None:
    _run("orgs", "create", "Acme")
    out = _run("numbers", "add", "12345", code=1)
    assert "'12345' is not a valid phone number: write it in E.164 with the country code" in out
    out = _run("numbers", "add", "+14155550123", "--agent", "f" * 24, code=1)
    assert f"No agent {'f' * 24}" in out
    out = _run("numbers", "add", "+14155550123", "--org", "0" * 24, code=1)
    assert "No organization" in out
    assert "+14155550123" not in _run("numbers", "list")


def test_cli_orgs_create_gives_the_new_org_the_configured_numbers(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPO_PHONE_NUMBERS", "+14155550100")
    get_settings.cache_clear()
    _run("orgs", "create", "Acme")
    assert "+14155550100" in _run("numbers", "list")
