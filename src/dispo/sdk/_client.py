"""The shared base: where the server is, the API key, one ``httpx.Client``, and the envelope.

Configuration, first match wins:

- base URL: the ``base_url`` argument, ``DISPO_BASE_URL``, ``SMALLEST_BASE_URL``, then
  ``http://127.0.0.1:8000/api/v1`` (a local ``dispo serve``);
- API key: the ``api_key`` argument, ``DISPO_API_KEY``, then ``SMALLEST_API_KEY``.

Reading the ``SMALLEST_*`` variables too means code written for the official ``smallestai``
client keeps working when its imports are switched to ``dispo.sdk``.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from dispo import __version__
from dispo.sdk._errors import DispoAPIError, DispoConnectionError, error_for

DEFAULT_BASE_URL = "http://127.0.0.1:8000/api/v1"
DEFAULT_TIMEOUT = 30.0

Params = Mapping[str, str | int | float]


class ResponseDict(dict[str, Any]):
    """A response envelope ``{"status": true, "data": …}``: a plain ``dict`` that also has attributes.

    ``resp["data"]`` works as with the official helpers, and ``resp.data`` works as with the
    official generated client (whose ``new_agent`` returns a model), so both styles run::

        agent = client.new_agent(name="Sales agent")
        agent.data == agent["data"]  # the new agent's id
    """

    @property
    def data(self) -> Any:
        """The envelope's ``data`` (``None`` if absent)."""
        return self.get("data")

    @property
    def status(self) -> bool:
        """The envelope's ``status``: ``True`` for every response that did not raise."""
        return bool(self.get("status", False))


def resolve_base_url(base_url: str | None) -> str:
    url = base_url or os.environ.get("DISPO_BASE_URL") or os.environ.get("SMALLEST_BASE_URL")
    return (url or DEFAULT_BASE_URL).rstrip("/")


def resolve_api_key(api_key: str | None) -> str:
    return api_key or os.environ.get("DISPO_API_KEY") or os.environ.get("SMALLEST_API_KEY") or ""


def segment(value: str) -> str:
    """One path segment, percent-encoded, so an id can never reach another route."""
    return quote(str(value), safe="")


class BaseClient:
    """Holds the configuration and the connection pool; subclasses add the endpoints.

    Args:
        base_url: e.g. ``"http://127.0.0.1:8000/api/v1"``; see the module docstring for fallbacks.
        api_key: ``sk_…``; without one no ``Authorization`` header is sent and the server says so.
        timeout: seconds (or an ``httpx.Timeout``) for each request.
        transport: an ``httpx.BaseTransport``, e.g. ``httpx.MockTransport(handler)`` in tests.
        http_client: an ``httpx.Client`` to share (you close it); excludes ``transport``/``timeout``.

    Use as a context manager, or call ``close()``, to release pooled connections at once;
    otherwise they are released when the object is garbage-collected.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        if http_client is not None and transport is not None:
            raise ValueError(
                "Give either transport or http_client, not both: set the transport on the client."
            )
        self.base_url = resolve_base_url(base_url)
        self.api_key = resolve_api_key(api_key)
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else _new_http_client(timeout, transport)
        self._parent: BaseClient | None = None  # keeps the owner of a shared pool alive
        if self._owns_http:
            # `call = Call()` is never closed in the Atoms examples: close the pool when the object
            # goes, so no socket is left to the garbage collector (a ResourceWarning).
            weakref.finalize(self, self._http.close)

    def close(self) -> None:
        """Close the connection pool (unless it was passed in as ``http_client``)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": f"dispo-sdk/{__version__}"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
    ) -> ResponseDict:
        """Send one request; return the envelope, or raise the matching ``DispoAPIError``."""
        url = f"{self.base_url}{path}"
        try:
            response = self._http.request(
                method, url, params=params, json=json, data=data, files=files, headers=self._headers()
            )
        except httpx.TransportError as exc:
            raise DispoConnectionError(
                f"Could not reach {url} ({type(exc).__name__}: {exc}). Is the server running "
                "(`dispo serve`), and is the base URL (DISPO_BASE_URL) right?"
            ) from exc
        if response.is_error:
            raise error_for(response)
        try:
            body = response.json()
        except ValueError:
            raise DispoAPIError(
                response.status_code,
                [f"The server answered {method} {url} with a body that is not JSON: {response.text[:200]!r}"],
                response,
            ) from None
        return ResponseDict(body) if isinstance(body, dict) else ResponseDict(status=True, data=body)


def _new_http_client(timeout: float | httpx.Timeout, transport: httpx.BaseTransport | None) -> httpx.Client:
    return httpx.Client(timeout=timeout, transport=transport)
