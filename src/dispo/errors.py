"""The error tree. Each error knows its HTTP status and says what to do about it.

    DispoError
    ├── BadRequest (400)
    │   └── ValidationFailed (400)    request body or query failed validation
    ├── Unauthorized (401)            missing or unknown API key
    ├── Forbidden (403)
    ├── NotFound (404)                also for another organization's resources
    ├── RequestTimeout (408)          the request's body did not arrive in time
    ├── Conflict (409)
    ├── PayloadTooLarge (413)         the request's body is over the configured cap
    ├── RateLimited (429)             too many requests: wait ``retry_after`` seconds
    └── LLMError (503)                the model could not be loaded or did not answer
        ├── ModelCrashed (503)        the model's worker process died (segfault, SIGKILL, out of
        │                             memory) with this call in flight; a fresh one takes the next
        └── ModelTimedOut (503)       no answer within DISPO_LLM_CALL_TIMEOUT_SECONDS; worker replaced

``LLMError`` and its subclasses live in :mod:`dispo.llm.base` (exported by :mod:`dispo.llm`), next
to the backends that raise them.

The API turns every one of these into ``{"status": false, "errors": [message]}`` with the status
code, so the SDK can raise the matching exception with the server's words.
"""

from __future__ import annotations


class DispoError(Exception):
    """Base of every error Dispo raises on purpose."""

    status_code: int = 500

    def __init__(self, message: str, *, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or [message]


class BadRequest(DispoError):
    status_code = 400


class ValidationFailed(BadRequest):
    """One or more fields are wrong; ``errors`` lists each, naming the field."""


class Unauthorized(DispoError):
    status_code = 401


class Forbidden(DispoError):
    status_code = 403


class NotFound(DispoError):
    status_code = 404


class RequestTimeout(DispoError):
    status_code = 408


class Conflict(DispoError):
    status_code = 409


class PayloadTooLarge(DispoError):
    status_code = 413


class RateLimited(DispoError):
    status_code = 429

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


__all__ = [
    "BadRequest",
    "Conflict",
    "DispoError",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "RequestTimeout",
    "Unauthorized",
    "ValidationFailed",
]
