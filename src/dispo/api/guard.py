"""The request guard: what every request must pass before a route sees it.

One ASGI middleware, in this order, each refusal in the Atoms envelope and saying what to do:

1. **Size.** A body over ``max_body_bytes`` (``max_upload_bytes`` for multipart uploads) is 413,
   from ``Content-Length`` before a byte of it is read, or while it streams (chunked).
2. **Rate limits** (:mod:`dispo.api.ratelimit`): per client address, per API key, and tighter for
   the operations that start work (calls, chats, re-analysis). 429 with ``Retry-After``.
3. **The key, before the body.** A request with a body to the API is authenticated before its
   body is read, so a client without a valid key cannot make the server read (or store) anything.
4. **Time.** A body that has not all arrived ``request_body_timeout_seconds`` after the headers
   is 408. (Headers that never finish are `dispo serve`'s business: :mod:`dispo.api.server`.)
5. **JSON that can be stored and served back.** Every JSON body is parsed and walked: integers
   must fit in 64 bits, numbers be finite, text be valid Unicode without NUL, and nesting stay
   within :data:`MAX_DEPTH` levels. Anything else is a 400 naming the field (``variables.n``).
   Responses are encoded with orjson, which refuses exactly those values, so a value let through
   here would make every later read of it fail. WebSocket frames get the same check.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import anyio
from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispo.api.auth import authenticate
from dispo.api.ratelimit import RateLimits
from dispo.api.responses import error
from dispo.config import Settings
from dispo.errors import DispoError, PayloadTooLarge, RateLimited, RequestTimeout, ValidationFailed
from dispo.store.orgs import hash_key

MAX_DEPTH = 64  # orjson encodes 255 levels; a stored value is served a few levels down a response
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
ORG_ID_SCOPE_KEY = "dispo.org_id"  # the organization the guard authenticated (see deps.get_org_id)
JSON_BODY_SCOPE_KEY = "dispo.json_body"  # the body the guard parsed and checked (bodies.read_json)

_EXPENSIVE = re.compile(r"^/(?:api|atoms)/v1/conversation/(?:reanalyze|outbound|chat(?:/[^/]+)?)/?$")
# Up to 100,000 audience members, or 1,000 imported calls, a request.
_BULK = re.compile(r"^/(?:api|atoms)/v1/(?:audience/[^/]+/members|conversation/import(?:/batch)?)/?$")
_EXEMPT_PATHS = ("/health",)


# ---------------------------------------------------------------------------------------------
# JSON that round-trips


def parse_json_body(raw: bytes) -> Any:
    """``raw`` parsed as the routes parse it (the standard library), or ``ValidationFailed``."""
    try:
        value = json.loads(raw, parse_int=_parse_int)
    except RecursionError:
        raise ValidationFailed(_too_deep("the request body")) from None
    except ValueError:
        raise ValidationFailed(
            "The request body is not valid JSON: check quotes and commas, and send "
            "Content-Type: application/json."
        ) from None
    problem = json_problem(value)
    if problem is not None:
        raise ValidationFailed(problem)
    return value


class _HugeInt:
    """An integer literal of more digits than any 64-bit integer has, kept unconverted (``int()``
    of thousands of digits is slow, and refused past 4300) so that its field can be named."""

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _parse_int(text: str) -> int | _HugeInt:
    digits = len(text) - (text[0] == "-")
    return _HugeInt(digits) if digits > 19 else int(text)


def json_problem(value: Any, *, what: str = "the request body") -> str | None:
    """Why ``value`` (parsed JSON) cannot be stored and served back, naming the field; or None."""
    # Iterative, so that depth costs no Python stack; paths are linked (parent, segment) pairs,
    # rendered only for the one value reported.
    stack: list[tuple[Any, Any, int]] = [(value, None, 1)]
    while stack:
        item, path, depth = stack.pop()
        kind = type(item)
        if kind is dict:
            if depth > MAX_DEPTH:
                return _too_deep(_render(path, what))
            for key, child in item.items():
                problem = _text_problem(key)
                if problem is not None:
                    return f"A field name in {_render(path, what)} {problem}"
                stack.append((child, (path, key), depth + 1))
        elif kind is list:
            if depth > MAX_DEPTH:
                return _too_deep(_render(path, what))
            for i, child in enumerate(item):
                stack.append((child, (path, i), depth + 1))
        elif kind is str:
            problem = _text_problem(item)
            if problem is not None:
                return f"{_render(path, what)} {problem}"
        elif kind is int:
            if not INT_MIN <= item <= INT_MAX:
                return (
                    f"{_render(path, what)} is an integer of {item.bit_length()} bits: numbers must fit in "
                    f"64 bits ({INT_MIN} to {INT_MAX}); send a smaller number, or the value as a string."
                )
        elif kind is _HugeInt:
            return (
                f"{_render(path, what)} is an integer of {item.digits} digits: numbers must fit in 64 bits "
                f"({INT_MIN} to {INT_MAX}); send a smaller number, or the value as a string."
            )
        elif kind is float and not math.isfinite(item):
            return (
                f"{_render(path, what)} is not a finite number (NaN, Infinity or beyond ±1.8e308): "
                "send a finite number, or null."
            )
    return None


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000): remove it."
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return (
                "contains an unpaired surrogate (a lone \\ud800-\\udfff escape), which is not Unicode "
                "text: send valid UTF-8, or escape both halves of a surrogate pair."
            )
    return None


def _too_deep(where: str) -> str:
    return (
        f"The request body nests objects and arrays more than {MAX_DEPTH} levels deep (at {where}): "
        "flatten it."
    )


def _render(path: Any, what: str) -> str:
    """``variables.n``, ``members[3].data.name``: the field a linked path names."""
    segments: list[Any] = []
    while path is not None:
        path, segment = path
        segments.append(segment)
    if not segments:
        return what
    out = ""
    for segment in reversed(segments):
        if isinstance(segment, int):
            out += f"[{segment}]"
        else:
            text = segment.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")
            out += ("." if out else "") + (text[:40] + "…" if len(text) > 40 else text)
    return out if len(out) <= 200 else out[:100] + "…" + out[-60:]


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI parses this body as JSON: no Content-Type, application/json or */*+json."""
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


# ---------------------------------------------------------------------------------------------
# The middleware


class _Refused(Exception):
    """A refusal decided inside the guard, answered as the envelope."""

    def __init__(self, exc: DispoError) -> None:
        super().__init__(exc.message)
        self.exc = exc


class _ClientGone(Exception):
    """The client disconnected while sending its body: nobody to answer."""


class RequestGuard:
    """ASGI middleware: see the module's docstring. Reads the app's db and key cache from
    ``scope["app"].state`` (set by ``create_app``)."""

    def __init__(self, app: ASGIApp, settings: Settings, prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.settings = settings
        self.prefixes = tuple(p.rstrip("/") + "/" for p in prefixes)
        self.limits = RateLimits(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # --- HTTP -------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        content_type = headers.get("content-type")
        length = _content_length(headers)
        has_body = "chunked" in headers.get("transfer-encoding", "").lower() or bool(length)
        body_read = False
        body = b""
        try:
            upload = _is_upload(content_type, scope["path"])
            cap = self.settings.max_upload_bytes if upload else self.settings.max_body_bytes
            if length is not None and length > cap:
                raise _Refused(_too_large(cap, upload))
            await self._rate_limit(scope, headers.get("authorization"), scope["method"] == "POST")
            if has_body and scope["path"].startswith(self.prefixes):
                state = scope["app"].state
                scope[ORG_ID_SCOPE_KEY] = await authenticate(
                    headers.get("authorization"), state.db, state.key_cache
                )
            if has_body:
                body = await self._read_body(receive, cap, upload)
                body_read = True
                if body and _is_json(content_type):
                    scope[JSON_BODY_SCOPE_KEY] = parse_json_body(body)  # parsed once, for the route
        except _ClientGone:
            return
        except (_Refused, DispoError) as exc:
            refused = exc if isinstance(exc, _Refused) else _Refused(exc)
            # A body left unread would be taken for the next request: close the connection instead.
            await _answer(refused, scope, receive, send, close=has_body and not body_read)
            return
        await self.app(scope, _replay(body, receive) if has_body else receive, send)

    async def _read_body(self, receive: Receive, cap: int, upload: bool) -> bytes:
        chunks: list[bytes] = []
        size = 0
        timeout = self.settings.request_body_timeout_seconds
        try:
            with anyio.fail_after(timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _ClientGone
                    chunk: bytes = message.get("body", b"")
                    size += len(chunk)
                    if size > cap:
                        raise _Refused(_too_large(cap, upload))
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            raise _Refused(
                RequestTimeout(
                    f"The request body did not arrive within {timeout:g} seconds of its headers: send "
                    "the whole body at once (and a Content-Length that matches it), then retry."
                )
            ) from None
        return b"".join(chunks)

    async def _rate_limit(self, scope: Scope, authorization: str | None, may_be_expensive: bool) -> None:
        limits = self.limits
        if not limits.enabled or scope["path"] in _EXEMPT_PATHS:
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        secret = _bearer(authorization)
        checks: list[tuple[Any, tuple[str, ...], str]] = [
            (limits.per_address, ("address", address), "from this address"),
        ]
        if secret:
            key_id = hash_key(secret)[:32]
            checks.append((limits.per_key, ("key", key_id), "with this API key"))
            if may_be_expensive and _EXPENSIVE.match(scope["path"]):
                checks.append(
                    (
                        limits.expensive,
                        ("expensive", key_id),
                        "that start calls, chats or re-analysis with this API key",
                    )
                )
        for items, identifiers, what in checks:
            wait = await self._check(items, identifiers)
            if wait is not None:
                shown = ", ".join(str(i) for i in items)
                raise _Refused(
                    RateLimited(
                        f"Too many requests {what} (the limit is {shown}): wait {wait} s (Retry-After) "
                        "and retry, and pace requests under the limit.",
                        retry_after=wait,
                    )
                )

    async def _check(self, items: Any, identifiers: tuple[str, ...]) -> int | None:
        if self.limits.in_memory:
            return self.limits.check(items, *identifiers)
        # Redis: a network round trip, kept off the event loop.
        return await anyio.to_thread.run_sync(lambda: self.limits.check(items, *identifiers))

    # --- WebSocket --------------------------------------------------------------------------

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        query = QueryParams(scope.get("query_string", b"").decode("latin-1"))
        authorization = headers.get("authorization")
        if not authorization and query.get("apiKey"):
            authorization = f"Bearer {query['apiKey']}"
        try:
            await self._rate_limit(scope, authorization, True)
        except _Refused as refused:
            # The chat socket's own way of refusing: accept, say why, close with 4000 + status.
            message = await receive()
            if message["type"] != "websocket.connect":
                return
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": _ws_error(refused.exc.errors)})
            await send({"type": "websocket.close", "code": 4000 + refused.exc.status_code % 1000})
            return
        secret = _bearer(authorization)
        key_id = hash_key(secret)[:32] if secret else None
        per_message = self.limits.expensive if _EXPENSIVE.match(scope["path"].removesuffix("/ws")) else ()

        async def guarded_receive() -> Message:
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    return message
                problem = _frame_problem(message)
                if problem is None and key_id is not None and per_message:
                    wait = await self._check(per_message, ("expensive", key_id))
                    if wait is not None:
                        problem = (
                            f"Too many messages (the limit is {', '.join(str(i) for i in per_message)}): "
                            f"wait {wait} s, then send it again."
                        )
                if problem is None:
                    return message
                await send({"type": "websocket.send", "text": _ws_error([problem])})

        await self.app(scope, guarded_receive, send)


def _frame_problem(message: Message) -> str | None:
    raw = message.get("text")
    if raw is None:
        raw = message.get("bytes")
    if raw is None:
        return None
    try:
        value = json.loads(raw, parse_int=_parse_int)
    except RecursionError:
        return _too_deep("the message")
    except ValueError:
        return 'Send JSON frames: {"type": "message", "content": "…"} or {"type": "hangup"}.'
    return json_problem(value, what="the message")


def _ws_error(errors: list[str]) -> str:
    return json.dumps({"type": "error", "errors": errors})


# ---------------------------------------------------------------------------------------------
# Helpers


def _content_length(headers: Headers) -> int | None:
    raw = headers.get("content-length")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None  # the HTTP parser refuses these before we see them


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, secret = authorization.partition(" ")
    secret = secret.strip()
    return secret if scheme.lower() == "bearer" and secret else None


def _is_upload(content_type: str | None, path: str) -> bool:
    """Uploads (multipart, and audience members in bulk) may be larger than other bodies."""
    multipart = bool(content_type) and str(content_type).lower().startswith("multipart/form-data")
    return multipart or _BULK.match(path) is not None


def _too_large(cap: int, upload: bool) -> PayloadTooLarge:
    shown = f"{cap / (1024 * 1024):g} MiB" if cap >= 1024 * 1024 else f"{cap} bytes"
    if upload:
        return PayloadTooLarge(
            f"The upload is larger than {shown}: split it and send it in parts, e.g. create the "
            "audience from the first part and add the rest with POST /audience/{id}/members, or "
            "import fewer calls per request (the server's DISPO_MAX_UPLOAD_BYTES sets the cap)."
        )
    return PayloadTooLarge(
        f"The request body is larger than {shown}: send less per request (e.g. fewer members or "
        "calls at a time; the server's DISPO_MAX_BODY_BYTES sets the cap)."
    )


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then passes through."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answer(refused: _Refused, scope: Scope, receive: Receive, send: Send, *, close: bool) -> None:
    exc = refused.exc
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if close:
        headers["Connection"] = "close"
    response = error(exc.status_code, exc.errors, headers or None)
    await response(scope, receive, send)


__all__ = ["MAX_DEPTH", "ORG_ID_SCOPE_KEY", "RequestGuard", "json_problem", "parse_json_body"]
