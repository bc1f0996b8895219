"""Checks every JSON body gets before a route looks inside it."""

from __future__ import annotations

from typing import Any

from dispo.errors import ValidationFailed


def json_object(body: Any) -> dict[str, Any]:
    """The body as a JSON object, with no NUL characters anywhere in it.

    PostgreSQL cannot store NUL in text and no real value contains one, so refusing it here
    keeps both databases answering alike (a clear 400 instead of a driver error).
    """
    if not isinstance(body, dict):
        raise ValidationFailed('The request body must be a JSON object, e.g. {"name": "Sales agent"}.')
    _reject_nul(body, "body")
    return body


def _reject_nul(value: Any, where: str) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValidationFailed(f"{where} contains a NUL character (\\u0000): remove it.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _reject_nul(key, where)
            _reject_nul(item, f"{key}" if where == "body" else f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _reject_nul(item, f"{where}[{i}]")
