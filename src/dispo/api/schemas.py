"""The API contract: every request and response body, in one place.

Layered as in the FastAPI full-stack template: ``…Base`` holds what requests and responses share,
``…Create``/``…Update`` what a client sends (unknown fields refused, except on agents, which keep
Atoms' other ``AgentDTO`` fields verbatim), ``…Public`` what the server answers. Wire names are
camelCase (aliases); Python attributes are snake_case.

Request bodies are validated with :func:`parse`, which turns pydantic's errors into the same
fix-it sentences the API has always answered with (``{"status": false, "errors": […]}``, 400).
Responses are still rendered from plain dicts with orjson on the hot paths; the ``…Public``
models describe them in the OpenAPI spec, and tests/test_openapi_contract.py checks real
responses against that description.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SkipValidation,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel

from dispo.analytics import reanalysis
from dispo.analytics.config import MAX_METRICS, METRIC_TYPES
from dispo.api import calllog
from dispo.errors import ValidationFailed
from dispo.phones import EXAMPLE, to_e164
from dispo.store import calls as call_store
from dispo.store import campaigns as campaign_store
from dispo.store.webhook_deliveries import DELIVERY_STATUSES
from dispo.store.webhooks import EVENT_TYPES

T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# Envelopes


class ErrorEnvelope(BaseModel):
    """Every error: a list of sentences, each naming what is wrong and what to do."""

    status: Literal[False]
    errors: list[str] = Field(min_length=1, examples=[['name is required, e.g. {"name": "Sales agent"}.']])


class Envelope(BaseModel, Generic[T]):
    """Every success: ``{"status": true, "data": …}``."""

    status: Literal[True]
    data: T


def _fail(description: str) -> dict[str, Any]:
    return {"model": ErrorEnvelope, "description": description}


ERRORS: dict[int, dict[str, Any]] = {
    400: _fail("Bad request: the errors name each wrong field or parameter and how to fix it."),
    401: _fail("Missing, malformed, unknown or revoked API key."),
    403: _fail("The signed link was altered or has expired: take a fresh one."),
    404: _fail("No such object in this organization (or no such endpoint)."),
    409: _fail("The object's state does not allow this (e.g. already archived, campaign running)."),
    413: _fail("The request body is larger than the server accepts."),
    429: _fail("Too many requests: wait for the seconds in Retry-After."),
    503: _fail("The server is overloaded or the request took too long: retry later."),
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the error statuses it answers, with the error envelope.

    Every authenticated route may also answer 401, 429 and 503; a route with a body 413.
    """
    return {code: ERRORS[code] for code in sorted(set(codes))}


AUTHED = (400, 401, 429, 503)  # 400: an unknown query parameter is refused on every route
WITH_BODY = (*AUTHED, 413)


# ---------------------------------------------------------------------------------------------
# Request parsing: pydantic errors as fix-it sentences


class RequestModel(BaseModel):
    """A request body. Subclasses say how to phrase their errors."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel)

    # "Unknown field x: <what> takes a, b, c."
    what: ClassVar[str] = "this endpoint"
    # Messages for required fields left out, by wire name.
    required_messages: ClassVar[dict[str, str]] = {}
    # Messages for unknown keys inside an object field, by the field's wire name ({key}: the key).
    unknown_messages: ClassVar[dict[str, str]] = {}
    # Keys accepted and dropped (read-only fields a client may echo back from a GET).
    ignored: ClassVar[frozenset[str]] = frozenset()


M = TypeVar("M", bound=RequestModel)


def parse(model: type[M], body: Any) -> M:
    """``body`` (parsed JSON) as ``model``; a ``ValidationFailed`` listing every problem if not."""
    if not isinstance(body, dict):
        raise ValidationFailed('The request body must be a JSON object, e.g. {"name": "Sales agent"}.')
    _reject_nul(body, "body")
    if model.ignored:
        body = {k: v for k, v in body.items() if k not in model.ignored}
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        messages = describe_errors(model, exc.errors())
        raise ValidationFailed(messages[0], errors=messages) from None


def describe_errors(model: type[RequestModel], errs: list[Any]) -> list[str]:
    unknown = [str(e["loc"][0]) for e in errs if e["type"] == "extra_forbidden" and len(e["loc"]) == 1]
    out: list[str] = []
    if unknown:
        fields = [f.alias or name for name, f in model.model_fields.items()]
        out.append(f"Unknown field {', '.join(unknown)}: {model.what} takes {', '.join(fields)}.")
    for e in errs:
        if e["type"] == "extra_forbidden" and len(e["loc"]) == 1:
            continue
        if e["type"] == "extra_forbidden" and len(e["loc"]) == 2 and e["loc"][0] in model.unknown_messages:
            out.append(model.unknown_messages[e["loc"][0]].format(key=e["loc"][1]))
            continue
        where = ".".join(str(p) for p in e["loc"])
        if e["type"] == "missing" and len(e["loc"]) == 1 and where in model.required_messages:
            out.append(model.required_messages[where])
        else:
            out.append(describe(e, where))
    return out


def describe(err: Any, where: str | None = None) -> str:
    """One pydantic error as a sentence naming the field or parameter."""
    if where is None:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        where = ".".join(loc)
    kind = err.get("type")
    if kind == "value_error" and isinstance((err.get("ctx") or {}).get("error"), ValueError):
        return str(err["ctx"]["error"])  # a fix-it sentence from one of the validators below
    if kind == "json_invalid":
        return "The request body is not valid JSON: check quotes and commas, and send Content-Type: application/json."
    if kind == "missing":
        return f"{where} is required." if where else "A JSON request body is required."
    return f"{where or 'request body'}: {err.get('msg', 'is invalid')}."


def _reject_nul(value: Any, where: str) -> None:
    """PostgreSQL cannot store NUL in text and no real value contains one: refusing it keeps both
    databases answering alike (a clear 400 instead of a driver error)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValidationFailed(f"{where} contains a NUL character (\\u0000): remove it.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _reject_nul(key, where)
            _reject_nul(item, f"{key}" if where == "body" else f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _reject_nul(item, f"{where}[{i}]")


def doc(description: str | None = None, examples: list[Any] | None = None, **schema: Any) -> Any:
    """JSON-schema keywords for the spec only: the field's ``check`` enforces them, with its own
    message (pydantic's constraints would answer in pydantic's words)."""
    return Field(description=description, examples=examples, json_schema_extra=schema)


def check(test: Callable[[Any], str | None]) -> BeforeValidator:
    """A validator from ``test(value) -> problem or None``: the problem is the error message."""

    def validate(value: Any) -> Any:
        problem = test(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    return BeforeValidator(validate)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _whole(value: Any) -> Any:
    """3.0 counts as 3, as JSON has one number type."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _string(name: str, *, max_length: int | None = None) -> BeforeValidator:
    def test(value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            return f"{name} must be a string."
        if max_length is not None and len(value) > max_length:
            return f"{name} is longer than {max_length} characters."
        return None

    return check(test)


# ---------------------------------------------------------------------------------------------
# Call logs: GET /conversation, POST /conversation/search


def _choice_pattern(values: tuple[str, ...] | list[str]) -> str:
    """A comma-separated list of some of ``values`` (spaces and empty items allowed, as parsed)."""
    item = "(" + "|".join(re.escape(v) for v in values) + ")?"
    return rf"^\s*{item}\s*(,\s*{item}\s*)*$"


_ID_LIST = r"^\s*([0-9a-f]{24})?\s*(,\s*([0-9a-f]{24})?\s*)*$"
_INSTANT_TEXT = (
    "ISO 8601 (2026-01-19 or 2026-01-19T07:28:43Z), epoch milliseconds, or a phrase such as '7 days ago'."
)
_INSTANT = {"type": "string", "description": _INSTANT_TEXT, "examples": ["2026-01-19", "7 days ago"]}
_SECONDS = {"type": "number", "minimum": 0, "exclusiveMaximum": 1e9}

# The call-list filters, shared by GET /conversation and POST /conversation/reanalyze.
FILTER_SCHEMAS: dict[str, dict[str, Any]] = {
    "agentIds": {
        "type": "string",
        "pattern": _ID_LIST,
        "description": "Comma-separated agent ids (at most 100).",
    },
    "campaignIds": {
        "type": "string",
        "pattern": _ID_LIST,
        "description": "Comma-separated campaign ids (at most 100).",
    },
    "statusFilter": {
        "type": "string",
        "pattern": _choice_pattern(calllog.CALL_STATUSES),
        "description": f"Comma-separated call statuses: {', '.join(calllog.CALL_STATUSES)}.",
    },
    "callTypes": {
        "type": "string",
        "pattern": _choice_pattern(calllog.CALL_TYPES),
        "description": f"Comma-separated call types: {', '.join(calllog.CALL_TYPES)}.",
    },
    "disconnectReasonFilter": {
        "type": "string",
        "pattern": _choice_pattern(calllog.DISCONNECT_REASONS),
        "description": f"Comma-separated reasons: {', '.join(calllog.DISCONNECT_REASONS)}.",
    },
    "search": {
        "type": "string",
        "maxLength": 64,
        "description": "A call id, a phone-number prefix, or words said in the call (all of them, in one message).",
    },
    "dateFrom": {
        **_INSTANT,
        "description": "Calls created at or after this instant. " + _INSTANT_TEXT,
    },
    "dateTo": {
        **_INSTANT,
        "description": "Calls created at or before this instant (a bare date includes the whole day). "
        + _INSTANT_TEXT,
    },
    "durationFilter": {
        "type": "string",
        "pattern": _choice_pattern(tuple(call_store.DURATION_BUCKETS)),
        "description": f"Comma-separated duration buckets: {', '.join(call_store.DURATION_BUCKETS)}.",
    },
    "minDuration": {**_SECONDS, "description": "Shortest duration, in seconds."},
    "maxDuration": {**_SECONDS, "description": "Longest duration, in seconds."},
}

LIST_CALLS_SCHEMAS: dict[str, dict[str, Any]] = {
    "page": {
        "type": "integer",
        "minimum": 1,
        "maximum": 1_000_000,
        "default": 1,
        "description": "1-based page.",
    },
    "limit": {
        "type": "integer",
        "minimum": 1,
        "maximum": 1000,
        "default": 10,
        "description": "Page size (at most DISPO_PAGE_LIMIT_MAX, 1000 by default).",
    },
    "cursor": {
        "type": "string",
        "description": "pagination.nextCursor of the previous page, unchanged (instead of page).",
    },
    **FILTER_SCHEMAS,
    "sortBy": {"type": "string", "enum": [*call_store.SORT_COLUMNS, "relevance"], "default": "createdAt"},
    "sortOrder": {"type": "string", "enum": ["asc", "desc"], "default": "desc"},
}
assert tuple(LIST_CALLS_SCHEMAS) == calllog.LIST_PARAMETERS


def query_parameters(schemas: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAPI ``parameters`` for query parameters a route parses by hand."""
    out = []
    for name, schema in schemas.items():
        schema = dict(schema)
        description = schema.pop("description", None)
        param: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
        if description:
            param["description"] = description
        out.append(param)
    return out


class TranscriptMessage(BaseModel):
    role: str
    content: str
    timestamp: str | None
    latency_ms: float | None = Field(default=None, alias="latencyMs")


class PostCallAnalyticsPublic(BaseModel):
    """Always present; ``status`` null for a call that has not ended."""

    model_config = ConfigDict(alias_generator=to_camel, extra="allow")

    status: Literal["pending", "running", "completed", "failed"] | None
    summary: str | None
    disposition_metrics: list[dict[str, Any]]
    queued_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    failed_at: str | None = None
    attempts: int | None = None
    error: str | None = None
    config_id: int | None = None
    config_version: int | None = None
    model: str | None = None
    created_at: str | None = None


class CallPublic(BaseModel):
    """One call in the Atoms wire format (``CallLogItem``/``CallDetail``)."""

    model_config = ConfigDict(alias_generator=to_camel)

    id: str = Field(alias="_id")
    call_id: str
    status: str
    duration: float
    from_: str | None = Field(alias="from")
    to: str | None
    type: str
    agent_id: str | None
    campaign_id: str | None
    created_at: str
    updated_at: str
    started_at: str | None
    ended_at: str | None
    transcript: list[TranscriptMessage]
    recording_url: str | None
    recording_dual_url: str | None
    call_cost: float
    disconnection_reason: str | None
    call_failure_reason: str | None
    retry_count: int
    variables: dict[str, Any]
    post_call_analytics: PostCallAnalyticsPublic
    average_transcriber_latency: float | None = Field(alias="average_transcriber_latency")
    average_agent_latency: float | None = Field(alias="average_agent_latency")
    average_synthesizer_latency: float | None = Field(alias="average_synthesizer_latency")


class CallPagination(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    total: int = Field(
        description="Calls matching the filters; when totalIsLowerBound is true, at least this many "
        "(DISPO_LIST_TOTAL_CAP, 10000 by default)."
    )
    page: int | None = Field(description="null when the page was found with a cursor.")
    limit: int
    has_more: bool
    total_pages: int
    next_cursor: str | None
    total_is_lower_bound: bool = Field(
        default=False,
        description="Present, and true, only when the filters include search or minDuration/maxDuration "
        "and more calls match than the server counts one by one: then at least `total` match, and "
        "totalPages counts the pages of `total`.",
    )


class CallListPublic(BaseModel):
    logs: list[CallPublic]
    pagination: CallPagination


class CallSearchPublic(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    logs: list[CallPublic]
    total: int
    requested_count: int


def _call_ids(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        return 'callIds is required: a list of call id strings, e.g. {"callIds": ["CALL-…"]}.'
    return None


class CallSearch(RequestModel):
    """``POST /conversation/search``."""

    what: ClassVar[str] = "this endpoint"
    required_messages: ClassVar[dict[str, str]] = {"callIds": _call_ids(None) or ""}

    call_ids: Annotated[
        list[str],
        check(_call_ids),
        # Enforced by the route: the most is a setting (DISPO_SEARCH_IDS_MAX, 100 by default).
        Field(json_schema_extra={"minItems": 1, "maxItems": 100}, examples=[["CALL-1768807723178-4561d0"]]),
    ]


# ---------------------------------------------------------------------------------------------
# Re-analysis


MAX_VERSION = 2**31 - 1


def _version(value: Any) -> str | None:
    if value is not None and (not _is_int(value) or not 1 <= value <= MAX_VERSION):
        return (
            "configVersion must be a version number (1, 2, …) of the agents' post-call analytics config, "
            "or left out for each agent's newest."
        )
    return None


def _reanalyze_ids(value: Any) -> str | None:
    most = reanalysis.REANALYZE_MAX
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        return 'callIds must be a list of call id strings, e.g. {"callIds": ["CALL-…"]}.'
    if not value:
        return f"callIds is empty: give 1 to {most} call ids."
    if len(value) > most:
        return (
            f"callIds lists {len(value)} ids; at most {most} are allowed per request: send them in batches."
        )
    return None


def _filters(value: Any) -> str | None:
    if value is not None and not isinstance(value, dict):
        return 'filters must be an object, e.g. {"filters": {"dateFrom": "7 days ago"}}.'
    return None


def _filter_value(name: str) -> BeforeValidator:
    """A filter as GET /conversation's query string gives it, a string: a JSON body may also give
    a list of strings (joined with commas) or a number."""

    def convert(value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return ",".join(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"filters.{name} must be a string, a list of strings or a number.")

    return BeforeValidator(convert)


class CallFilters(BaseModel):
    """``filters`` of ``POST /conversation/reanalyze``: the call list's filters (as
    ``GET /conversation`` names them, less paging and sorting), each as its query string has it.
    The values themselves are checked by the call list's parser (``reanalysis.parse_filters``)."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel)

    agent_ids: Annotated[str | None, _filter_value("agentIds")] = None
    campaign_ids: Annotated[str | None, _filter_value("campaignIds")] = None
    status_filter: Annotated[str | None, _filter_value("statusFilter")] = None
    call_types: Annotated[str | None, _filter_value("callTypes")] = None
    disconnect_reason_filter: Annotated[str | None, _filter_value("disconnectReasonFilter")] = None
    search: Annotated[str | None, _filter_value("search")] = None
    date_from: Annotated[str | None, _filter_value("dateFrom")] = None
    date_to: Annotated[str | None, _filter_value("dateTo")] = None
    duration_filter: Annotated[str | None, _filter_value("durationFilter")] = None
    min_duration: Annotated[str | None, _filter_value("minDuration")] = None
    max_duration: Annotated[str | None, _filter_value("maxDuration")] = None

    def query(self) -> dict[str, str]:
        """The filters given, as ``GET /conversation``'s query parameters."""
        return self.model_dump(by_alias=True, exclude_none=True)


assert tuple(f.alias for f in CallFilters.model_fields.values()) == reanalysis.FILTER_PARAMETERS


_FILTERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "GET /conversation's filters; a value may also be a list of strings or a number.",
    "properties": {
        name: {"anyOf": [schema, {"type": "array", "items": {"type": "string"}}, {"type": "null"}]}
        if schema.get("type") == "string"
        else {"anyOf": [schema, {"type": "null"}]}
        for name, schema in FILTER_SCHEMAS.items()
    },
}


def _one_of_ids_or_filters(schema: dict[str, Any]) -> None:
    schema["oneOf"] = [
        {"required": ["callIds"], "properties": {"callIds": {"type": "array"}}},
        {"required": ["filters"], "properties": {"filters": {"type": "object"}}},
    ]


class ReanalyzeRequest(RequestModel):
    """``POST /conversation/reanalyze``: ``callIds`` or ``filters`` (not both), and ``configVersion``."""

    model_config = ConfigDict(json_schema_extra=_one_of_ids_or_filters)
    what: ClassVar[str] = "this endpoint"
    unknown_messages: ClassVar[dict[str, str]] = {
        "filters": (
            f"filters.{{key}} is not a filter: use {', '.join(reanalysis.FILTER_PARAMETERS)} "
            "(the call list's filters; paging and sorting do not apply)."
        )
    }

    call_ids: Annotated[
        list[str] | None,
        check(_reanalyze_ids),
        Field(json_schema_extra={"minItems": 1, "maxItems": reanalysis.REANALYZE_MAX}),
    ] = None
    filters: Annotated[
        CallFilters | None,  # the values are checked by the call list's parser, in the route
        check(_filters),
        WithJsonSchema({"anyOf": [_FILTERS_SCHEMA, {"type": "null"}]}),
        Field(title="Filters"),  # as a plain object had it: the spec is unchanged
    ] = None
    config_version: Annotated[int | None, check(_version), doc(minimum=1, maximum=MAX_VERSION)] = None


class ReanalyzePublic(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    queued: int = Field(description="Calls queued for analysis.")
    call_ids: list[str] = Field(description="The first 100 of them.")
    config_version: int | None


# ---------------------------------------------------------------------------------------------
# Live calls and chat


def _variables(value: Any) -> str | None:
    if value is not None and (
        not isinstance(value, dict)
        or not all(isinstance(v, str | int | float | bool) or v is None for v in value.values())
    ):
        return 'variables must be an object of strings or numbers, e.g. {"customer_name": "Asha"}.'
    return None


def _agent_id(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return 'agentId is required: the id of one of your agents, e.g. {"agentId": "696e…"}.'
    return None


Variables = Annotated[
    dict[str, str | int | float | bool | None] | None,
    check(_variables),
    Field(description="Values for the agent's {{variables}}."),
]
AgentRef = Annotated[str, check(_agent_id), doc(minLength=1, examples=["696e655577e1d88ff54b4fbf"])]


def _phone_number(value: Any) -> str | None:
    if value is None:
        return f"phoneNumber is required: the number to call in E.164, e.g. {EXAMPLE}."
    if not isinstance(value, str) or to_e164(value) is None:
        return (
            f"phoneNumber {value!r} is not a valid phone number: give it in E.164 with the country code, "
            f"e.g. {EXAMPLE}."
        )
    return None


class OutboundCallCreate(RequestModel):
    what: ClassVar[str] = "POST /conversation/outbound"
    required_messages: ClassVar[dict[str, str]] = {
        "agentId": _agent_id(None) or "",
        "phoneNumber": _phone_number(None) or "",
    }

    agent_id: AgentRef
    phone_number: Annotated[
        str,
        check(_phone_number),
        Field(description="The number to call, E.164 with the country code.", examples=[EXAMPLE]),
    ]
    variables: Variables = None


class OutboundCallPublic(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    conversation_id: str


class ChatCreate(RequestModel):
    what: ClassVar[str] = "POST /conversation/chat"
    required_messages: ClassVar[dict[str, str]] = {"agentId": _agent_id(None) or ""}

    agent_id: AgentRef
    variables: Variables = None


def _message(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return 'message is required: the person\'s words, e.g. {"message": "Hello"}.'
    return None


class ChatMessageCreate(RequestModel):
    what: ClassVar[str] = "a chat message"
    required_messages: ClassVar[dict[str, str]] = {"message": _message(None) or ""}

    message: Annotated[str, check(_message), doc(pattern=r"\S", examples=["Hello"])]


class ChatTurn(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    role: str
    content: str
    timestamp: str | None
    latency_ms: float | None = None


class ChatPublic(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    conversation_id: str
    status: str
    ended: bool
    disconnection_reason: str | None
    messages: list[ChatTurn]


# ---------------------------------------------------------------------------------------------
# Agents

LANGUAGES = ("en", "hi", "ta", "kn")  # what the Atoms agent schema allows
SLM_MODELS = ("electron", "gpt-4o")
BACKGROUND_SOUNDS = ("", "office", "cafe", "call_center", "static")
AGENT_READ_ONLY = frozenset(
    {"_id", "id", "organization", "createdAt", "updatedAt", "createdBy", "archived", "archivedAt"}
)


def _agent_name(value: Any) -> str | None:
    if value is None:
        return "name cannot be null: give the agent a name."
    if not isinstance(value, str):
        return "name must be a string."
    if not value.strip():
        return "name is empty: give the agent a name."
    if len(value) > 200:
        return "name is longer than 200 characters."
    return None


def _language(value: Any) -> str | None:
    if value is None:
        return None
    code = value.get("enabled", "en") if isinstance(value, dict) else value
    if not isinstance(code, str) or code not in LANGUAGES:
        return f"language {code!r} is not supported: use one of {', '.join(LANGUAGES)}."
    return None


def _slm_model(value: Any) -> str | None:
    if value is not None and value not in SLM_MODELS:
        return f"slmModel {value!r} is not supported: use one of {', '.join(SLM_MODELS)}."
    return None


def _background_sound(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if not isinstance(value, str) or value not in BACKGROUND_SOUNDS:
        return "backgroundSound must be one of '', 'office', 'cafe', 'call_center', 'static'."
    return None


def _default_variables(value: Any) -> str | None:
    if value is not None and not isinstance(value, dict):
        return 'defaultVariables must be an object, e.g. {"customer_name": "there"}.'
    return None


class LanguageIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    enabled: Literal["en", "hi", "ta", "kn"] = "en"
    switching: Any = None
    supported: list[str] | None = None


class AgentBase(BaseModel):
    """What agent requests and responses share."""

    description: Annotated[str | None, _string("description")] = None
    global_prompt: Annotated[str | None, _string("globalPrompt")] = None
    first_message: Annotated[str | None, _string("firstMessage")] = None
    global_knowledge_base_id: Annotated[str | None, _string("globalKnowledgeBaseId")] = None
    telephony_product_id: Annotated[str | None, _string("telephonyProductId")] = None
    default_variables: Annotated[dict[str, Any] | None, check(_default_variables)] = None


class AgentUpdate(RequestModel, AgentBase):
    """``PATCH /agent/{id}``: only the fields given change; null leaves a field unchanged. Other
    fields of Atoms' ``AgentDTO`` (synthesizer, …) are kept verbatim and returned as given."""

    model_config = ConfigDict(extra="allow")
    ignored: ClassVar[frozenset[str]] = AGENT_READ_ONLY

    name: Annotated[str, check(_agent_name), doc(pattern=r"\S", maxLength=200)] = None  # type: ignore[assignment]
    language: Annotated[
        Literal["en", "hi", "ta", "kn"] | LanguageIn | None,
        check(_language),
        Field(description="A language code, or Atoms' {enabled, switching, supported}."),
    ] = None
    slm_model: Annotated[Literal["electron", "gpt-4o"] | None, check(_slm_model)] = None
    background_sound: Annotated[
        bool | Literal["", "office", "cafe", "call_center", "static"] | None,
        check(_background_sound),
        Field(description="A sound, or true for office and false for none."),
    ] = None


class AgentCreate(AgentUpdate):
    """``POST /agent``: ``name`` is required."""

    required_messages: ClassVar[dict[str, str]] = {"name": 'name is required, e.g. {"name": "Sales agent"}.'}

    name: Annotated[str, check(_agent_name), doc(pattern=r"\S", maxLength=200, examples=["Sales agent"])]


class LanguagePublic(BaseModel):
    enabled: str
    switching: Any
    supported: list[str]


class AgentPublic(AgentBase):
    """An agent in the shape of the Atoms ``AgentDTO``, plus any other fields it was given."""

    model_config = ConfigDict(alias_generator=to_camel, extra="allow")

    id: str = Field(alias="_id")
    name: str
    organization: str
    description: str | None
    global_prompt: str | None
    first_message: str | None
    language: LanguagePublic
    slm_model: str
    background_sound: bool = Field(description="true when backgroundSoundType is not empty.")
    background_sound_type: str
    global_knowledge_base_id: str | None
    telephony_product_id: str | None
    default_variables: dict[str, Any]
    archived: bool
    archived_at: str | None
    created_at: str
    updated_at: str


class AgentListPublic(BaseModel):
    agents: list[AgentPublic]
    total: int
    page: int
    offset: int = Field(description="The page size.")


class MessagePublic(BaseModel):
    message: str


# Post-call analytics configuration


class DispositionValues(BaseModel):
    type: Literal["STRING", "BOOLEAN", "INTEGER", "ENUM", "DATETIME"]


class DispositionMetricIn(BaseModel):
    """One metric. Its type is ``dispositionValues.type`` or ``dispositionMetricType`` (either)."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid")

    identifier: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", examples=["user_interested"])
    disposition_metric_prompt: str = Field(pattern=r"\S")
    disposition_values: DispositionValues | None = None
    disposition_metric_type: Literal["STRING", "BOOLEAN", "INTEGER", "ENUM", "DATETIME"] | None = None
    choices: list[str] | None = Field(default=None, description="For ENUM metrics: the allowed values.")


def _summary_prompt(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        return "summaryPrompt must be a string (or null to use the default summary prompt)."
    return None


class AnalyticsConfigBase(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    summary_prompt: Annotated[str | None, check(_summary_prompt)] = None


class AnalyticsConfigUpdate(RequestModel, AnalyticsConfigBase):
    """Only the keys given change; each change is a new version."""

    what: ClassVar[str] = "the config"

    disposition_metrics: Annotated[
        # Validated by dispo.analytics.config.parse_metrics, which reports every metric's problems.
        SkipValidation[list[DispositionMetricIn]],
        Field(json_schema_extra={"maxItems": MAX_METRICS}),
    ] = None  # type: ignore[assignment]


class DispositionMetricPublic(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    identifier: str
    disposition_metric_prompt: str
    disposition_metric_type: str
    disposition_values: DispositionValues
    choices: list[str] | None = None


class AnalyticsConfigPublic(AnalyticsConfigBase):
    summary_prompt: str | None
    disposition_metrics: list[DispositionMetricPublic]
    version: int = Field(description="0 before the first config is set.")
    updated_at: str | None


class AnalyticsConfigVersionsPublic(BaseModel):
    versions: list[AnalyticsConfigPublic]


assert set(METRIC_TYPES) == {"STRING", "BOOLEAN", "INTEGER", "ENUM", "DATETIME"}


# ---------------------------------------------------------------------------------------------
# Phone numbers


class PhoneNumberAttributes(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    provider: str
    phone_number: str
    country_code: str | None


class PhoneNumberPublic(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    id: str = Field(alias="_id")
    product_type: Literal["telephony"]
    is_active: bool
    agent_id: str | None
    attributes: PhoneNumberAttributes
    created_at: str
    updated_at: str


# ---------------------------------------------------------------------------------------------
# Audiences


class AudiencePublic(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    id: str = Field(alias="_id")
    name: str
    description: str
    phone_number_column_name: str
    organization: str
    created_at: str
    updated_at: str
    members_count: int | None = None


class MemberPublic(BaseModel):
    id: str = Field(alias="_id")
    data: dict[str, Any]


class MemberPagePublic(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    members: list[MemberPublic]
    total_count: int
    total_pages: int
    has_more: bool
    page: int
    offset: int


def _members(value: Any) -> str | None:
    if not isinstance(value, list) or not value:
        return (
            'members must be a non-empty list, e.g. {"members": [{"phoneNumber": "+14155550123", '
            '"firstName": "Jordan"}]}.'
        )
    return None


class MemberIn(BaseModel):
    """A contact: the phone number under the audience's phone column (or phoneNumber), and any
    other columns."""

    model_config = ConfigDict(extra="allow")

    phone_number: str | None = Field(default=None, alias="phoneNumber", examples=["+14155550123"])


class MembersCreate(RequestModel):
    what: ClassVar[str] = "POST /audience/{id}/members"
    required_messages: ClassVar[dict[str, str]] = {"members": _members(None) or ""}

    members: Annotated[
        # Each member is checked by the route, which knows the audience's phone column.
        SkipValidation[list[MemberIn]],
        check(_members),
        Field(json_schema_extra={"minItems": 1, "maxItems": 100_000}),
    ]


class MembersAddedData(BaseModel):
    added: int
    skipped: int


class MembersAddedPublic(BaseModel):
    message: str
    data: MembersAddedData


def _member_ids(value: Any) -> str | None:
    if not isinstance(value, list) or not value or not all(isinstance(i, str) for i in value):
        return (
            "memberIds must be a non-empty list of member ids (the _id of GET /audience/{id}/members), "
            'e.g. {"memberIds": ["6b018a82b38fd67804d54c9f"]}.'
        )
    return None


class MembersDelete(RequestModel):
    what: ClassVar[str] = "DELETE /audience/{id}/members"
    required_messages: ClassVar[dict[str, str]] = {"memberIds": _member_ids(None) or ""}

    member_ids: Annotated[list[str], check(_member_ids), doc(minItems=1)]


class DeletedCountPublic(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    deleted_count: int


# ---------------------------------------------------------------------------------------------
# Campaigns

MAX_RETRIES = (0, 10)
RETRY_DELAY_MINUTES = (1, 1440)
CAMPAIGN_READ_ONLY = frozenset({"_id", "id", "status", "organization", "createdAt", "updatedAt", "createdBy"})


def _required_string(name: str, required: str, max_length: int) -> BeforeValidator:
    def test(value: Any) -> str | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return required
        if not isinstance(value, str):
            return f"{name} must be a string."
        if len(value) > max_length:
            return f"{name} is longer than {max_length} characters."
        return None

    return check(test)


def _whole_in(name: str, bounds: tuple[int, int], unit: str) -> BeforeValidator:
    low, high = bounds

    def validate(value: Any) -> Any:
        value = _whole(value)
        if value is not None and (not _is_int(value) or not low <= value <= high):
            raise ValueError(f"{name} must be a whole number of {unit} from {low} to {high} (got {value!r}).")
        return value

    return BeforeValidator(validate)


def _phone_number_ids(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        return "phoneNumberIds must be a list of phone number ids (GET /product/phone-numbers)."
    if not value:
        return (
            "phoneNumberIds is empty: give at least one id from GET /product/phone-numbers, or leave it "
            "out to call from all of the organization's numbers."
        )
    return None


def _scheduled_at(value: Any) -> str | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, str | int)):
        return "scheduledAt must be an ISO 8601 date-time, e.g. 2026-12-01T09:00:00Z."
    return None


_CAMPAIGN_NAME = 'name is required, e.g. {"name": "Spring outreach", "agentId": …, "audienceId": …}.'
_CAMPAIGN_AGENT = "agentId is required: the id of the agent that makes the calls (GET /agent lists them)."
_CAMPAIGN_AUDIENCE = "audienceId is required: the id of the audience to call (GET /audience lists them)."


class CampaignBase(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)


class CampaignCreate(RequestModel, CampaignBase):
    """``POST /campaign``. Read-only fields of a campaign (``_id``, ``status``, …) are ignored."""

    what: ClassVar[str] = "a campaign"
    ignored: ClassVar[frozenset[str]] = CAMPAIGN_READ_ONLY
    required_messages: ClassVar[dict[str, str]] = {
        "name": _CAMPAIGN_NAME,
        "agentId": _CAMPAIGN_AGENT,
        "audienceId": _CAMPAIGN_AUDIENCE,
    }

    name: Annotated[str, _required_string("name", _CAMPAIGN_NAME, 200), doc(pattern=r"\S", maxLength=200)]
    description: Annotated[str | None, _string("description", max_length=10_000)] = None
    agent_id: Annotated[
        str, _required_string("agentId", _CAMPAIGN_AGENT, 100), doc(pattern=r"\S", maxLength=100)
    ]
    audience_id: Annotated[
        str, _required_string("audienceId", _CAMPAIGN_AUDIENCE, 100), doc(pattern=r"\S", maxLength=100)
    ]
    phone_number_ids: Annotated[
        list[str] | None,
        check(_phone_number_ids),
        doc(minItems=1, description="Default: all of the organization's active numbers."),
    ] = None
    max_retries: Annotated[
        int | None, _whole_in("maxRetries", MAX_RETRIES, "retries"), doc(minimum=0, maximum=10)
    ] = None
    retry_delay: Annotated[
        int | None,
        _whole_in("retryDelay", RETRY_DELAY_MINUTES, "minutes"),
        doc(minimum=1, maximum=1440, description="Minutes between attempts at one contact."),
    ] = None
    scheduled_at: Annotated[
        str | int | None,
        check(_scheduled_at),
        Field(description="A future ISO 8601 date-time (or epoch ms) to start at."),
    ] = None


class Ref(BaseModel):
    id: str = Field(alias="_id")
    name: str | None


class CampaignPublic(CampaignBase):
    id: str = Field(alias="_id")
    name: str
    description: str
    organization: str
    agent_id: str
    audience_id: str
    agent: Ref
    audience: Ref
    phone_number_ids: list[str]
    status: str = Field(json_schema_extra={"enum": list(campaign_store.STATUSES)})
    max_retries: int
    retry_delay: int
    is_campaign_in_progress: bool
    is_campaign_completed: bool
    scheduled_at: str | None
    started_at: str | None
    completed_at: str | None
    created_at: str
    updated_at: str


class CampaignPagination(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    total: int
    page: int
    limit: int
    has_more: bool
    total_pages: int


class CampaignListPublic(BaseModel):
    campaigns: list[CampaignPublic]
    pagination: CampaignPagination


class CampaignEvent(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    type: str
    created_at: str


class CampaignMetrics(BaseModel):
    total_participants: int
    contacts_called: int
    contacts_connected: int


class CampaignDetailPublic(BaseModel):
    campaign: CampaignPublic
    events: list[CampaignEvent]
    metrics: CampaignMetrics


class CampaignActionPublic(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    message: str
    campaign_id: str
    status: str | None = None


# ---------------------------------------------------------------------------------------------
# Webhooks (docs/webhooks.md)

WEBHOOK_MAX_EVENTS = 100
WEBHOOK_ENDPOINT_MAX = 2048
_ENDPOINT_EXAMPLE = "https://crm.example.com/hooks/dispo"


def endpoint_problem(value: Any) -> str | None:
    """Why ``value`` is not a webhook endpoint (an absolute http or https URL), or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        return f"endpoint must be an http or https URL, e.g. {_ENDPOINT_EXAMPLE}."
    text = value.strip()
    if len(text) > WEBHOOK_ENDPOINT_MAX:
        return f"endpoint is longer than {WEBHOOK_ENDPOINT_MAX} characters: use a shorter URL."
    try:
        parts = urlsplit(text)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        host = None
    if parts.scheme not in ("http", "https") or not host or any(ch.isspace() for ch in text):
        return f"endpoint {text!r} is not an http or https URL: give one such as {_ENDPOINT_EXAMPLE}."
    return None


def _webhook_event_type(value: Any) -> str | None:
    if value not in EVENT_TYPES:
        return f"eventType {value!r} is not an event: use one of {', '.join(EVENT_TYPES)}."
    return None


def _event_agent_id(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "agentId is required in each event: the id of an agent (GET /agent lists them)."
    if len(value) > 100:
        return "agentId is longer than 100 characters: give an id from GET /agent."
    return None


class WebhookEventIn(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel)

    agent_id: Annotated[
        str, check(_event_agent_id), doc("The agent whose events are sent.", pattern=r"\S", maxLength=100)
    ]
    event_type: Annotated[
        str, check(_webhook_event_type), Field(json_schema_extra={"enum": list(EVENT_TYPES)})
    ]


def _webhook_events(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        return 'events must be a non-empty list such as [{"agentId": "…", "eventType": "post-conversation"}].'
    if len(value) > WEBHOOK_MAX_EVENTS:
        return f"events lists {len(value)} subscriptions; a webhook takes at most {WEBHOOK_MAX_EVENTS}."
    return None


_ENDPOINT_REQUIRED = f"endpoint is required: the URL Dispo POSTs events to, e.g. {_ENDPOINT_EXAMPLE}."
_EVENTS_REQUIRED = (
    'events is required, e.g. [{"agentId": "<id from GET /agent>", "eventType": "post-conversation"}].'
)

Endpoint = Annotated[
    str,
    check(endpoint_problem),
    doc("An http or https URL.", pattern=r"^\s*https?://\S+$", maxLength=WEBHOOK_ENDPOINT_MAX),
]
Events = Annotated[list[WebhookEventIn], check(_webhook_events), doc(minItems=1, maxItems=WEBHOOK_MAX_EVENTS)]


class WebhookUpdate(RequestModel):
    """``PATCH /webhook/{id}``: the fields to change (``events`` replaces the subscriptions)."""

    what: ClassVar[str] = "a webhook"
    unknown_messages: ClassVar[dict[str, str]] = {}

    endpoint: Endpoint | None = None
    description: Annotated[str | None, _string("description", max_length=10_000)] = None
    events: Events | None = None


class WebhookCreate(WebhookUpdate):
    """``POST /webhook``: Atoms' ``{endpoint, description, events: [{agentId, eventType}]}``."""

    required_messages: ClassVar[dict[str, str]] = {"endpoint": _ENDPOINT_REQUIRED, "events": _EVENTS_REQUIRED}

    endpoint: Endpoint
    events: Events


def _replay_statuses(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or any(v not in ("dead", "delivered") for v in value):
        return 'status must be a non-empty list of "dead" and/or "delivered" (the deliveries to send again).'
    return None


def _instant_field(name: str) -> Any:
    def test(value: Any) -> str | None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, str | int)):
            return f"{name} must be an ISO 8601 date-time, e.g. 2026-12-01T09:00:00Z."
        return None

    return check(test)


class WebhookReplay(RequestModel):
    """``POST /webhook/{id}/replay``: send again every delivery in ``status`` (default: the dead
    letters) created in [``dateFrom``, ``dateTo``]."""

    what: ClassVar[str] = "a bulk replay"

    status: Annotated[
        list[str] | None, check(_replay_statuses), doc(items={"enum": ["dead", "delivered"]}, minItems=1)
    ] = None
    date_from: Annotated[str | int | None, _instant_field("dateFrom")] = None
    date_to: Annotated[str | int | None, _instant_field("dateTo")] = None


class WebhookEventPublic(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    agent_id: str
    event_type: str


class WebhookPublic(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    id: str = Field(alias="_id")
    endpoint: str
    description: str
    organization: str
    events: list[WebhookEventPublic]
    secret: str | None = Field(None, description="Only in the answers to create and rotate-secret.")
    previous_secret_valid_until: str | None = None
    created_at: str
    updated_at: str


class WebhookDeletedPublic(BaseModel):
    id: str = Field(alias="_id")
    deleted: bool


class AttemptPublic(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    attempt: int
    outcome: str
    status_code: int | None
    latency_ms: float | None
    response_excerpt: str | None
    error: str | None
    created_at: str


class DeliveryPublic(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    id: str = Field(alias="_id")
    event_id: str
    event_type: str
    idempotency_key: str
    status: str = Field(json_schema_extra={"enum": list(DELIVERY_STATUSES)})
    attempts: int
    next_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: str | None
    created_at: str
    updated_at: str
    attempt_log: list[AttemptPublic]


class DeliveryPagination(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    total: int
    page: int
    limit: int
    has_more: bool


class DeliveryPagePublic(BaseModel):
    deliveries: list[DeliveryPublic]
    pagination: DeliveryPagination


class ReplayedPublic(BaseModel):
    replayed: int


# ---------------------------------------------------------------------------------------------
# Meta


class HealthPublic(BaseModel):
    version: str
    database: Literal["sqlite", "postgresql"]


# ---------------------------------------------------------------------------------------------
# Imports: POST /conversation/import

IMPORT_ROLES = ("user", "agent")
IMPORT_STATUSES = ("completed", "no_answer", "busy", "failed", "cancelled")
IMPORT_BATCH_MAX = 1000
IMPORT_TURNS_MAX = 5000
_TURN_CHARS_MAX = 20_000
_LATEST_MS = 4_102_444_800_000  # 2100-01-01


def _one_of(name: str, allowed: tuple[str, ...], *, optional: bool = False) -> BeforeValidator:
    def test(value: Any) -> str | None:
        if value is None and optional:
            return None
        if value not in allowed:
            return f"{name} is {value!r}: use one of {', '.join(allowed)}."
        return None

    return check(test)


def _number(name: str, unit: str) -> BeforeValidator:
    def test(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e12:
            return f"{name} must be a number of {unit}, zero or more (got {value!r})."
        return None

    return check(test)


def _instant(name: str) -> BeforeValidator:
    from dispo.timeutil import parse_instant

    def test(value: Any) -> str | None:
        if value is None:
            return None
        value = _whole(value)
        if _is_int(value):
            if not 0 <= value <= _LATEST_MS:
                return f"{name} is {value}: give epoch milliseconds (e.g. 1768807723178) or ISO 8601."
            return None
        if not isinstance(value, str):
            return f"{name} must be an ISO 8601 instant such as 2026-01-19T07:28:43Z, or epoch milliseconds."
        try:
            parse_instant(value, field=name)
        except ValidationFailed as exc:
            return exc.message
        return None

    return check(test)


def _turn_content(value: Any) -> str | None:
    if not isinstance(value, str):
        return 'content is required: what was said, e.g. {"role": "user", "content": "Hello"}.'
    if len(value) > _TURN_CHARS_MAX:
        return f"content is longer than {_TURN_CHARS_MAX} characters: split the turn."
    return None


def _transcript(value: Any) -> str | None:
    if value is not None and not isinstance(value, list):
        return 'transcript must be a list of turns, e.g. [{"role": "agent", "content": "Hi"}].'
    if isinstance(value, list) and len(value) > IMPORT_TURNS_MAX:
        return f"transcript has {len(value)} turns; at most {IMPORT_TURNS_MAX} are kept per call."
    return None


def _recording_url(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.match(r"^https?://\S{1,2000}$", value):
        return "recordingUrl must be an http(s) link to the recording, kept as given (uploads are not accepted yet)."
    return None


def _import_agent_id(value: Any) -> str | None:
    from dispo.ids import is_object_id

    if value is not None and (not isinstance(value, str) or not is_object_id(value)):
        return "agentId must be an agent id (24 hex characters, GET /agent lists them), or left out."
    return None


def _variables_object(value: Any) -> str | None:
    if value is not None and not isinstance(value, dict):
        return 'variables must be an object, e.g. {"firstName": "Ada"}.'
    return None


class ImportTurn(RequestModel):
    """One turn of an imported transcript."""

    what: ClassVar[str] = "a transcript turn"
    role: Annotated[str, _one_of("role", IMPORT_ROLES), doc("Who spoke.", enum=list(IMPORT_ROLES))]
    content: Annotated[str, check(_turn_content), doc("What was said.", maxLength=_TURN_CHARS_MAX)]
    timestamp: Annotated[
        str | int | None, _instant("timestamp"), doc("When the turn began: ISO 8601 or epoch ms.")
    ] = None
    latency_ms: Annotated[
        float | None, _number("latencyMs", "milliseconds"), doc("The agent's response latency for this turn.")
    ] = None


class ImportCall(RequestModel):
    """``POST /conversation/import``: one finished call from another voice stack."""

    what: ClassVar[str] = "an imported call"
    required_messages: ClassVar[dict[str, str]] = {
        "externalId": "externalId is required: the call's id on the stack it comes from (importing it "
        "again with the same externalId does not duplicate it)."
    }

    external_id: Annotated[
        str,
        _required_string(
            "externalId", "externalId must not be empty: give the call's id on its own stack.", 200
        ),
        doc("The call's id on its own stack; unique per organization.", maxLength=200),
    ]
    agent_id: Annotated[
        str | None, check(_import_agent_id), doc("A Dispo agent id: its analytics config is used.")
    ] = None
    type: Annotated[str, _one_of("type", calllog.CALL_TYPES), doc(enum=list(calllog.CALL_TYPES))] = (
        "telephony_inbound"
    )
    status: Annotated[str, _one_of("status", IMPORT_STATUSES), doc(enum=list(IMPORT_STATUSES))] = "completed"
    from_number: Annotated[str | None, _string("from", max_length=40), Field(alias="from")] = None
    to_number: Annotated[str | None, _string("to", max_length=40), Field(alias="to")] = None
    started_at: Annotated[str | int | None, _instant("startedAt"), doc("ISO 8601 or epoch ms.")] = None
    ended_at: Annotated[str | int | None, _instant("endedAt"), doc("ISO 8601 or epoch ms.")] = None
    duration: Annotated[
        float | None, _number("duration", "seconds"), doc("Seconds; default endedAt - startedAt.")
    ] = None
    disconnection_reason: Annotated[
        str | None,
        _one_of("disconnectionReason", calllog.DISCONNECT_REASONS, optional=True),
        doc(enum=list(calllog.DISCONNECT_REASONS)),
    ] = None
    call_cost: Annotated[float | None, _number("callCost", "credits")] = None
    transcript: Annotated[list[ImportTurn], check(_transcript), doc(maxItems=IMPORT_TURNS_MAX)] = Field(
        default_factory=list
    )
    average_transcriber_latency: Annotated[
        float | None, _number("averageTranscriberLatency", "milliseconds")
    ] = None
    average_agent_latency: Annotated[
        float | None,
        _number("averageAgentLatency", "milliseconds"),
        doc("Default: the mean of the turns' latencyMs."),
    ] = None
    average_synthesizer_latency: Annotated[
        float | None, _number("averageSynthesizerLatency", "milliseconds")
    ] = None
    variables: Annotated[dict[str, Any] | None, check(_variables_object)] = None
    recording_url: Annotated[
        str | None, check(_recording_url), doc("A link to the recording, kept as given.")
    ] = None

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> ImportCall:
        from dispo.timeutil import parse_instant

        if self.started_at is not None and self.ended_at is not None:
            bounds = [
                int(v) if isinstance(v, int) else parse_instant(v, field=name)
                for v, name in ((self.started_at, "startedAt"), (self.ended_at, "endedAt"))
            ]
            if bounds[1] < bounds[0]:
                raise ValueError("endedAt is before startedAt: swap them, or check their time zones.")
        return self


def _import_calls(value: Any) -> str | None:
    if isinstance(value, list) and value and not all(isinstance(item, dict) for item in value):
        bad = next(i for i, item in enumerate(value) if not isinstance(item, dict))
        return f'calls[{bad}] is not an object: each call is a JSON object, e.g. {{"externalId": "…"}}.'
    if not isinstance(value, list) or not value:
        return 'calls must be a list of 1 to 1000 calls, e.g. {"calls": [{"externalId": "…", "transcript": […]}]}.'
    if len(value) > IMPORT_BATCH_MAX:
        return (
            f"calls lists {len(value)} calls; at most {IMPORT_BATCH_MAX} per request: send them in batches."
        )
    return None


class ImportBatch(RequestModel):
    """``POST /conversation/import`` with many calls: each is validated and imported on its own."""

    what: ClassVar[str] = "a batch import"
    required_messages: ClassVar[dict[str, str]] = {"calls": _import_calls(None) or ""}

    # Items are validated one by one (ImportCall), so that one bad call does not refuse the rest.
    calls: Annotated[
        list[
            Annotated[
                dict[str, Any],
                WithJsonSchema(
                    {
                        "type": "object",
                        "description": "An ImportCall (see POST /conversation/import), validated on its own: a "
                        "call with problems is reported invalid in the answer, not refused with the request.",
                    }
                ),
            ]
        ],
        check(_import_calls),
        doc(minItems=1, maxItems=IMPORT_BATCH_MAX),
    ]


def import_problems(item: Any, where: str) -> tuple[ImportCall | None, list[str]]:
    """``item`` as an :class:`ImportCall`, or every problem with it, each naming its place
    (``calls[3].transcript[0].role is 'bot': …``)."""
    if not isinstance(item, dict):
        if where:
            return None, [f'{where} must be a JSON object: one call, e.g. {{"externalId": "…"}}.']
        return None, [
            'The request body must be a JSON object: one call, e.g. {"externalId": "…"}, or {"calls": […]}.'
        ]
    try:
        _reject_nul(item, where or "body")
        return ImportCall.model_validate(item), []
    except ValidationFailed as exc:
        return None, exc.errors
    except ValidationError as exc:
        return None, [_import_problem(e, where) for e in exc.errors()]


_IMPORT_REQUIRED = {
    "externalId": "the call's id on the stack it comes from (importing it again with the same "
    "externalId does not duplicate it)",
    "role": "who spoke, user or agent",
    "content": 'what was said, e.g. {"role": "user", "content": "Hello"}',
}


def _import_problem(err: Any, where: str) -> str:
    path = where
    for part in err["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    if err["type"] == "extra_forbidden":
        return (
            f"{path} is not a field of an imported call or turn: remove it (see ImportCall in /openapi.json)."
        )
    if not err["loc"] and err["type"] == "value_error":  # a rule between fields
        return f"{where}: {err['ctx']['error']}" if where else str(err["ctx"]["error"])
    if err["type"] == "missing":
        hint = _IMPORT_REQUIRED.get(str(err["loc"][-1]), "see ImportCall in /openapi.json")
        return f"{path} is required: {hint}."
    message = describe(err, path)
    if err["type"] == "value_error" and len(err["loc"]) > 0:
        # The validators' sentences start with the field's own name: give its whole place instead.
        first = str(err["loc"][-1])
        if message.startswith(first):
            message = path + message[len(first) :]
    return message


class ImportResultPublic(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    index: int
    external_id: str | None
    status: Literal["imported", "duplicate", "invalid"]
    call_id: str | None = None
    errors: list[str] = Field(default_factory=list)


class ImportPublic(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    imported: int
    duplicates: int
    invalid: int
    results: list[ImportResultPublic]


class RecordingPublic(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    call_id: str
    channels: Literal["mono", "stereo"]
    url: str = Field(description="Where GET downloads it; also the call's recordingUrl or recordingDualUrl.")
    bytes: int
