"""What every dashboard page shares: the templates, the session of the request, rendering, and the
answers for a visitor who is not logged in or sends a form without its CSRF token."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dispo.dashboard.session import CSRF_FIELD, Session, Sessions, check_csrf
from dispo.errors import DispoError
from dispo.timeutil import ms_to_iso

PREFIX = "/dashboard"
HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals.update(prefix=PREFIX, csrf_field=CSRF_FIELD)


def _short_time(value: Any) -> str:
    """``2026-01-19 07:28:43`` for an ISO instant or epoch ms (UTC)."""
    if value is None or value == "":
        return "—"
    text = ms_to_iso(value) if isinstance(value, int) else str(value)
    return (text or "—").replace("T", " ")[:19]


def query_string(params: dict[str, Any], **changes: Any) -> str:
    """``?a=1&b=2``: ``params`` with ``changes`` (None removes a key), for links that keep a view."""
    merged = {k: v for k, v in {**params, **changes}.items() if v not in (None, "")}
    return "?" + urlencode(merged) if merged else "?"


templates.env.filters.update(
    short_time=_short_time,
    urlquote=lambda s: quote(str(s), safe=""),
    pairs=lambda items: [(x, x) for x in items],
)
templates.env.globals.update(query=query_string)


@dataclass
class Ctx:
    """The request's session; ``org_id`` is None until the visitor logs in."""

    request: Request
    session: Session

    @property
    def org_id(self) -> str | None:
        return self.session.org_id


def sessions(request: Request) -> Sessions:
    found: Sessions = request.app.state.dashboard_sessions
    return found


async def begin(request: Request) -> Ctx:
    """Load the session (its key is checked again on every request: see ``session.Sessions.load``)."""
    return Ctx(request, await run_in_threadpool(sessions(request).load, request))


# Scripts, styles and images from the dashboard only (nothing inline, no CDN); recordings from
# wherever the provider keeps them; never framed by another site (its forms cannot be clickjacked).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "media-src * data: blob:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
        "base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def finish(ctx: Ctx, response: Response) -> Response:
    sessions(ctx.request).save(ctx.request, response, ctx.session)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def render(ctx: Ctx, template: str, context: dict[str, Any], status_code: int = 200) -> Response:
    context = {
        "request": ctx.request,
        "csrf": ctx.session.csrf,
        "logged_in": ctx.org_id is not None,
        "flash": ctx.session.pop_flash(),
        **context,
    }
    return finish(ctx, templates.TemplateResponse(ctx.request, template, context, status_code=status_code))


def redirect(ctx: Ctx, path: str, flash: str | None = None) -> Response:
    """303 to ``path`` under the dashboard (after a POST: the browser GETs it)."""
    if flash:
        ctx.session.set_flash(flash)
    return finish(ctx, RedirectResponse(PREFIX + path, status_code=303))


def to_login(ctx: Ctx) -> Response:
    """Where a page sends a visitor who is not logged in: the login page, coming back after."""
    target = ctx.request.url.path + (f"?{ctx.request.url.query}" if ctx.request.url.query else "")
    return finish(ctx, RedirectResponse(f"{PREFIX}/login?{urlencode({'next': target})}", status_code=303))


async def form_of(ctx: Ctx) -> dict[str, Any]:
    """The POSTed form after its CSRF check (a ``Forbidden`` the error page shows otherwise)."""
    form = await ctx.request.form()
    check_csrf(ctx.session, form.get(CSRF_FIELD))
    return {key: form.getlist(key) if len(form.getlist(key)) > 1 else form.get(key) for key in form}


def error_page(request: Request, exc: DispoError) -> Response:
    """A ``DispoError`` raised under ``/dashboard`` as a page (the API answers with its envelope)."""
    titles = {401: "Not logged in", 403: "Refused", 404: "Not found", 409: "Not possible now"}
    context = {
        "request": request,
        "title": titles.get(exc.status_code, "Something is wrong"),
        "errors": exc.errors,
        "status": exc.status_code,
        "logged_in": False,
        "csrf": "",
        "flash": None,
    }
    response = templates.TemplateResponse(request, "error.html", context, status_code=exc.status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def body_of(response: Response) -> Any:
    """The ``data`` of an API route's envelope (the dashboard calls some routes' functions)."""
    return orjson.loads(bytes(response.body))["data"]
