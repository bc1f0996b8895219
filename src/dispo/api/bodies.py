"""Reading a JSON request body. Routes validate it with ``dispo.api.schemas.parse`` and declare
its model with ``dispo.api.contract.json_body``; reading it here, not as a FastAPI body
parameter, lets a route answer 404 for another organization's object before it looks inside."""

from __future__ import annotations

import json
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request

from dispo.errors import ValidationFailed


async def read_json(request: Request) -> Any:
    """The request body parsed as JSON (a 400 that says what to send if it is not)."""
    raw = await request.body()
    if not raw.strip():
        raise ValidationFailed("A JSON request body is required.")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and not (content_type == "application/json" or content_type.endswith("+json")):
        raise ValidationFailed(
            f"The request body is {content_type}: send JSON with Content-Type: application/json."
        )
    try:
        # orjson, as responses are rendered with it: what is accepted can be answered back.
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        json.loads(raw)
    except (ValueError, RecursionError):
        raise ValidationFailed(
            "The request body is not valid JSON: check quotes and commas, and send "
            "Content-Type: application/json."
        ) from None
    raise ValidationFailed(
        "The request body has a number JSON cannot carry safely (an integer beyond 64 bits, NaN or "
        "Infinity) or is nested too deeply: send numbers within range, as plain JSON."
    )


JsonBody = Annotated[Any, Depends(read_json)]
