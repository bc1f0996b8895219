"""Agents and their post-call analytics config: the editor (the API's validation, its messages
next to the fields they name) and the config's versions with a diff between two."""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from dispo.analytics.config import METRIC_TYPES
from dispo.api.routes.agents import set_post_call_config
from dispo.dashboard import web
from dispo.errors import DispoError, NotFound
from dispo.ids import is_object_id
from dispo.store import agents as agent_store

router = APIRouter()

_METRIC_ERROR = re.compile(r"^dispositionMetrics\[(\d+)\]")


@router.get("/agents")
async def agent_list(request: Request) -> Response:
    ctx = await web.begin(request)
    if ctx.org_id is None:
        return web.to_login(ctx)
    org_id = ctx.org_id

    def work() -> list[Any]:
        with request.app.state.db.read() as conn:
            agents, _ = agent_store.list_agents(conn, org_id, limit=500, offset=0)
            return [{**a, "config": agent_store.latest_analytics_config(conn, a["id"])} for a in agents]

    return web.render(ctx, "agents.html", {"agents": await run_in_threadpool(work)})


def _load(request: Request, org_id: str, agent_id: str) -> tuple[Any, list[Any]]:
    with request.app.state.db.read() as conn:
        agent = agent_store.get_agent(conn, org_id, agent_id) if is_object_id(agent_id) else None
        if agent is None:
            raise NotFound(f"No agent {agent_id} in this organization: pick one from the agents page.")
        return agent, agent_store.analytics_config_versions(conn, agent_id)


def _form_metrics(config: Any) -> list[dict[str, Any]]:
    """The stored metrics as the editor's rows."""
    rows = []
    for m in (config["disposition_metrics"] if config else []) or []:
        rows.append(
            {
                "identifier": m.get("identifier", ""),
                "type": m.get("dispositionMetricType") or (m.get("dispositionValues") or {}).get("type", ""),
                "prompt": m.get("dispositionMetricPrompt", ""),
                "choices": ", ".join(m.get("choices") or []),
            }
        )
    return rows


def _diff(versions: list[Any], a: int | None, b: int | None) -> dict[str, Any] | None:
    """A unified diff of two versions' configs (as the API returns them, pretty-printed)."""
    by_version = {v["version"]: v for v in versions}
    if a not in by_version or b not in by_version:
        return None

    def lines(v: Any) -> list[str]:
        shown = {"summaryPrompt": v["summary_prompt"], "dispositionMetrics": v["disposition_metrics"]}
        return json.dumps(shown, indent=2, ensure_ascii=False).splitlines()

    diff = difflib.unified_diff(
        lines(by_version[a]), lines(by_version[b]), f"version {a}", f"version {b}", lineterm=""
    )
    return {"a": a, "b": b, "lines": list(diff)}


def _editor(
    ctx: web.Ctx,
    agent: Any,
    versions: list[Any],
    rows: list[dict[str, Any]],
    summary: str | None,
    **extra: Any,
) -> dict[str, Any]:
    params = ctx.request.query_params
    a, b = params.get("a"), params.get("b")
    diff = _diff(versions, int(a) if a and a.isdigit() else None, int(b) if b and b.isdigit() else None)
    return {
        "agent": agent,
        "versions": versions,
        "current": versions[0] if versions else None,
        "rows": rows,
        "summary_prompt": summary or "",
        "types": METRIC_TYPES,
        "diff": diff,
        "errors": [],
        "row_errors": {},
        **extra,
    }


@router.get("/agents/{agent_id}/analytics")
async def config_editor(request: Request, agent_id: str) -> Response:
    ctx = await web.begin(request)
    if ctx.org_id is None:
        return web.to_login(ctx)
    agent, versions = await run_in_threadpool(_load, request, ctx.org_id, agent_id)
    current = versions[0] if versions else None
    rows = _form_metrics(current)
    summary = current["summary_prompt"] if current else None
    return web.render(ctx, "config.html", _editor(ctx, agent, versions, rows, summary))


def rows_from_form(form: dict[str, Any]) -> list[dict[str, Any]]:
    """The editor's metric rows: ``identifier_N``, ``type_N``, ``prompt_N``, ``choices_N`` and a
    ``remove_N`` checkbox; a row left wholly empty (the blank one for a new metric) is skipped."""
    indexes = sorted({int(k.split("_")[-1]) for k in form if re.fullmatch(r"(identifier|prompt)_\d+", k)})
    rows = []
    for i in indexes:
        row = {
            f: str(form.get(f"{f}_{i}") or "").strip() for f in ("identifier", "type", "prompt", "choices")
        }
        if form.get(f"remove_{i}") or not (row["identifier"] or row["prompt"] or row["choices"]):
            continue
        rows.append(row)
    return rows


def metric_body(row: dict[str, str]) -> dict[str, Any]:
    """One row as the API's metric object; choices only where given (so an ENUM without them
    meets the API's own message)."""
    metric: dict[str, Any] = {
        "identifier": row["identifier"],
        "dispositionMetricPrompt": row["prompt"],
        "dispositionMetricType": row["type"],
    }
    choices = [c.strip() for c in row["choices"].split(",") if c.strip()]
    if choices:
        metric["choices"] = choices
    return metric


def row_errors(errors: list[str]) -> tuple[dict[int, list[str]], list[str]]:
    """The API's messages by the metric row they name (``dispositionMetrics[i]…``), and the rest."""
    by_row: dict[int, list[str]] = {}
    rest: list[str] = []
    for message in errors:
        match = _METRIC_ERROR.match(message)
        if match:
            by_row.setdefault(int(match.group(1)), []).append(message)
        else:
            rest.append(message)
    return by_row, rest


@router.post("/agents/{agent_id}/analytics")
async def save_config(request: Request, agent_id: str) -> Response:
    """Saves through the API's own route function: the same validation, the same messages."""
    ctx = await web.begin(request)
    if ctx.org_id is None:
        return web.to_login(ctx)
    form = await web.form_of(ctx)
    org_id = ctx.org_id
    rows = rows_from_form(form)
    summary = str(form.get("summary_prompt") or "").strip() or None
    body = {"summaryPrompt": summary, "dispositionMetrics": [metric_body(r) for r in rows]}
    db = request.app.state.db
    try:
        saved = web.body_of(await run_in_threadpool(set_post_call_config, agent_id, db, org_id, body))
    except NotFound:
        raise
    except DispoError as exc:
        agent, versions = await run_in_threadpool(_load, request, org_id, agent_id)
        by_row, rest = row_errors(exc.errors)
        context = _editor(ctx, agent, versions, rows, summary, errors=rest, row_errors=by_row)
        return web.render(ctx, "config.html", context, status_code=400)
    return web.redirect(
        ctx, f"/agents/{agent_id}/analytics", flash=f"Saved: the config is at version {saved['version']}."
    )
