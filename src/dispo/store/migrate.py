"""Bring a database to the newest schema with Alembic, and check that it matches ``tables.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from dispo.store.database import Database
from dispo.store.tables import SEARCH_OBJECTS, metadata

_MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db.url.render_as_string(hide_password=False))
    return cfg


def migrate(db: Database, revision: str = "head") -> None:
    """Upgrade ``db`` to ``revision`` (the newest by default). Safe to run on every start."""
    cfg = alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def schema_diff(db: Database) -> list[Any]:
    """Differences between the migrated database and the declared tables; empty when they agree."""
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": _declared})
        return list(compare_metadata(ctx, metadata))


def _declared(name: str | None, type_: str, parent_names: Any) -> bool:
    """Whether ``schema_diff`` compares the object: transcript search's FTS5 table (and its shadow
    tables) and GIN index are created by migration 0008 and cannot be declared in tables.py."""
    return name not in SEARCH_OBJECTS
