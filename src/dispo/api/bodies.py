"""Reading a JSON request body. Routes validate it with ``dispo.api.schemas.parse`` and declare
its model with ``dispo.api.contract.json_body``; reading it here, not as a FastAPI body
parameter, lets a route answer 404 for another organization's object before it looks inside.

The request guard (:mod:`dispo.api.guard`) has already parsed and checked every JSON body (values
that round-trip through the response encoder, the field named otherwise); the route takes that
value rather than parsing the body a second time.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from dispo.api.guard import JSON_BODY_SCOPE_KEY, parse_json_body
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
    if JSON_BODY_SCOPE_KEY in request.scope:
        return request.scope[JSON_BODY_SCOPE_KEY]
    return parse_json_body(raw)  # an app without the guard (none today) gets the same checks


JsonBody = Annotated[Any, Depends(read_json)]
