"""Request dependencies: the database and the caller's organization (from the Bearer key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from dispo.config import Settings
from dispo.errors import Unauthorized
from dispo.store.database import Database
from dispo.store.orgs import KEY_PREFIX, org_for_key


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_org_id(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized(
            "Missing API key: send 'Authorization: Bearer sk_…'. Create a key with `dispo keys create`."
        )
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise Unauthorized(
            "Authorization must be 'Bearer sk_…' (the word Bearer, a space, then the key). "
            "Create a key with `dispo keys create`."
        )
    if not secret.startswith(KEY_PREFIX):
        raise Unauthorized(
            "That is not a Dispo API key: keys start with 'sk_'. Create one with `dispo keys create`."
        )
    with get_db(request).read() as conn:
        org_id = org_for_key(conn, secret)
    if org_id is None:
        raise Unauthorized(
            "Unknown or revoked API key: check the key, or create one with `dispo keys create`."
        )
    return org_id


DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
OrgDep = Annotated[str, Depends(get_org_id)]
