"""Shared fixtures.

Every test that asks for ``db`` runs twice: on SQLite and on PostgreSQL. PostgreSQL comes from
``DISPO_TEST_POSTGRES_URL`` (default: this machine's server, database ``test``); a fresh database
is created from it per test session and dropped afterwards. Where no server answers, the
PostgreSQL half is skipped with the reason printed in the summary (``-ra``), never silently.

Tests share one database per backend and stay apart by organization: each ``org`` fixture makes a
new one, and every query Dispo runs is scoped to an organization.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
import uvicorn
from fastapi.testclient import TestClient

from dispo.api.app import create_app
from dispo.config import Settings
from dispo.store import orgs
from dispo.store.database import Database
from dispo.store.migrate import migrate

POSTGRES_URL = os.environ.get("DISPO_TEST_POSTGRES_URL", "postgresql+psycopg://127.0.0.1:5432/test")


def _postgres_admin_url() -> sa.URL | None:
    url = sa.make_url(Settings(database_url=POSTGRES_URL).database_url)
    try:
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
    except Exception as exc:  # any failure to reach the server means "skip PostgreSQL"
        _POSTGRES_PROBLEM.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        return None
    return url


_POSTGRES_PROBLEM: list[str] = []


@pytest.fixture(scope="session")
def postgres_admin() -> sa.URL:
    url = _postgres_admin_url()
    if url is None:
        pytest.skip(
            f"PostgreSQL not reachable at {POSTGRES_URL} ({_POSTGRES_PROBLEM[-1]}); "
            "set DISPO_TEST_POSTGRES_URL to run the PostgreSQL half of the suite."
        )
    return url


@dataclass
class TempPostgres:
    admin: sa.URL

    def create(self) -> str:
        name = f"dispo_test_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(self.admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return self.admin.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = sa.make_url(url).database
        engine = sa.create_engine(self.admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()


@pytest.fixture(scope="session")
def temp_postgres(postgres_admin: sa.URL) -> TempPostgres:
    return TempPostgres(postgres_admin)


def _session_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "dispo.db"
        db = Database(f"sqlite:///{path}")
        migrate(db)
        yield db
        db.dispose()
    else:
        temp: TempPostgres = request.getfixturevalue("temp_postgres")
        url = temp.create()
        db = Database(url)
        migrate(db)
        yield db
        db.dispose()
        temp.drop(url)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """A migrated database, shared by the session; isolate tests with a fresh ``org``."""
    yield from _session_db(request, tmp_path_factory)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a brand-new, unmigrated database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    temp: TempPostgres = request.getfixturevalue("temp_postgres")
    url = temp.create()
    yield url
    temp.drop(url)


@dataclass
class Org:
    id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture
def org(db: Database) -> Org:
    """A new organization with one API key, in the session's database."""
    with db.write() as conn:
        org_id = orgs.create_org(conn, f"Test org {uuid.uuid4().hex[:6]}")
        key = orgs.create_key(conn, org_id, name="test")
    return Org(org_id, key.secret)


@pytest.fixture
def other_org(db: Database) -> Org:
    with db.write() as conn:
        org_id = orgs.create_org(conn, "Somebody else")
        key = orgs.create_key(conn, org_id, name="test")
    return Org(org_id, key.secret)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


@pytest.fixture
def client(db: Database, settings: Settings, org: Org) -> Iterator[TestClient]:
    """An in-process client authenticated as ``org``."""
    app = create_app(settings, db)
    with TestClient(app, headers=org.headers) as c:
        yield c


@pytest.fixture
def anon_client(db: Database, settings: Settings) -> Iterator[TestClient]:
    """An in-process client without an API key."""
    with TestClient(create_app(settings, db)) as c:
        yield c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str  # e.g. http://127.0.0.1:54321

    @property
    def api(self) -> str:
        return f"{self.url}/api/v1"


@pytest.fixture
def live_server(db: Database, settings: Settings) -> Iterator[LiveServer]:
    """A real uvicorn server on a free port, serving the session database, for external clients."""
    port = _free_port()
    config = uvicorn.Config(create_app(settings, db), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start within 10 s")
        time.sleep(0.02)
    yield LiveServer(f"http://127.0.0.1:{port}")
    server.should_exit = True
    thread.join(timeout=10)
