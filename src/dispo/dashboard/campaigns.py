"""Campaigns: the list, one campaign with its progress (polled every 2 s by the page, no reload),
and start, pause and stop through the API's own route functions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from dispo.api.routes import campaigns as campaign_routes
from dispo.dashboard import web
from dispo.errors import DispoError, NotFound
from dispo.ids import is_object_id
from dispo.store import campaigns as store

router = APIRouter()

ACTIONS = ("start", "pause", "stop")


@router.get("/campaigns")
async def campaign_list(request: Request) -> Response:
    ctx = await web.begin(request)
    if ctx.org_id is None:
        return web.to_login(ctx)
    org_id = ctx.org_id

    def work() -> list[Any]:
        with request.app.state.db.read() as conn:
            rows, _ = store.list_campaigns(conn, org_id, limit=200, offset=0)
            return [{**r, "progress": progress(r, store.metrics(conn, r))} for r in rows]

    return web.render(ctx, "campaigns.html", {"campaigns": await run_in_threadpool(work)})


def progress(row: Any, metrics: dict[str, int]) -> dict[str, Any]:
    total = metrics["total_participants"]
    called = metrics["contacts_called"]
    return {
        "status": row["status"],
        "total": total,
        "called": called,
        "connected": metrics["contacts_connected"],
        "remaining": max(0, total - called) if row["status"] not in ("completed", "deleted") else 0,
        "percent": round(100 * called / total) if total else 0,
        "actions": [a for a, allowed in _allowed(row["status"]).items() if allowed],
    }


def _allowed(status: str) -> dict[str, bool]:
    return {
        "start": status in store.STARTABLE,
        "pause": status in store.PAUSABLE,
        "stop": status in store.STOPPABLE,
    }


def _campaign(request: Request, org_id: str, campaign_id: str) -> tuple[Any, dict[str, Any], list[Any]]:
    with request.app.state.db.read() as conn:
        row = store.get_campaign(conn, org_id, campaign_id) if is_object_id(campaign_id) else None
        if row is None:
            raise NotFound(
                f"No campaign {campaign_id} in this organization: pick one from the campaigns page."
            )
        return row, progress(row, store.metrics(conn, row)), store.events(conn, campaign_id)


@router.get("/campaigns/{campaign_id}")
async def campaign_detail(request: Request, campaign_id: str) -> Response:
    ctx = await web.begin(request)
    if ctx.org_id is None:
        return web.to_login(ctx)
    row, prog, events = await run_in_threadpool(_campaign, request, ctx.org_id, campaign_id)
    return web.render(ctx, "campaign.html", {"campaign": row, "progress": prog, "events": events})


@router.get("/campaigns/{campaign_id}/progress")
async def campaign_progress(request: Request, campaign_id: str) -> Response:
    """The numbers the detail page polls (JSON)."""
    ctx = await web.begin(request)
    if ctx.org_id is None:
        return web.finish(ctx, JSONResponse({"error": "Log in again."}, status_code=401))
    _row, prog, _events = await run_in_threadpool(_campaign, request, ctx.org_id, campaign_id)
    return web.finish(ctx, JSONResponse(prog))


@router.post("/campaigns/{campaign_id}/{action}")
async def campaign_action(request: Request, campaign_id: str, action: str) -> Response:
    ctx = await web.begin(request)
    if ctx.org_id is None:
        return web.to_login(ctx)
    await web.form_of(ctx)
    if action not in ACTIONS:
        raise NotFound(f"No campaign action {action!r}: the buttons are start, pause and stop.")
    state = request.app.state
    try:
        response: Response
        if action == "start":  # the dialer (request.app.state) is woken by the route
            start = campaign_routes.start_campaign
            response = await run_in_threadpool(start, request, campaign_id, state.db, ctx.org_id)
        else:
            act = campaign_routes.pause_campaign if action == "pause" else campaign_routes.stop_campaign
            response = await run_in_threadpool(act, campaign_id, state.db, ctx.org_id)
        flash = web.body_of(response)["message"] + "."
    except NotFound:
        raise
    except DispoError as exc:
        flash = exc.message
    return web.redirect(ctx, f"/campaigns/{campaign_id}", flash=flash)
