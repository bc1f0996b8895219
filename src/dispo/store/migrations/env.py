"""Alembic environment. Run through ``dispo migrate`` (or ``dispo.store.migrate``), not by hand."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from dispo.store.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite can't ALTER most things in place; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run migrations with `dispo migrate`; it passes the database connection to Alembic.")
_run(connection)
