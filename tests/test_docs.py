"""Docs match the code: every setting documented, every route in the API reference."""

from __future__ import annotations

import re
from pathlib import Path

import dispo
from dispo.api.app import create_app
from dispo.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    for name, field in Settings.model_fields.items():
        assert f"`DISPO_{name.upper()}`" in text, (
            f"DISPO_{name.upper()} is missing from docs/configuration.md"
        )
        assert field.description, f"Settings.{name} has no description"


def test_every_route_is_in_the_api_reference(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    schema = create_app(Settings(data_dir=tmp_path)).openapi()
    for path in schema["paths"]:
        short = path.removeprefix("/api/v1")
        generic = re.sub(r"\{[^}]+\}", "{id}", short)
        assert short in text or generic in text or short.replace("{call_id}", "{callId}") in text, (
            f"{path} is not described in docs/api.md"
        )


def test_readme_shows_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert "make run" in text
    assert "make test" in text


def test_public_api_is_exported() -> None:
    for name in dispo.__all__:
        assert hasattr(dispo, name)
    assert sorted(dispo.__all__) == dispo.__all__
    assert issubclass(dispo.NotFound, dispo.DispoError)
    assert dispo.NotFound.status_code == 404
