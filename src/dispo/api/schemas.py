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

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SkipValidation,
    ValidationError,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel

from dispo.analytics import reanalysis
from dispo.analytics.config import MAX_METRICS, METRIC_TYPES
from dispo.api import calllog
from dispo.errors import ValidationFailed
from dispo.phones import EXAMPLE, to_e164
from dispo.store import calls as call_store
from dispo.store import campaigns as campaign_store

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
        "description": "A call id or a phone-number prefix.",
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
    "sortBy": {"type": "string", "enum": list(call_store.SORT_COLUMNS), "default": "createdAt"},
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
# Meta


class HealthPublic(BaseModel):
    version: str
    database: Literal["sqlite", "postgresql"]
