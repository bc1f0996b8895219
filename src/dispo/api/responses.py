"""The Atoms envelope: ``{"status": true, "data": …}`` and ``{"status": false, "errors": […]}``.

Responses are serialised with orjson straight from plain dicts: no response-model validation on
the hot path (the shapes are pinned by tests against the official SDK's models instead).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def ok(data: Any, status_code: int = 200) -> JSON:
    return JSON({"status": True, "data": data}, status_code=status_code)


def error(status_code: int, errors: list[str], headers: dict[str, str] | None = None) -> JSON:
    return JSON({"status": False, "errors": errors}, status_code=status_code, headers=headers)
