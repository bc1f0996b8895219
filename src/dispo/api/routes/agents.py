"""Agents (``/agent``) and their post-call analytics configuration."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from sqlalchemy import Connection
from starlette.responses import Response

from dispo.analytics.config import parse_metrics
from dispo.api.bodies import JsonBody
from dispo.api.contract import ContractRoute, json_body
from dispo.api.deps import DbDep, OrgDep
from dispo.api.responses import ok
from dispo.api.schemas import (
    AUTHED,
    WITH_BODY,
    AgentCreate,
    AgentListPublic,
    AgentPublic,
    AgentUpdate,
    AnalyticsConfigPublic,
    AnalyticsConfigUpdate,
    AnalyticsConfigVersionsPublic,
    Envelope,
    MessagePublic,
    errors,
    parse,
)
from dispo.errors import Conflict, NotFound, ValidationFailed
from dispo.ids import is_object_id
from dispo.store import agents as store
from dispo.timeutil import ms_to_iso
from dispo.types import Row

router = APIRouter(tags=["agents"], route_class=ContractRoute)

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


def _agent_values(agent: AgentUpdate) -> dict[str, Any]:
    """Column values of a validated agent body; null leaves a column unchanged."""
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in agent.model_dump(by_alias=True, exclude_unset=True).items():
        column = _COLUMNS.get(key)
        if column is None:
            extra[key] = value
        elif value is None:
            continue
        elif key == "language":
            if isinstance(value, dict):
                extra["language"] = value
                value = value.get("enabled", "en")
            values[column] = value
        elif key == "backgroundSound":
            values[column] = ("office" if value else "") if isinstance(value, bool) else value
        elif key == "name":
            values[column] = value.strip()
        else:
            values[column] = value
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


def agent_or_404(conn: Connection, org_id: str, agent_id: str) -> Row:
    """The organization's agent ``agent_id``, or a 404 that says where to find its agents."""
    row = store.get_agent(conn, org_id, agent_id) if is_object_id(agent_id) else None
    if row is None:
        raise NotFound(f"No agent {agent_id} in this organization: list agents with GET /agent.")
    return row


@router.post(
    "/agent",
    status_code=201,
    summary="Create an agent; returns its id",
    response_model=Envelope[str],
    responses=errors(*WITH_BODY),
    openapi_extra=json_body(AgentCreate, {"name": "Sales agent", "globalPrompt": "You are a sales agent."}),
)
def create_agent(db: DbDep, org_id: OrgDep, body: JsonBody) -> Response:
    values = _agent_values(parse(AgentCreate, body))
    with db.write() as conn:
        agent_id = store.create_agent(conn, org_id, values)
    return ok(agent_id, status_code=201)


@router.get(
    "/agent", summary="List agents", response_model=Envelope[AgentListPublic], responses=errors(*AUTHED)
)
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


@router.get(
    "/agent/{agent_id}",
    summary="Get an agent",
    response_model=Envelope[AgentPublic],
    responses=errors(*AUTHED, 404),
)
def get_agent(agent_id: str, db: DbDep, org_id: OrgDep) -> Response:
    with db.read() as conn:
        return ok(render_agent(agent_or_404(conn, org_id, agent_id)))


@router.patch(
    "/agent/{agent_id}",
    summary="Update an agent; only the fields given change",
    response_model=Envelope[str],
    responses=errors(*WITH_BODY, 404),
    openapi_extra=json_body(AgentUpdate, {"description": "Outbound solar sales", "slmModel": "gpt-4o"}),
)
def update_agent(agent_id: str, db: DbDep, org_id: OrgDep, body: JsonBody) -> Response:
    with db.write() as conn:
        row = agent_or_404(conn, org_id, agent_id)
        values = _agent_values(parse(AgentUpdate, body))
        if "extra" in values:
            values["extra"] = {**(row["extra"] or {}), **values["extra"]}
        store.update_agent(conn, agent_id, values)
    return ok(agent_id)


@router.delete(
    "/agent/{agent_id}/archive",
    summary="Archive (or with on=false, restore) an agent",
    response_model=Envelope[MessagePublic],
    responses=errors(*AUTHED, 404, 409),
)
def archive_agent(
    agent_id: str,
    db: DbDep,
    org_id: OrgDep,
    on: bool = Query(True, description="true archives, false restores."),
) -> Response:
    with db.write() as conn:
        row = agent_or_404(conn, org_id, agent_id)
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


@router.get(
    "/agent/{agent_id}/post-call-analytics",
    tags=["post-call analytics"],
    summary="Get the config",
    response_model=Envelope[AnalyticsConfigPublic],
    responses=errors(*AUTHED, 404),
)
def get_post_call_config(agent_id: str, db: DbDep, org_id: OrgDep) -> Response:
    with db.read() as conn:
        agent_or_404(conn, org_id, agent_id)
        return ok(render_config(store.latest_analytics_config(conn, agent_id)))


@router.get(
    "/agent/{agent_id}/post-call-analytics/versions",
    tags=["post-call analytics"],
    summary="Every version of the config, newest first",
    response_model=Envelope[AnalyticsConfigVersionsPublic],
    responses=errors(*AUTHED, 404),
)
def list_post_call_config_versions(agent_id: str, db: DbDep, org_id: OrgDep) -> Response:
    with db.read() as conn:
        agent_or_404(conn, org_id, agent_id)
        return ok({"versions": [render_config(r) for r in store.analytics_config_versions(conn, agent_id)]})


@router.post(
    "/agent/{agent_id}/post-call-analytics",
    tags=["post-call analytics"],
    summary="Set the summary prompt and/or disposition metrics; each change is a new version",
    response_model=Envelope[AnalyticsConfigPublic],
    responses=errors(*WITH_BODY, 404),
    openapi_extra=json_body(
        AnalyticsConfigUpdate,
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
        },
    ),
)
def set_post_call_config(agent_id: str, db: DbDep, org_id: OrgDep, body: JsonBody) -> Response:
    with db.write() as conn:
        # Ownership first: another organization's agent is a 404 whatever the body says.
        agent_or_404(conn, org_id, agent_id)
        config = parse(AnalyticsConfigUpdate, body)
        given = config.model_fields_set
        metrics = parse_metrics(config.disposition_metrics) if "disposition_metrics" in given else None
        current = store.latest_analytics_config(conn, agent_id)
        if "summary_prompt" in given:
            summary_prompt = config.summary_prompt
        else:
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
