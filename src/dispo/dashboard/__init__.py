"""The dashboard: server-rendered pages under ``/dashboard`` (Jinja2 templates, a little plain
JavaScript, Chart.js served from the package), behind a login with the organization's API key.

``install(app)`` mounts it on the API's app (``create_app``); the pages are not part of the API's
OpenAPI spec. See docs/dashboard.md.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from dispo.dashboard import calls, campaigns, configs, login, overview, web, webhooks
from dispo.dashboard.session import Sessions

__all__ = ["PREFIX", "install"]

PREFIX = web.PREFIX


def _home_router() -> APIRouter:
    router = APIRouter()

    @router.get("/")
    async def home(request: Request) -> Response:
        ctx = await web.begin(request)
        return web.to_login(ctx) if ctx.org_id is None else web.redirect(ctx, "/overview")

    return router


def install(app: FastAPI) -> None:
    """Mount the pages and static files on ``app`` (which has ``db``, ``settings``, ``key_cache``)."""
    state = app.state
    state.dashboard_sessions = Sessions(state.settings, state.db, state.key_cache)
    for module_router in (
        _home_router(),
        login.router,
        overview.router,
        calls.router,
        configs.router,
        campaigns.router,
        webhooks.router,
    ):
        app.include_router(module_router, prefix=PREFIX, include_in_schema=False)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=web.HERE / "static"), name="dashboard-static")

    @app.get(PREFIX, include_in_schema=False)
    async def bare(request: Request) -> Response:
        ctx = await web.begin(request)
        return web.redirect(ctx, "/")
