"""Webhooks (the integrations work): each endpoint with its subscriptions and delivery counts, its
delivery log (status, attempts, the receiver's answer), and replays, through the API's routes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from dispo.api.routes import webhooks as webhook_routes
from dispo.dashboard import web
from dispo.errors import DispoError, NotFound
from dispo.store import agents as agent_store
from dispo.store import webhook_deliveries as delivery_store

router = APIRouter()

PAGE_SIZE = 25


def _agent_names(db: Any, org_id: str) -> dict[str, str]:
    with db.read() as conn:
        agents, _ = agent_store.list_agents(conn, org_id, limit=500, offset=0)
    return {a["id"]: a["name"] for a in agents}


def _counts(db: Any, webhook_id: str) -> dict[str, int]:
    with db.read() as conn:
        return {
            s: delivery_store.count_deliveries(conn, webhook_id, (s,))
            for s in delivery_store.DELIVERY_STATUSES
        }


@router.get("/webhooks")
async def webhook_list(request: Request) -> Response:
    ctx = await web.begin(request)
    if ctx.org_id is None:
        return web.to_login(ctx)
    db, org_id = request.app.state.db, ctx.org_id

    def work() -> dict[str, Any]:
        hooks = web.body_of(webhook_routes.list_webhooks(db, org_id))
        return {
            "webhooks": [{**h, "counts": _counts(db, h["_id"])} for h in hooks],
            "agent_names": _agent_names(db, org_id),
        }

    return web.render(ctx, "webhooks.html", await run_in_threadpool(work))


@router.get("/webhooks/{webhook_id}")
async def webhook_detail(request: Request, webhook_id: str) -> Response:
    ctx = await web.begin(request)
    if ctx.org_id is None:
        return web.to_login(ctx)
    db, org_id = request.app.state.db, ctx.org_id
    status = request.query_params.get("status") or None
    page_raw = request.query_params.get("page", "1")
    page = int(page_raw) if page_raw.isdigit() and 0 < int(page_raw) <= 1_000_000 else 1

    def work() -> dict[str, Any]:
        hook = web.body_of(webhook_routes.get_webhook(webhook_id, db, org_id))
        deliveries = web.body_of(
            webhook_routes.list_deliveries(webhook_id, db, org_id, page=page, limit=PAGE_SIZE, status=status)
        )
        return {
            "webhook": hook,
            "deliveries": deliveries["deliveries"],
            "pagination": deliveries["pagination"],
            "counts": _counts(db, webhook_id),
            "agent_names": _agent_names(db, org_id),
            "statuses": delivery_store.DELIVERY_STATUSES,
            "status": status or "",
            "page": page,
        }

    return web.render(ctx, "webhook.html", await run_in_threadpool(work))


@router.post("/webhooks/{webhook_id}/replay")
async def replay_dead(request: Request, webhook_id: str) -> Response:
    """Sends every dead-lettered delivery of the webhook again (the API's bulk replay)."""
    ctx = await web.begin(request)
    if ctx.org_id is None:
        return web.to_login(ctx)
    await web.form_of(ctx)
    db = request.app.state.db
    try:
        response = await run_in_threadpool(
            webhook_routes.replay_many, webhook_id, db, ctx.org_id, {"status": ["dead"]}
        )
        count = web.body_of(response)["replayed"]
        flash = f"{count} dead-lettered deliver{'y' if count == 1 else 'ies'} queued again."
    except NotFound:
        raise
    except DispoError as exc:
        flash = exc.message
    return web.redirect(ctx, f"/webhooks/{webhook_id}", flash=flash)


@router.post("/webhooks/{webhook_id}/deliveries/{delivery_id}/replay")
async def replay_one(request: Request, webhook_id: str, delivery_id: str) -> Response:
    ctx = await web.begin(request)
    if ctx.org_id is None:
        return web.to_login(ctx)
    await web.form_of(ctx)
    db = request.app.state.db
    try:
        await run_in_threadpool(webhook_routes.replay_delivery, webhook_id, delivery_id, db, ctx.org_id)
        flash = f"Delivery {delivery_id} queued again (same idempotency key and body)."
    except NotFound:
        raise
    except DispoError as exc:
        flash = exc.message
    return web.redirect(ctx, f"/webhooks/{webhook_id}", flash=flash)
