"""The FastAPI application: routers under ``/api/v1`` and ``/atoms/v1``, the envelope, timing.

What the app's code needs beyond a request is created once, here, and kept on ``app.state``:
``db``, ``backend`` (the LLM, loaded on first use), ``jobs`` (the analytics queue, with the backend
its jobs analyze with) and ``runner`` (places calls and chat replies with both); routes and the
background services (dialer, idle-chat sweeper, analytics workers) take them from there.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispo import __version__
from dispo.analytics.jobs import Jobs
from dispo.api import contract
from dispo.api.auth import KeyCache
from dispo.api.deps import ReadThreads
from dispo.api.guard import RequestGuard
from dispo.api.responses import error, ok
from dispo.api.routes import (
    agents,
    audiences,
    campaigns,
    conversations,
    exports,
    imports,
    latency,
    live_calls,
    metrics,
    phone_numbers,
    reanalyze,
    recordings,
    twilio,
    webcall,
)
from dispo.api.routes import webhooks as webhook_routes
from dispo.api.schemas import Envelope, HealthPublic, describe, errors
from dispo.config import Settings
from dispo.errors import DispoError, NotFound, RateLimited
from dispo.llm import Backend, LazyBackend
from dispo.runtime.runner import CallRunner
from dispo.store.database import Database
from dispo.voice.links import RecordingLinks, load_secret
from dispo.webhooks.service import Webhooks

log = logging.getLogger("dispo.api")

PREFIXES = ("/api/v1", "/atoms/v1")  # SDK 4.x helpers use the first, SDK 5.x the second
DASHBOARD = "/dashboard"  # the browser pages (dispo.dashboard)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Move everything alive at start-up (modules, SQLAlchemy's compiled caches) out of the
    # collector's reach: otherwise each full collection walks it all, and those pauses were the
    # p99 tails of large responses (limit=100: p99 39 ms -> 10 ms).
    gc.collect()
    gc.freeze()
    jobs: Jobs = app.state.jobs
    if app.state.run_workers:
        # Analytics workers in process (`dispo serve` with the SQLite queue): started with the
        # server, stopped with it (a job cut short is picked up again by the sweeper).
        jobs.start(app.state.run_workers)
    hooks: Webhooks = app.state.webhooks
    serving = bool(app.state.run_workers or app.state.run_dialer)  # `dispo serve`, not a test client
    if serving:
        # Webhook deliveries (docs/webhooks.md): the relay queues due outbox rows, first what an
        # earlier process left; delivery threads run here with the in-process (SQLite) queue.
        hooks.start(app.state.settings.webhook_workers if app.state.run_workers else 0)
    dialer = None
    if app.state.run_dialer:
        # The campaign dialer (`dispo serve`): resumes running campaigns, reconciling any member a
        # previous process left mid-call, and stops with the server after its calls in progress.
        from dispo.runtime.dialer import Dialer

        dialer = app.state.dialer = Dialer(app.state.db, app.state.settings, app.state.runner)
        dialer.start()
    # Chats nobody writes to end on their silence timeout (or maximum duration) without a next
    # message: a sweep every few seconds while the server is up.
    from dispo.runtime.chat import IdleSweeper

    sweeper = IdleSweeper(app.state.db, app.state.settings, jobs)
    sweeper.start()
    try:
        yield
    finally:
        sweeper.stop()
        if dialer is not None:
            dialer.stop()
        app.state.runner.shutdown(wait=False)
        app.state.readers.shutdown()
        if app.state.run_workers:
            jobs.stop()
        if serving:
            hooks.stop()
        # Last, once nothing calls the model any more: release it (stops its worker processes).
        app.state.backend.close()


def create_app(
    settings: Settings,
    db: Database | None = None,
    *,
    run_workers: int = 0,
    run_dialer: bool = False,
    runner: CallRunner | None = None,
    backend: Backend | None = None,
    jobs: Jobs | None = None,
    webhooks: Webhooks | None = None,
) -> FastAPI:
    """Build the app. ``db`` defaults to the settings' database (already migrated by the caller).

    ``run_workers`` > 0 runs that many post-call analytics worker threads while the app is up;
    ``run_dialer`` runs the campaign dialer. ``runner`` places calls (outbound, campaigns, chat
    replies); by default one with the configured telephony providers. ``backend`` is the LLM
    (default: the settings', loaded on first use, released when the app stops) and ``jobs`` the
    analytics queue (default: the settings'); a given ``runner`` brings its own unless they are
    given too. Tests pass ``backend=ScriptedBackend(...)``, ``jobs=Jobs(..., queue=MemoryQueue())``.
    """
    app = FastAPI(
        title="Dispo",
        version=__version__,
        summary="Self-hosted call logs and post-call analytics, compatible with the Atoms API.",
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.db = db or Database(settings.effective_database_url, pool_size=settings.db_pool_size)
    app.state.key_cache = KeyCache(settings.auth_cache_seconds)
    app.state.readers = ReadThreads(settings.db_pool_size)  # the routes' database reads (deps.read)
    app.state.run_workers = run_workers
    app.state.run_dialer = run_dialer
    _wire(app, settings, runner, backend, jobs)
    # Webhook deliveries: relayed and delivered while a served app is up (default: the settings' queue).
    app.state.webhooks = webhooks or Webhooks(settings, app.state.db)
    app.state.recording_links = RecordingLinks(
        lambda: load_secret(settings.recording_secret, settings.data_dir), settings.recording_link_seconds
    )
    app.state.dialer = None

    app.router.route_class = contract.ContractRoute  # refuses undeclared query parameters
    for i, prefix in enumerate(PREFIXES):
        # exports and imports before conversations: /conversation/export is not a call id.
        routers = (exports, imports, metrics, conversations, reanalyze, live_calls, agents, phone_numbers)
        for module in (*routers, audiences, campaigns, webhook_routes, recordings, latency):
            app.include_router(module.router, prefix=prefix, include_in_schema=i == 0)

    app.include_router(twilio.router)  # outside the API prefixes: carriers send no API key
    app.include_router(webcall.router)  # the page, and its socket (the key comes as a parameter)

    @app.get(
        "/health",
        tags=["meta"],
        summary="Liveness and database check",
        response_model=Envelope[HealthPublic],
        responses=errors(400, 503),
    )
    def health() -> Response:
        app.state.db.ping()
        return ok({"version": __version__, "database": app.state.db.dialect})

    from dispo import dashboard  # the pages, after the API (docs/dashboard.md)

    dashboard.install(app)
    _install_error_handlers(app)
    contract.install(app)  # the OpenAPI spec as the contract: 400 not 422, security, body models
    # Body caps, timeouts, rate limits and JSON that round-trips, before any route (guard.py).
    app.add_middleware(RequestGuard, settings=settings, prefixes=PREFIXES)
    app.add_middleware(ServerTiming)
    return app


def _wire(
    app: FastAPI, settings: Settings, runner: CallRunner | None, backend: Backend | None, jobs: Jobs | None
) -> None:
    """The one backend, the one Jobs and the runner, each made here unless given, sharing one
    another: what the routes and the background services use."""
    if runner is not None:
        backend, jobs = backend or runner.backend, jobs or runner.jobs
    backend = backend or (jobs.backend if jobs is not None else LazyBackend(settings))
    jobs = jobs or Jobs(settings, app.state.db, backend=backend)
    app.state.backend, app.state.jobs = backend, jobs
    app.state.runner = runner or CallRunner(app.state.db, settings, backend=backend, jobs=jobs)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DispoError)
    async def dispo_error(request: Request, exc: DispoError) -> Response:
        if request.url.path.startswith(DASHBOARD):
            from dispo.dashboard.web import error_page

            return error_page(request, exc)  # a page for the browser, not the API's envelope
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        return error(exc.status_code, exc.errors, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> Response:
        return error(400, [describe(e) for e in exc.errors()])

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404 and request.url.path.startswith(DASHBOARD):
            from dispo.dashboard.web import error_page

            return error_page(request, NotFound(f"No page {request.url.path}: start again from /dashboard/."))
        if exc.status_code == 404:
            message = f"No endpoint {request.method} {request.url.path}: see /docs for the API."
        elif exc.status_code == 405:
            message = (
                f"{request.method} is not allowed on {request.url.path}: see /docs for the methods it takes."
            )
            allowed = contract.allowed_methods(app, request.url.path, PREFIXES)
            if allowed:
                return error(405, [message], {"Allow": ", ".join(allowed)})
        else:
            message = str(exc.detail)
        return error(exc.status_code, [message], getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("Unhandled error on %s %s", request.method, request.url.path)
        return error(500, ["Internal error: the server log has the details. Please report it with the time."])


class ServerTiming:
    """Adds ``Server-Timing: app;dur=<ms>``: time spent in the app, which benchmarks read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def send_with_timing(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = (time.perf_counter() - start) * 1000
                headers = list(message.get("headers", []))
                headers.append((b"server-timing", f"app;dur={elapsed:.3f}".encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_timing)
