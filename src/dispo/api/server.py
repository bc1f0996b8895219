"""How `dispo serve` runs uvicorn: with a deadline for each request's head.

uvicorn times out idle keep-alive connections, but not a request whose line and headers arrive
slowly or never finish: a client can hold a connection (and its slot) open forever by sending
half a request. Our HTTP protocol is uvicorn's own (httptools where installed, else h11) with a
timer: armed when a connection opens and when the first byte of a next request arrives, disarmed
when the head is complete. When it fires, the client gets 408 (if it had started a request) and
the connection is closed. Slow *bodies* are the request guard's business (:mod:`dispo.api.guard`).
"""

from __future__ import annotations

import asyncio
import logging
from functools import lru_cache
from typing import Any

import orjson

from dispo.config import Settings

log = logging.getLogger("dispo.api")


def server_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``/``uvicorn.Config`` beyond host, port and logging."""
    return {
        "http": head_timeout_protocol(settings.request_header_timeout_seconds),
        "ws_max_size": settings.max_body_bytes,  # a WebSocket frame is capped like a request body
    }


def _timeout_response(seconds: float) -> bytes:
    body = orjson.dumps(
        {
            "status": False,
            "errors": [
                f"The request's headers did not all arrive within {seconds:g} seconds: send the "
                "request line and headers at once, then retry."
            ],
        }
    )
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class HeadTimeout:
    """Mixin for a uvicorn HTTP protocol class (see the module's docstring)."""

    head_timeout: float = 10.0

    # Provided by the uvicorn protocol this is mixed into.
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    cycle: Any

    _head_timer: asyncio.TimerHandle | None = None
    _head_started = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        if self._waiting_for_head():
            self._head_started = True
            if self._head_timer is None:
                self._arm_head_timer()  # the first byte of a next request on a kept-alive connection
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not cycle or self._upgraded():
            self._disarm_head_timer()  # the head is complete (or the connection is a WebSocket now)
            self._head_started = False

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)  # type: ignore[misc]

    def _waiting_for_head(self) -> bool:
        return self.cycle is None or bool(self.cycle.response_complete)

    def _upgraded(self) -> bool:
        transport = getattr(self, "transport", None)
        return transport is not None and transport.get_protocol() is not self

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        transport = getattr(self, "transport", None)
        if transport is None or transport.is_closing() or self._upgraded() or not self._waiting_for_head():
            return
        if self._head_started:
            log.info("Closing a connection whose request head took over %gs", self.head_timeout)
            transport.write(_timeout_response(self.head_timeout))
        transport.close()


@lru_cache(maxsize=8)
def head_timeout_protocol(seconds: float, implementation: str = "auto") -> type:
    """uvicorn's HTTP protocol with a ``seconds`` deadline for each request's head.
    ``implementation``: ``auto`` (httptools if installed, as uvicorn picks, else h11), ``httptools``
    or ``h11``."""
    base: type | None = None
    if implementation in ("auto", "httptools"):
        try:
            import httptools  # noqa: F401
            from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

            base = HttpToolsProtocol
        except ImportError:  # pragma: no cover - uvicorn[standard] installs httptools
            if implementation == "httptools":
                raise
    if base is None:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        base = H11Protocol
    return type(f"HeadTimeout{base.__name__}", (HeadTimeout, base), {"head_timeout": seconds})


__all__ = ["HeadTimeout", "head_timeout_protocol", "server_options"]
