"""The error tree. Each error knows its HTTP status and says what to do about it.

    DispoError
    ├── BadRequest (400)
    │   └── ValidationFailed (400)    request body or query failed validation
    ├── DatasetError (400)            an evaluation file cannot be read; ``errors`` lists FILE:LINE
    ├── Unauthorized (401)            missing or unknown API key
    ├── Forbidden (403)
    ├── NotFound (404)                also for another organization's resources
    ├── RequestTimeout (408)          the request's body did not arrive in time
    ├── Conflict (409)
    ├── PayloadTooLarge (413)         the request's body is over the configured cap
    ├── RateLimited (429)             too many requests: wait ``retry_after`` seconds
    ├── QueueConfigError (500)        ``DISPO_QUEUE_URL`` is not a queue Dispo knows
    ├── AnalysisFailed (500)          an in-process analysis (``rerun --inline``) failed for good
    ├── ProviderError (503)           a telephony provider could not be found or configured
    ├── SpeechError (503)             a speech backend (STT or TTS) could not be loaded or did not answer
    └── LLMError (503)                the model could not be loaded or did not answer
        ├── ModelCrashed (503)        the model's worker process died (segfault, SIGKILL, out of
        │                             memory) with this call in flight; a fresh one takes the next
        └── ModelTimedOut (503)       no answer within DISPO_LLM_CALL_TIMEOUT_SECONDS; worker replaced

Every public error Dispo raises is defined here, whichever module raises it; the modules that
raise them import them from here (and re-export them where they always have:
``from dispo.llm import LLMError``, ``from dispo.telephony import ProviderError``,
``from dispo.evaluation import DatasetError``, ...). This module imports nothing from Dispo, so any
module can import it.

Modules also keep private exceptions for internal control flow (``_Died``, ``_TimedOut`` in
:mod:`dispo.llm.worker`, ``_Refused`` in :mod:`dispo.api.guard`, ``_Permanent`` in
:mod:`dispo.analytics.lifecycle`, ...): they are signals between functions of one module, caught
there, and never leave it, so they are not part of this tree.

The SDK's exceptions (:mod:`dispo.sdk._errors`) are the client's own tree, mirroring the official
SDK's; they are raised on the client side from the server's answers, and are not part of this tree.

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


class DatasetError(DispoError):
    """The evaluation file cannot be read; ``errors`` lists each problem as ``FILE:LINE: what``."""

    status_code = 400


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


class QueueConfigError(DispoError):
    """``DISPO_QUEUE_URL`` is not a queue Dispo knows."""


class AnalysisFailed(DispoError):
    """An analysis that was run in process (``dispo analytics rerun --inline``) failed for good."""

    status_code = 500


class ProviderError(DispoError):
    """A provider could not be found or configured."""

    status_code = 503


class SpeechError(DispoError):
    """A speech backend (speech-to-text or text-to-speech) could not be loaded or did not answer."""

    status_code = 503


class LLMError(DispoError):
    """The model could not be loaded or did not answer."""

    status_code = 503


class ModelCrashed(LLMError):
    """The process running the model died (a segfault in native code, SIGKILL, the OOM killer).

    Raised in the caller whose request was in flight; the supervisor starts a fresh process for the
    next call (see :mod:`dispo.llm.worker`), so this fails one call, not the server.
    """


class ModelTimedOut(LLMError):
    """The model did not answer within ``DISPO_LLM_CALL_TIMEOUT_SECONDS``; its process was stopped."""


__all__ = [
    "AnalysisFailed",
    "BadRequest",
    "Conflict",
    "DatasetError",
    "DispoError",
    "Forbidden",
    "LLMError",
    "ModelCrashed",
    "ModelTimedOut",
    "NotFound",
    "PayloadTooLarge",
    "ProviderError",
    "QueueConfigError",
    "RateLimited",
    "RequestTimeout",
    "SpeechError",
    "Unauthorized",
    "ValidationFailed",
]
