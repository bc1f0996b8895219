"""Extracted metric values as rows (``call_metrics``): what the call log filters and aggregates by.

Each call keeps the values of its newest analysis, one row per metric, replaced whenever an
analysis completes (:func:`replace_metric_values`, called by ``store.analytics_jobs.complete``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, insert

from dispo.store.tables import call_metrics

__all__ = [
    "configured_identifiers",
    "insert_metric_values",
    "metric_rows",
    "replace_metric_values",
    "text_and_number",
]

_TEXT_MAX = 200  # value_text's width: longer STRING values are kept whole in analytics_results


def text_and_number(metric_type: str, value: Any) -> tuple[str | None, float | None]:
    """``(value_text, value_num)`` of one extracted value (see ``tables.call_metrics``)."""
    if value is None:
        return None, None
    if isinstance(value, bool):
        return ("true" if value else "false"), float(value)
    if isinstance(value, int | float):
        return _number_text(value), float(value)
    text = str(value)
    number = None
    if metric_type == "DATETIME":
        number = _epoch_ms(text)
    return text[:_TEXT_MAX], number


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _epoch_ms(text: str) -> float | None:
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if instant.tzinfo is None:  # a wall-clock time without a zone is read as UTC, like the API's
        instant = instant.replace(tzinfo=UTC)
    return float(int(instant.timestamp() * 1000))


def _type_of(metric: dict[str, Any]) -> str:
    declared = metric.get("type")
    if isinstance(declared, str) and declared:
        return declared
    value = metric.get("value")  # results written without a type (older ones, synthetic data)
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int | float):
        return "INTEGER"
    return "STRING"


def metric_rows(call_pk: int, org_id: str, metrics: Iterable[Any]) -> list[dict[str, Any]]:
    """``call_metrics`` rows of one analysis result's ``disposition_metrics`` (malformed entries
    skipped; the last of a repeated identifier wins)."""
    rows: dict[str, dict[str, Any]] = {}
    for metric in metrics or ():
        if not isinstance(metric, dict) or not isinstance(metric.get("identifier"), str):
            continue
        identifier = metric["identifier"][:64]
        metric_type = _type_of(metric)
        text, number = text_and_number(metric_type, metric.get("value"))
        rows[identifier] = {
            "call_pk": call_pk,
            "identifier": identifier,
            "org_id": org_id,
            "type": metric_type[:16],
            "value_text": text,
            "value_num": number,
        }
    return list(rows.values())


def replace_metric_values(conn: Connection, call_pk: int, org_id: str, metrics: Sequence[Any]) -> None:
    """Make ``metrics`` (a result's ``disposition_metrics``) the call's extracted values."""
    conn.execute(delete(call_metrics).where(call_metrics.c.call_pk == call_pk))
    rows = metric_rows(call_pk, org_id, metrics)
    if rows:
        conn.execute(insert(call_metrics), rows)


def insert_metric_values(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Rows of :func:`metric_rows` for calls that have none yet (bulk loads)."""
    if rows:
        conn.execute(insert(call_metrics), list(rows))


def configured_identifiers(conn: Connection, org_id: str, agent_ids: Sequence[str] = ()) -> list[str]:
    """The metric identifiers of the newest analytics config of ``agent_ids`` (all the
    organization's agents when empty), in config order, each once."""
    from sqlalchemy import select

    from dispo.store.analytics_jobs import latest_config_ids
    from dispo.store.tables import agents, analytics_configs

    if not agent_ids:
        agent_ids = [str(a) for (a,) in conn.execute(select(agents.c.id).where(agents.c.org_id == org_id))]
    config_ids = [cid for cid, _ in latest_config_ids(conn, agent_ids).values()]
    if not config_ids:
        return []
    ac = analytics_configs.c
    stmt = select(ac.disposition_metrics).where(ac.id.in_(config_ids), ac.org_id == org_id).order_by(ac.id)
    out: dict[str, None] = {}
    for (metrics,) in conn.execute(stmt):
        for metric in metrics or ():
            if isinstance(metric, dict) and isinstance(metric.get("identifier"), str):
                out[metric["identifier"]] = None
    return list(out)
