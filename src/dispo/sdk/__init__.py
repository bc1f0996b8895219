"""``dispo.sdk``: a Python client for Dispo, compatible with the Atoms ``smallestai`` SDK (4.3.1).

Code written against ``smallestai.atoms`` runs after swapping the imports::

    from dispo.sdk import Call  # was: from smallestai.atoms.call import Call

    call = Call()  # DISPO_BASE_URL / DISPO_API_KEY, else SMALLEST_BASE_URL / SMALLEST_API_KEY
    for log in call.iter_calls(status="completed", date_from="7 days ago"):
        print(log["callId"], log["duration"])

Built on httpx; every non-2xx answer raises a ``DispoAPIError`` subclass with the server's message.
See docs/sdk.md.
"""

from dispo.sdk._client import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, BaseClient, ResponseDict
from dispo.sdk._errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    DispoAPIError,
    DispoConnectionError,
    DispoSDKError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from dispo.sdk.atoms import AtomsClient
from dispo.sdk.audience import Audience
from dispo.sdk.call import Call
from dispo.sdk.campaign import Campaign

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "AtomsClient",
    "Audience",
    "AuthenticationError",
    "BadRequestError",
    "BaseClient",
    "Call",
    "Campaign",
    "ConflictError",
    "DispoAPIError",
    "DispoConnectionError",
    "DispoSDKError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseDict",
    "ServerError",
]
