"""Logging in with the organization's API key, and out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from dispo.api.auth import authenticate
from dispo.dashboard import web
from dispo.errors import Unauthorized
from dispo.store.orgs import hash_key

router = APIRouter()


def _safe_next(target: object) -> str:
    """Only a path of the dashboard (never another site): an open redirect otherwise."""
    if isinstance(target, str) and target.startswith(web.PREFIX + "/") and not target.startswith("//"):
        return target.removeprefix(web.PREFIX)
    return "/"


@router.get("/login")
async def login_page(request: Request, next: str = "") -> Response:
    ctx = await web.begin(request)
    if ctx.org_id is not None:  # logged in already: on to where the link pointed
        return web.redirect(ctx, _safe_next(next))
    return web.render(ctx, "login.html", {"next": next, "error": None})


@router.post("/login")
async def login(request: Request) -> Response:
    ctx = await web.begin(request)
    form = await web.form_of(ctx)
    key = str(form.get("api_key") or "").strip()
    target = _safe_next(form.get("next"))
    state = request.app.state
    try:
        if not key:
            raise Unauthorized("Enter the API key: it starts with sk_ (`dispo keys create` makes one).")
        org_id = await authenticate(f"Bearer {key}", state.db, state.key_cache)
    except Unauthorized as exc:
        context = {"next": form.get("next") or "", "error": exc.message}
        return web.render(ctx, "login.html", context, status_code=401)
    key_hash = await run_in_threadpool(hash_key, key)
    web.sessions(request).login(ctx.session, key_hash, org_id)
    return web.redirect(ctx, target)


@router.post("/logout")
async def logout(request: Request) -> Response:
    ctx = await web.begin(request)
    await web.form_of(ctx)
    web.sessions(request).logout(ctx.session)
    return web.redirect(ctx, "/login", flash="Logged out.")
