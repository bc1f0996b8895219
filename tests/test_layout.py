"""The architecture, checked: what issue 9 made true stays true.

* SQL that writes (``.insert()``, ``.update()``, ``.delete()``, SQLAlchemy's ``insert``/``update``/
  ``delete`` constructs, raw ``INSERT``/``UPDATE``/``DELETE`` statements) lives in ``dispo.store``.
* No function is longer than 80 lines (migrations aside), except the ones listed below with the
  reason.
* Every operation whose route reads a request body declares the body's schema in the OpenAPI
  spec, and a JSON body's schema refuses unknown fields where its model does.

That every exception class is in ``dispo.errors``'s tree (or private to its module) is checked by
tests/test_errors_tree.py, with the rest of the error tree.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.params import Form
from fastapi.routing import APIRoute
from pydantic import BaseModel

import dispo
import dispo.api.routes
from dispo.api import schemas
from dispo.api.app import PREFIXES, create_app
from dispo.api.bodies import read_json
from dispo.config import Settings
from dispo.store.database import Database

PACKAGE = Path(dispo.__file__).resolve().parent
SOURCES = sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    """``dispo/api/app.py`` for a file of the package."""
    return path.relative_to(PACKAGE.parent).as_posix()


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


# ---------------------------------------------------------------------------------------------
# SQL that writes lives in dispo.store

STORE = "dispo/store/"
_WRITES = frozenset({"insert", "update", "delete"})
# A statement, not prose: the keywords in capitals as SQL is written here.
_RAW_WRITE = re.compile(r"\b(INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b")


def sql_writes(tree: ast.Module) -> list[tuple[int, str]]:
    """``(line, what)`` for each SQL write in a module's syntax tree."""
    found: list[tuple[int, str]] = []
    sqlalchemy_names: set[str] = set()  # local names of the sqlalchemy module (import sqlalchemy as sa)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            sqlalchemy_names |= {a.asname or a.name for a in node.names if a.name == "sqlalchemy"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            for alias in node.names:
                if alias.name in _WRITES:
                    found.append((node.lineno, f"from {node.module} import {alias.name}"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            if func.attr in _WRITES and not node.args and not node.keywords:
                found.append((node.lineno, f"{ast.unparse(func)}()"))  # table.update()
            elif (
                func.attr in _WRITES
                and isinstance(func.value, ast.Name)
                and func.value.id in sqlalchemy_names
            ):
                found.append((node.lineno, f"{ast.unparse(func)}(…)"))  # sa.insert(table)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = _RAW_WRITE.search(node.value)
            if match:
                found.append((node.lineno, f"SQL {match.group(0)!r}"))
    return sorted(found)


def test_sql_writes_are_found() -> None:
    """The finder itself: each form is found, and what only looks like one is not."""
    source = '''
import sqlalchemy as sa
from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

def f(conn, calls, values, options):
    """Update an agent; delete from the list what is gone; insert the rest."""
    conn.execute(calls.update().where(calls.c.pk == 1).values(status="failed"))
    conn.execute(calls.delete())
    conn.execute(sa.delete(calls))
    conn.exec_driver_sql("UPDATE calls SET status = 'failed'")
    conn.exec_driver_sql("INSERT INTO calls (pk) VALUES (1)")
    options.update(values)
    values.insert(0, "first")
    return select(calls)
'''
    found = [what for _, what in sql_writes(ast.parse(source))]
    assert found == [
        "from sqlalchemy import insert",
        "from sqlalchemy.dialects.postgresql import insert",
        "calls.update()",
        "calls.delete()",
        "sa.delete(…)",
        "SQL 'UPDATE calls SET'",
        "SQL 'INSERT INTO'",
    ]


def test_sql_writes_only_in_the_store() -> None:
    outside = [
        f"{_name(path)}:{line}: {what}"
        for path in SOURCES
        if not _name(path).startswith(STORE)
        for line, what in sql_writes(_tree(path))
    ]
    assert not outside, "SQL writes outside dispo/store/ (move them to a store function):\n" + "\n".join(
        outside
    )


# ---------------------------------------------------------------------------------------------
# No function over 80 lines

MAX_LINES = 80
EXEMPT_DIRS = ("dispo/store/migrations/",)  # a migration reads best as one function per step
# Functions allowed to be longer, as "path::qualified name": reason. Report renderers may be
# listed (a table per section can read better whole); none needs it today.
LONG_ALLOWED: dict[str, str] = {}


def _functions(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """``(qualified name, lines)`` of every function, methods and nested functions included;
    lines from ``def`` to the last line of the body (decorators not counted)."""

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                assert child.end_lineno is not None
                yield prefix + child.name, child.end_lineno - child.lineno + 1
                yield from walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)

    yield from walk(tree, "")


def _lengths() -> dict[str, int]:
    return {
        f"{_name(path)}::{function}": lines
        for path in SOURCES
        if not _name(path).startswith(EXEMPT_DIRS)
        for function, lines in _functions(_tree(path))
    }


def test_functions_are_measured() -> None:
    lengths = _lengths()
    assert lengths["dispo/api/app.py::create_app"] > 10
    assert "dispo/runtime/chat.py::IdleSweeper.start" in lengths  # methods, by class
    assert not any(name.startswith(EXEMPT_DIRS) for name in lengths)


def test_no_function_is_over_80_lines() -> None:
    too_long = sorted(
        f"{name}: {lines} lines"
        for name, lines in _lengths().items()
        if lines > MAX_LINES and name not in LONG_ALLOWED
    )
    assert not too_long, (
        f"functions over {MAX_LINES} lines (split them into named steps, or list them in "
        "LONG_ALLOWED with the reason):\n" + "\n".join(too_long)
    )


def test_long_allowed_lists_only_long_functions() -> None:
    lengths = _lengths()
    stale = sorted(name for name in LONG_ALLOWED if lengths.get(name, 0) <= MAX_LINES)
    assert not stale, f"LONG_ALLOWED names functions that are gone or no longer long: {stale}"


# ---------------------------------------------------------------------------------------------
# A request-body schema for every operation that takes a body

# POST operations that take no body, by method and path (under the first prefix); each verified
# against its route: it reads nothing of the request but the path and the key.
BODYLESS = {
    "POST /campaign/{campaign_id}/start": "starts or resumes the campaign as it is",
    "POST /campaign/{campaign_id}/pause": "pauses the campaign",
    "POST /campaign/{campaign_id}/stop": "stops the campaign",
    "POST /conversation/chat/{call_id}/end": "hangs up the chat",
    "POST /webhook/{webhook_id}/rotate-secret": "makes a new secret",
    "POST /webhook/{webhook_id}/deliveries/{delivery_id}/replay": "sends the delivery again",
}
_WITH_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Reading the body by hand, not through a declared parameter or bodies.read_json.
_RAW_BODY_READ = re.compile(r"\.(body|json|form|stream)\(\)")


def _routes() -> Iterator[tuple[str, APIRoute]]:
    """``("METHOD /path", route)`` for every HTTP operation of every router in dispo.api.routes."""
    for info in pkgutil.iter_modules(dispo.api.routes.__path__, "dispo.api.routes."):
        module = importlib.import_module(info.name)
        for route in module.router.routes:
            if isinstance(route, APIRoute):
                for method in sorted(route.methods or ()):
                    yield f"{method} {route.path}", route


def _uses_read_json(dependant: Dependant) -> bool:
    return any(d.call is read_json or _uses_read_json(d) for d in dependant.dependencies)


def body_kind(route: APIRoute) -> str | None:
    """How the route reads its body: "json", "multipart", "raw" (by hand), or None."""
    if _uses_read_json(route.dependant):
        return "json"
    params = route.dependant.body_params
    if params:
        return "multipart" if any(isinstance(p.field_info, Form) for p in params) else "json"
    if _RAW_BODY_READ.search(inspect.getsource(route.endpoint)):
        return "raw"
    return None


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data_dir = tmp_path_factory.mktemp("layout")
    db = Database(f"sqlite:///{data_dir / 'dispo.db'}")
    try:
        return create_app(Settings(data_dir=data_dir, agent_brain="scripted"), db).openapi()
    finally:
        db.dispose()


def _operation(spec: dict[str, Any], label: str) -> dict[str, Any]:
    method, path = label.split(" ", 1)
    # Routes outside the API prefixes (the carrier webhooks) sit at their own path.
    operation: dict[str, Any] = spec["paths"].get(PREFIXES[0] + path, spec["paths"].get(path))[method.lower()]
    return operation


def test_body_readers_are_found() -> None:
    kinds = {label: body_kind(route) for label, route in _routes()}
    assert kinds["POST /agent"] == "json"
    assert kinds["DELETE /audience/{audience_id}/members"] == "json"  # a DELETE with a body
    assert kinds["POST /audience"] == "multipart"
    assert kinds["GET /conversation"] is None
    assert kinds["POST /campaign/{campaign_id}/start"] is None


def test_every_post_put_patch_reads_a_body_unless_listed() -> None:
    routes = dict(_routes())
    assert set(BODYLESS) <= set(routes), f"BODYLESS names no route: {sorted(set(BODYLESS) - set(routes))}"
    for label, route in routes.items():
        if label.split()[0] not in _WITH_BODY_METHODS:
            continue
        if label in BODYLESS:
            assert body_kind(route) is None, f"{label} reads a body: remove it from BODYLESS"
        else:
            assert body_kind(route) is not None, f"{label} reads no body: add it to BODYLESS if that is right"


def test_every_operation_in_the_spec_is_a_route_checked_here(spec: dict[str, Any]) -> None:
    paths = [label.split(" ", 1)[1] for label, _ in _routes()]
    checked = {PREFIXES[0] + path for path in paths} | set(paths)
    for path, operations in spec["paths"].items():
        if path not in checked:
            assert set(operations) <= {"get", "head"}, f"{path} is not in dispo.api.routes"


def _component(spec: dict[str, Any], schema: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """``(component name or None, schema)``, following a ``$ref``."""
    ref = schema.get("$ref")
    if ref is None:
        return None, schema
    name = ref.removeprefix("#/components/schemas/")
    assert name in spec["components"]["schemas"], f"{ref} is not in the spec's components"
    return name, spec["components"]["schemas"][name]


def test_every_operation_that_reads_a_body_declares_its_schema(spec: dict[str, Any]) -> None:
    content_types = {"json": "application/json", "multipart": "multipart/form-data"}
    for label, route in _routes():
        kind = body_kind(route)
        body = _operation(spec, label).get("requestBody")
        if kind is None:
            assert body is None, f"{label} reads no body but the spec declares one"
            continue
        assert body is not None, f"{label} reads a body the spec does not declare"
        assert kind in content_types, f"{label} reads its body by hand: declare it, or use bodies.JsonBody"
        # Form fields without a file (a carrier's webhook) are declared urlencoded.
        forms = {content_types[kind], "application/x-www-form-urlencoded"} if kind == "multipart" else set()
        assert list(body["content"]) == [content_types[kind]] or set(body["content"]) < forms, label
        name, schema = _component(spec, next(iter(body["content"].values()))["schema"])
        assert schema.get("type") == "object", f"{label}: the body's schema ({name or 'inline'}) is no object"
        assert schema.get("properties"), (
            f"{label}: the body's schema ({name or 'inline'}) names no properties"
        )
        if kind == "multipart":
            fields = [p.alias for p in route.dependant.body_params if isinstance(p.field_info, Form)]
            for field in fields:
                assert field in schema["properties"], f"{label}: form field {field} is not in the schema"
        else:
            model = getattr(schemas, name or "", None)
            assert isinstance(model, type), (
                f"{label}: the body's schema {name} is not a model of dispo.api.schemas"
            )
            assert issubclass(model, schemas.RequestModel), f"{label}: {name} is not a RequestModel"


def _models_in(spec: dict[str, Any], name: str, seen: set[str]) -> Iterator[str]:
    """``name`` and every component its schema refers to, transitively."""
    if name in seen:
        return
    seen.add(name)
    yield name
    for ref in re.findall(r"#/components/schemas/(\w+)", repr(spec["components"]["schemas"][name])):
        yield from _models_in(spec, ref, seen)


def test_json_body_schemas_refuse_unknown_fields_where_their_models_do(spec: dict[str, Any]) -> None:
    seen: set[str] = set()
    checked = []
    for label, route in _routes():
        if body_kind(route) != "json":
            continue
        name, _ = _component(
            spec, _operation(spec, label)["requestBody"]["content"]["application/json"]["schema"]
        )
        assert name is not None
        for component in _models_in(spec, name, seen):
            model = getattr(schemas, component, None)
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                continue
            extra = model.model_config.get("extra")
            declared = spec["components"]["schemas"][component].get("additionalProperties")
            if extra == "forbid":
                assert declared is False, f"{component} forbids unknown fields; its schema must say so"
            else:
                assert declared is not False, f"{component} keeps unknown fields; its schema refuses them"
            checked.append(component)
    assert {"AgentCreate", "CampaignCreate", "DispositionMetricIn", "LanguageIn"} <= set(checked)
