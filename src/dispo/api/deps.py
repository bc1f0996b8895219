"""Request dependencies: the database, the settings, the analytics jobs and the caller's organization.

They are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in the thread pool, a
hop that costs more than the work these do. Blocking work (the key lookup on a cache miss) is
sent to the thread pool explicitly.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from dispo.analytics.jobs import Jobs
from dispo.api.auth import authenticate
from dispo.api.guard import ORG_ID_SCOPE_KEY
from dispo.config import Settings
from dispo.store.database import Database


async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_jobs(request: Request) -> Jobs:
    jobs: Jobs = request.app.state.jobs  # created once, by create_app
    return jobs


async def get_org_id(request: Request) -> str:
    org_id: str | None = request.scope.get(ORG_ID_SCOPE_KEY)  # the guard checked the key already
    if org_id is not None:
        return org_id
    return await authenticate(
        request.headers.get("authorization"), request.app.state.db, request.app.state.key_cache
    )


DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
JobsDep = Annotated[Jobs, Depends(get_jobs)]
OrgDep = Annotated[str, Depends(get_org_id)]
