"""The OpenAPI spec as a contract: what every route accepts is declared, and nothing else is taken.

* :class:`ContractRoute` (every router's route class) refuses query parameters the route does
  not declare, with a 400 naming them and listing the ones it takes. An ``async`` endpoint that
  takes only the ``Request`` is called directly, without FastAPI's dependency solving (~50 µs a
  request, more than a call-log read): the hot call-log routes are written so, reading their path
  parameters and key themselves and declaring both with :func:`lean`.
* :func:`json_body` declares a route's JSON request body with a model from ``dispo.api.schemas``
  while the route reads it itself (``dispo.api.bodies.JsonBody``) and validates it with
  ``schemas.parse`` when it is ready to, e.g. after answering 404 for another organization's object.
* :func:`install` rewrites the spec FastAPI generates: no never-sent 422 (validation errors are
  400 in the error envelope), the Bearer key as a security scheme on every authenticated
  operation, and the request-body models in ``components``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.responses import Response

from dispo.api.deps import get_org_id
from dispo.api.schemas import RequestModel
from dispo.errors import ValidationFailed

SECURITY_SCHEME = "apiKey"
_BODY_MODELS: dict[str, type[RequestModel]] = {}


def declared_query(route: APIRoute) -> tuple[str, ...]:
    """The query parameters ``route`` takes: its own and those it declares by hand in openapi_extra."""
    names = _query_names(route.dependant)
    for param in (route.openapi_extra or {}).get("parameters", ()):
        if param.get("in") == "query":
            names.append(param["name"])
    return tuple(dict.fromkeys(names))


def _query_names(dependant: Dependant) -> list[str]:
    names = [p.alias for p in dependant.query_params]
    for sub in dependant.dependencies:
        names += _query_names(sub)
    return names


class ContractRoute(APIRoute):
    """An ``APIRoute`` that answers 400 to a query parameter it does not declare, and declares
    the API key in the spec when it needs one."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        if _needs_key(self.dependant):
            self.openapi_extra = {**(self.openapi_extra or {}), "security": [{SECURITY_SCHEME: []}]}

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = self.endpoint if _takes_only_request(self) else super().get_route_handler()
        names = declared_query(self)
        accepted = frozenset(names)
        # Families of parameters a route takes by prefix (GET /conversation's metric.<identifier>).
        prefixes = tuple((self.openapi_extra or {}).get("x-query-prefixes", ()))
        takes = f"takes {', '.join(names)}" if names else "takes no query parameters"
        where = f"{'/'.join(sorted(self.methods or ()))} {self.path}"

        async def checked(request: Request) -> Response:
            params = request.query_params
            if params:
                unknown = [
                    name
                    for name in dict.fromkeys(params.keys())
                    if name not in accepted and not name.startswith(prefixes)
                ]
                if unknown:
                    raise ValidationFailed(
                        f"Unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
                        f"{where} {takes}."
                    )
            return await handler(request)

        return checked


def json_body(model: type[RequestModel], *examples: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the route's (required) JSON request body."""
    _BODY_MODELS[model.__name__] = model
    media: dict[str, Any] = {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
    if examples:
        media["examples"] = {f"example{i + 1}": {"value": e} for i, e in enumerate(examples)}
    return {"requestBody": {"required": True, "content": {"application/json": media}}}


def lean(*path_parameters: str, **openapi_extra: Any) -> dict[str, Any]:
    """``openapi_extra`` for a route whose endpoint takes only the ``Request`` (see
    :class:`ContractRoute`): its path parameters (strings) and the API key it reads itself."""
    parameters = [
        {
            "in": "path",
            "name": name,
            "required": True,
            "schema": {"title": name.replace("_", " ").title(), "type": "string"},
        }
        for name in path_parameters
    ]
    parameters += openapi_extra.pop("parameters", ())
    return {
        **openapi_extra,
        **({"parameters": parameters} if parameters else {}),
        "security": [{SECURITY_SCHEME: []}],
    }


def _takes_only_request(route: APIRoute) -> bool:
    d = route.dependant
    return (
        inspect.iscoroutinefunction(route.endpoint)
        and d.request_param_name is not None
        and not (d.path_params or d.query_params or d.header_params or d.cookie_params or d.body_params)
        and not d.dependencies
        and not (d.websocket_param_name or d.http_connection_param_name or d.response_param_name)
        and not (d.background_tasks_param_name or d.security_scopes_param_name)
    )


def _needs_key(dependant: Dependant) -> bool:
    return any(d.call is get_org_id or _needs_key(d) for d in dependant.dependencies)


_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def allowed_methods(app: FastAPI, path: str, prefixes: tuple[str, ...]) -> list[str]:
    """Every method the spec declares on ``path`` (for the ``Allow`` header of a 405): Starlette
    would name only the methods of the first route with that path."""
    templates = getattr(app.state, "path_templates", None)
    if templates is None:
        templates = []
        for template, operations in app.openapi().get("paths", {}).items():
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            methods = [m.upper() for m in operations if m in _METHODS]
            templates.append((template.count("{"), re.compile(f"^{pattern}$"), methods))
        templates.sort(key=lambda t: t[0])  # the most literal first: /conversation/search before /{id}
        app.state.path_templates = templates
    for prefix in prefixes[1:]:  # the other prefixes serve the same routes as the first
        if path.startswith(prefix + "/"):
            path = prefixes[0] + path.removeprefix(prefix)
    matches = [(params, methods) for params, pattern, methods in templates if pattern.match(path)]
    found = [m for params, methods in matches if params == matches[0][0] for m in methods]
    if "GET" in found:
        found.append("HEAD")
    return list(dict.fromkeys(found))


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the contract (see the module docstring)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        for name, model in _BODY_MODELS.items():
            body = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
            schemas.update(body.pop("$defs", {}))
            schemas[name] = body
        components["securitySchemes"] = {
            SECURITY_SCHEME: {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key: 'Authorization: Bearer sk_…' (create one with `dispo keys create`).",
            }
        }
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
