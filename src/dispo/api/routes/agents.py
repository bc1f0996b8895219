"""Agents (``/agent``) and their post-call analytics configuration."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query
from starlette.responses import Response

from dispo.analytics.config import DispositionMetric, parse_metrics
from dispo.api.bodies import json_object
from dispo.api.deps import DbDep, OrgDep
from dispo.api.responses import ok
from dispo.errors import Conflict, NotFound, ValidationFailed
from dispo.ids import is_object_id
from dispo.store import agents as store
from dispo.timeutil import ms_to_iso
from dispo.types import Row

router = APIRouter(tags=["agents"])

LANGUAGES = ("en", "hi", "ta", "kn")  # what the Atoms agent schema allows
SLM_MODELS = ("electron", "gpt-4o")
BACKGROUND_SOUNDS = ("", "office", "cafe", "call_center", "static")
# Request keys with columns of their own; any other key is kept verbatim in `extra`.
_COLUMNS = {
    "name": "name",
    "description": "description",
    "globalPrompt": "global_prompt",
    "firstMessage": "first_message",
    "language": "language",
    "slmModel": "slm_model",
    "backgroundSound": "background_sound",
    "globalKnowledgeBaseId": "global_knowledge_base_id",
    "telephonyProductId": "telephony_product_id",
    "defaultVariables": "default_variables",
}
_READ_ONLY = {"_id", "id", "organization", "createdAt", "updatedAt", "createdBy", "archived", "archivedAt"}


def _agent_values(body: Row, *, creating: bool) -> dict[str, Any]:
    """Validate an agent body into column values; report every problem at once."""
    errors: list[str] = []
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in body.items():
        if key in _READ_ONLY:
            continue
        column = _COLUMNS.get(key)
        if column is None:
            extra[key] = value
            continue
        if value is None:
            if key == "name":
                errors.append("name cannot be null: give the agent a name.")
            continue
        if key == "language":
            code = value.get("enabled", "en") if isinstance(value, dict) else value
            if code not in LANGUAGES:
                errors.append(f"language {code!r} is not supported: use one of {', '.join(LANGUAGES)}.")
            elif isinstance(value, dict):
                extra["language"] = value
            values[column] = code
        elif key == "slmModel":
            if value not in SLM_MODELS:
                errors.append(f"slmModel {value!r} is not supported: use one of {', '.join(SLM_MODELS)}.")
            values[column] = value
        elif key == "backgroundSound":
            sound = ("office" if value else "") if isinstance(value, bool) else value
            if sound not in BACKGROUND_SOUNDS:
                errors.append("backgroundSound must be one of '', 'office', 'cafe', 'call_center', 'static'.")
            values[column] = sound
        elif key == "defaultVariables":
            if not isinstance(value, dict):
                errors.append('defaultVariables must be an object, e.g. {"customer_name": "there"}.')
            values[column] = value
        else:
            if not isinstance(value, str):
                errors.append(f"{key} must be a string.")
            elif key == "name" and not value.strip():
                errors.append("name is empty: give the agent a name.")
            elif key == "name" and len(value) > 200:
                errors.append("name is longer than 200 characters.")
            values[column] = value.strip() if key == "name" and isinstance(value, str) else value
    if creating and "name" not in values and not any(e.startswith("name") for e in errors):
        errors.append('name is required, e.g. {"name": "Sales agent"}.')
    if errors:
        raise ValidationFailed(errors[0], errors=errors)
    if extra:
        values["extra"] = extra
    return values


def render_agent(row: Row) -> dict[str, Any]:
    """An agent in the shape of the Atoms ``AgentDTO`` (which the official SDK validates)."""
    extra = dict(row["extra"] or {})
    language = extra.pop("language", None) or {}
    return {
        **extra,
        "_id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "organization": row["org_id"],
        "globalPrompt": row["global_prompt"],
        "firstMessage": row["first_message"],
        "language": {
            "enabled": row["language"],
            "switching": language.get("switching"),
            "supported": language.get("supported") or [row["language"]],
        },
        "slmModel": row["slm_model"],
        # AgentDTO types backgroundSound as a boolean; the chosen sound is in backgroundSoundType.
        "backgroundSound": bool(row["background_sound"]),
        "backgroundSoundType": row["background_sound"],
        "globalKnowledgeBaseId": row["global_knowledge_base_id"],
        "telephonyProductId": row["telephony_product_id"],
        "defaultVariables": row["default_variables"] or {},
        "archived": row["archived_at"] is not None,
        "archivedAt": ms_to_iso(row["archived_at"]),
        "createdAt": ms_to_iso(row["created_at"]),
        "updatedAt": ms_to_iso(row["updated_at"]),
    }


def _agent_or_404(conn: Any, org_id: str, agent_id: str) -> Row:
    row = store.get_agent(conn, org_id, agent_id) if is_object_id(agent_id) else None
    if row is None:
        raise NotFound(f"No agent {agent_id} in this organization: list agents with GET /agent.")
    return row


@router.post("/agent", status_code=201, summary="Create an agent; returns its id")
def create_agent(
    db: DbDep, org_id: OrgDep, body: Any = Body(..., examples=[{"name": "Sales agent"}])
) -> Response:
    values = _agent_values(json_object(body), creating=True)
    with db.write() as conn:
        agent_id = store.create_agent(conn, org_id, values)
    return ok(agent_id, status_code=201)


@router.get("/agent", summary="List agents")
def list_agents(
    db: DbDep,
    org_id: OrgDep,
    page: int = Query(1, ge=1, le=1_000_000),
    offset: int = Query(10, ge=1, le=1000, description="Page size (the Atoms API calls it offset)."),
    search: str | None = Query(None, max_length=200),
    archived: bool = Query(False, description="List archived agents instead of active ones."),
) -> Response:
    if search and "\x00" in search:
        raise ValidationFailed("search contains a NUL character (%00): remove it.")
    with db.read() as conn:
        rows, total = store.list_agents(
            conn, org_id, limit=offset, offset=(page - 1) * offset, search=search, archived=archived
        )
    return ok({"agents": [render_agent(r) for r in rows], "total": total, "page": page, "offset": offset})


@router.get("/agent/{agent_id}", summary="Get an agent")
def get_agent(agent_id: str, db: DbDep, org_id: OrgDep) -> Response:
    with db.read() as conn:
        return ok(render_agent(_agent_or_404(conn, org_id, agent_id)))


@router.patch("/agent/{agent_id}", summary="Update an agent; only the fields given change")
def update_agent(agent_id: str, db: DbDep, org_id: OrgDep, body: Any = Body(...)) -> Response:
    values = _agent_values(json_object(body), creating=False)
    with db.write() as conn:
        row = _agent_or_404(conn, org_id, agent_id)
        if "extra" in values:
            values["extra"] = {**(row["extra"] or {}), **values["extra"]}
        store.update_agent(conn, agent_id, values)
    return ok(agent_id)


@router.delete("/agent/{agent_id}/archive", summary="Archive (or with on=false, restore) an agent")
def archive_agent(
    agent_id: str,
    db: DbDep,
    org_id: OrgDep,
    on: bool = Query(True, description="true archives, false restores."),
) -> Response:
    with db.write() as conn:
        row = _agent_or_404(conn, org_id, agent_id)
        archived = row["archived_at"] is not None
        if on and archived:
            raise Conflict(f"Agent {agent_id} is already archived; restore it with ?on=false.")
        if not on and not archived:
            raise Conflict(f"Agent {agent_id} is not archived; there is nothing to restore.")
        if on:
            busy = store.active_campaign_names(conn, agent_id)
            if busy:
                raise Conflict(
                    f"Agent {agent_id} is used by active campaign(s) {', '.join(busy)}: stop them first."
                )
        store.set_archived(conn, agent_id, on)
    return ok({"message": "Agent archived" if on else "Agent restored"})


# ---------------------------------------------------------------------------------------------
# Post-call analytics configuration


def render_config(row: Row | None) -> dict[str, Any]:
    if row is None:
        return {"summaryPrompt": None, "dispositionMetrics": [], "version": 0, "updatedAt": None}
    return {
        "summaryPrompt": row["summary_prompt"],
        "dispositionMetrics": row["disposition_metrics"],
        "version": row["version"],
        "updatedAt": ms_to_iso(row["created_at"]),
    }


_UNCHANGED: Any = object()


def _parse_config_body(body: Any) -> tuple[Any, tuple[DispositionMetric, ...] | None]:
    """``(summaryPrompt or _UNCHANGED, metrics or None)``: only the keys given change."""
    body = json_object(body)
    unknown = sorted(set(body) - {"summaryPrompt", "dispositionMetrics"})
    if unknown:
        raise ValidationFailed(
            f"Unknown field {', '.join(unknown)}: the config takes summaryPrompt and dispositionMetrics."
        )
    summary_prompt = body.get("summaryPrompt", _UNCHANGED)
    if (
        summary_prompt is not _UNCHANGED
        and summary_prompt is not None
        and not isinstance(summary_prompt, str)
    ):
        raise ValidationFailed("summaryPrompt must be a string (or null to use the default summary prompt).")
    metrics = parse_metrics(body["dispositionMetrics"]) if "dispositionMetrics" in body else None
    return summary_prompt, metrics


@router.get("/agent/{agent_id}/post-call-analytics", tags=["post-call analytics"], summary="Get the config")
def get_post_call_config(agent_id: str, db: DbDep, org_id: OrgDep) -> Response:
    with db.read() as conn:
        _agent_or_404(conn, org_id, agent_id)
        return ok(render_config(store.latest_analytics_config(conn, agent_id)))


@router.get(
    "/agent/{agent_id}/post-call-analytics/versions",
    tags=["post-call analytics"],
    summary="Every version of the config, newest first",
)
def list_post_call_config_versions(agent_id: str, db: DbDep, org_id: OrgDep) -> Response:
    with db.read() as conn:
        _agent_or_404(conn, org_id, agent_id)
        return ok({"versions": [render_config(r) for r in store.analytics_config_versions(conn, agent_id)]})


@router.post(
    "/agent/{agent_id}/post-call-analytics",
    tags=["post-call analytics"],
    summary="Set the summary prompt and/or disposition metrics; each change is a new version",
)
def set_post_call_config(
    agent_id: str,
    db: DbDep,
    org_id: OrgDep,
    body: Any = Body(
        ...,
        examples=[
            {
                "summaryPrompt": "Summarize this sales call briefly.",
                "dispositionMetrics": [
                    {
                        "identifier": "user_interested",
                        "dispositionMetricPrompt": "Was the user interested? yes, no, or unclear",
                        "dispositionValues": {"type": "ENUM"},
                        "choices": ["yes", "no", "unclear"],
                    }
                ],
            }
        ],
    ),
) -> Response:
    with db.write() as conn:
        # Ownership first: another organization's agent is a 404 whatever the body says.
        _agent_or_404(conn, org_id, agent_id)
        summary_prompt, metrics = _parse_config_body(body)
        current = store.latest_analytics_config(conn, agent_id)
        if summary_prompt is _UNCHANGED:
            summary_prompt = current["summary_prompt"] if current else None
        metric_json = (
            [m.to_json() for m in metrics]
            if metrics is not None
            else (list(current["disposition_metrics"]) if current else [])
        )
        unchanged = current is not None and (
            current["summary_prompt"] == summary_prompt and current["disposition_metrics"] == metric_json
        )
        row = (
            current
            if unchanged
            else store.add_analytics_config(
                conn, org_id, agent_id, summary_prompt=summary_prompt, disposition_metrics=metric_json
            )
        )
    return ok(render_config(row))
