"""What the SDK raises. Every non-2xx answer becomes a typed exception carrying the server's words.

Our exception hierarchy::

    DispoSDKError                   anything this SDK raises on purpose
    ├── DispoConnectionError        no answer: refused, DNS, TLS, timeout
    └── DispoAPIError               the server answered with a non-2xx status
        ├── BadRequestError         400 (and 422): a parameter or the body is wrong
        ├── AuthenticationError     401: missing, unknown or revoked API key
        ├── PermissionDeniedError   403
        ├── NotFoundError           404: also another organization's resources
        ├── ConflictError           409: e.g. archiving an archived agent
        ├── RateLimitError          429: ``retry_after`` says how long to wait
        └── ServerError             5xx

``DispoAPIError`` keeps ``status_code``, ``errors`` (the server's ``errors`` list, verbatim) and
``response`` (the ``httpx.Response``). ``str(exc)`` is the status and the server's messages::

    >>> from dispo.sdk import Call, NotFoundError
    >>> try:
    ...     Call().get_call("CALL-1768807723178-4561d0")
    ... except NotFoundError as exc:
    ...     print(exc.errors[0])
    No call CALL-1768807723178-4561d0 in this organization: check the id, or list calls with GET /conversation.
"""

from __future__ import annotations

import httpx


class DispoSDKError(Exception):
    """Base of every exception the SDK raises on purpose."""


class DispoConnectionError(DispoSDKError):
    """The request never got an HTTP answer (connection refused, DNS failure, timeout, ...)."""


class DispoAPIError(DispoSDKError):
    """The server answered with a non-2xx status.

    Attributes:
        status_code: the HTTP status, e.g. ``404``.
        errors: the server's ``errors`` list, verbatim (the response text if it sent no envelope).
        response: the ``httpx.Response``, for headers and anything else.
    """

    def __init__(self, status_code: int, errors: list[str], response: httpx.Response | None = None) -> None:
        self.status_code = status_code
        self.errors = errors
        self.response = response
        reason = response.reason_phrase if response is not None and response.reason_phrase else ""
        head = f"{status_code} {reason}".rstrip()
        super().__init__(f"{head}: {'; '.join(errors)}" if errors else head)


class BadRequestError(DispoAPIError):
    """400 (or 422): a query parameter or the request body is invalid; ``errors`` names each."""


class AuthenticationError(DispoAPIError):
    """401: the API key is missing, malformed, unknown or revoked."""


class PermissionDeniedError(DispoAPIError):
    """403: the key may not do this."""


class NotFoundError(DispoAPIError):
    """404: no such resource in this organization (or no such endpoint on this server)."""


class ConflictError(DispoAPIError):
    """409: the resource is not in a state that allows this."""


class RateLimitError(DispoAPIError):
    """429: too many requests. ``retry_after`` is the server's ``Retry-After`` in seconds, if given."""

    def __init__(self, status_code: int, errors: list[str], response: httpx.Response | None = None) -> None:
        super().__init__(status_code, errors, response)
        self.retry_after = _retry_after(response)


class ServerError(DispoAPIError):
    """5xx: the server failed; its log has the details."""


_BY_STATUS: dict[int, type[DispoAPIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: BadRequestError,
    429: RateLimitError,
}


def error_for(response: httpx.Response) -> DispoAPIError:
    """The exception for a non-2xx response, with the server's ``errors`` as its message."""
    status = response.status_code
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else DispoAPIError)
    return cls(status, _messages(response), response)


def _messages(response: httpx.Response) -> list[str]:
    """``errors`` from the Atoms envelope; otherwise whatever text the response carried."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return [str(e) for e in errors]
        for key in ("message", "error", "detail"):  # proxies and other servers
            if isinstance(body.get(key), str):
                return [body[key]]
    text = response.text.strip()
    return [text[:1000]] if text else []


def _retry_after(response: httpx.Response | None) -> float | None:
    raw = response.headers.get("retry-after") if response is not None else None
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:  # an HTTP date: rare enough not to parse
        return None


__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "DispoAPIError",
    "DispoConnectionError",
    "DispoSDKError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
]
