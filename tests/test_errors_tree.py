"""Every public error Dispo raises is in :mod:`dispo.errors`, and its docstring draws all of them.

The tree is only a map worth reading if nothing is left out of it: these tests import every module
of the package and look at every subclass of :class:`~dispo.errors.DispoError` that exists, and
at every other exception class the package defines: each is in the tree, in the SDK's own tree, or
private to the module that raises and catches it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import dispo
from dispo import errors
from dispo.errors import DispoError

# Modules that cannot be imported by a test, and why. Their source is still read (see
# test_modules_not_imported_define_no_errors), so nothing is skipped silently.
NOT_IMPORTABLE = {
    "dispo.store.migrations.env": (
        "Alembic's migration environment: it reads alembic.context.config at import, which exists "
        "only while Alembic runs it"
    ),
}

MODULES = sorted(m.name for m in pkgutil.walk_packages(dispo.__path__, "dispo."))


def _import_all() -> None:
    for name in MODULES:
        if name not in NOT_IMPORTABLE:
            importlib.import_module(name)


def _subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def _tree_classes() -> dict[str, type]:
    return {
        name: obj
        for name, obj in vars(errors).items()
        if inspect.isclass(obj) and obj.__module__ == "dispo.errors"
    }


# A line of the drawing: "    DispoError", "    ├── BadRequest (400)", "    │   └── ValidationFailed (400)  ...".
_TREE_LINE = re.compile(
    r"^    (?P<bars>(?:[│ ]   )*)(?P<branch>[├└]── )?(?P<name>[A-Z]\w+)(?: \((?P<code>\d{3})\))?(?: |$)"
)


def _drawing() -> dict[str, tuple[str | None, int | None]]:
    """``{name: (parent name, status code)}`` as the docstring draws them."""
    assert errors.__doc__
    drawn: dict[str, tuple[str | None, int | None]] = {}
    stack: list[str] = []
    for line in errors.__doc__.splitlines():
        m = _TREE_LINE.match(line)
        if m is None or (m["branch"] is None and (m["bars"] or stack)):
            continue  # prose, or a description carried over to the next line
        depth = len(m["bars"]) // 4 + (1 if m["branch"] else 0)
        del stack[depth:]
        assert len(stack) == depth, f"the drawing's line {line!r} has no parent"
        drawn[m["name"]] = (stack[-1] if stack else None, int(m["code"]) if m["code"] else None)
        stack.append(m["name"])
    return drawn


def test_modules_are_found() -> None:
    assert "dispo.errors" in MODULES
    assert "dispo.llm.base" in MODULES
    assert "dispo.api.routes.live_calls" in MODULES  # walks into subpackages
    assert set(NOT_IMPORTABLE) <= set(MODULES), "NOT_IMPORTABLE names a module that no longer exists"


@pytest.mark.parametrize("name", MODULES)
def test_every_module_imports(name: str) -> None:
    if name in NOT_IMPORTABLE:
        pytest.skip(f"{name} is not imported: {NOT_IMPORTABLE[name]}")
    importlib.import_module(name)


def test_modules_not_imported_define_no_errors() -> None:
    """The modules the walk cannot import define no exception class at all (read from source)."""
    for name in NOT_IMPORTABLE:
        spec = importlib.util.find_spec(name)
        assert spec is not None
        assert spec.origin is not None
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
        classes = [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
        assert not classes, f"{name} defines {classes}; check they are not errors, or import it here"


def test_every_public_error_is_defined_in_errors_py() -> None:
    _import_all()
    misplaced = sorted(
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in _subclasses(DispoError)
        if cls.__module__.startswith("dispo.")
        and not cls.__name__.startswith("_")
        and cls.__module__ != "dispo.errors"
    )
    assert not misplaced, f"public errors defined outside dispo.errors: {misplaced}"


# Exception trees other than dispo.errors', by module, and why (errors.py's docstring says it too).
OTHER_TREES = {
    "dispo.sdk._errors": "the SDK's own tree, mirroring the official SDK's, raised on the client side",
}


def _names_used(tree: ast.AST) -> set[str]:
    """Every name a module's code uses: variables, attributes, imports."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name.split(".")[-1])
            names.add(node.name.split(".")[-1])
    return names


def _uses_by_module() -> dict[str, set[str]]:
    uses: dict[str, set[str]] = {}
    for name in MODULES:
        spec = importlib.util.find_spec(name)
        assert spec is not None
        assert spec.origin is not None
        uses[name] = _names_used(ast.parse(Path(spec.origin).read_text(encoding="utf-8")))
    return uses


def test_every_exception_class_is_in_the_tree_or_private_to_its_module() -> None:
    """Not only DispoError's subclasses: any exception class Dispo defines is in dispo.errors, in
    one of OTHER_TREES, or private (a leading underscore) and used by no other module, so it is
    raised and caught within its module and never reaches a caller."""
    _import_all()
    assert set(OTHER_TREES) <= set(MODULES), "OTHER_TREES names a module that no longer exists"
    uses = _uses_by_module()
    misplaced, leaking = [], []
    for cls in _subclasses(BaseException):
        module = cls.__module__
        if not module.startswith("dispo.") or module == "dispo.errors" or module in OTHER_TREES:
            continue
        where = f"{module}.{cls.__qualname__}"
        if not cls.__name__.startswith("_"):
            misplaced.append(where)
            continue
        leaking += [
            f"{where} (used in {other})"
            for other, names in uses.items()
            if other != module and cls.__name__ in names
        ]
    assert not misplaced, f"public exception classes outside dispo.errors: {sorted(misplaced)}"
    assert not leaking, f"private exception classes used outside their module: {sorted(leaking)}"


def test_private_exceptions_are_found() -> None:
    """The walk above sees the private control-flow exceptions, not only DispoError's tree."""
    _import_all()
    found = {f"{c.__module__}.{c.__name__}" for c in _subclasses(BaseException)}
    assert {"dispo.llm.worker._Died", "dispo.api.guard._Refused", "dispo.sdk._errors.DispoSDKError"} <= found


def test_private_errors_stay_private() -> None:
    """The private DispoError subclasses (control flow) are module-private names."""
    _import_all()
    for cls in _subclasses(DispoError):
        if cls.__module__.startswith("dispo.") and cls.__name__.startswith("_"):
            module = importlib.import_module(cls.__module__)
            assert cls.__name__ not in getattr(module, "__all__", ()), cls


def test_every_error_is_drawn_in_the_docstring_under_its_parent_with_its_status() -> None:
    drawn = _drawing()
    classes = _tree_classes()
    assert set(drawn) == set(classes), (
        f"in errors.py, not drawn: {sorted(set(classes) - set(drawn))}; "
        f"drawn, not in errors.py: {sorted(set(drawn) - set(classes))}"
    )
    for name, cls in classes.items():
        parent, code = drawn[name]
        if parent is None:
            assert cls is DispoError
            continue
        assert cls.__bases__ == (classes[parent],), f"{name} is drawn under {parent}"
        if code is not None:
            assert cls.status_code == code, f"{name} is drawn with {code}, is {cls.status_code}"


def test_every_error_is_exported() -> None:
    assert sorted(errors.__all__) == sorted(_tree_classes())


def test_old_import_paths_still_work() -> None:
    from dispo.analytics.jobs import QueueConfigError
    from dispo.analytics.lifecycle import AnalysisFailed
    from dispo.evaluation import DatasetError
    from dispo.evaluation.dataset import DatasetError as DatasetErrorFromDataset
    from dispo.llm import LLMError, ModelCrashed, ModelTimedOut
    from dispo.llm.base import LLMError as LLMErrorFromBase
    from dispo.telephony import ProviderError
    from dispo.telephony.base import ProviderError as ProviderErrorFromBase

    assert QueueConfigError is errors.QueueConfigError
    assert AnalysisFailed is errors.AnalysisFailed
    assert DatasetError is DatasetErrorFromDataset is errors.DatasetError
    assert LLMError is LLMErrorFromBase is errors.LLMError
    assert ModelCrashed is errors.ModelCrashed
    assert ModelTimedOut is errors.ModelTimedOut
    assert ProviderError is ProviderErrorFromBase is errors.ProviderError


def test_errors_py_imports_nothing_from_dispo() -> None:
    """So that any module can import it without a cycle."""
    assert errors.__file__ is not None
    tree = ast.parse(Path(errors.__file__).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not any(a.name.split(".")[0] == "dispo" for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0
            assert (node.module or "").split(".")[0] != "dispo"
