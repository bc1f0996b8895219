"""Imports: finished calls from other voice stacks (Pipecat, LiveKit, Vapi, Retell, …) into the call log.

``POST /conversation/import`` and ``dispo calls import`` both come here. Each call is validated on
its own (:class:`dispo.api.schemas.ImportCall`, every problem listed), calls already imported under
the same ``externalId`` are reported as duplicates and left as they are, and the rest are stored in
one transaction, already ended, with their analytics pending, so that the workers analyse them like
the calls Dispo placed itself (the caller enqueues the returned ``pks`` after the commit).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from dispo.api.schemas import ImportCall, import_problems
from dispo.calls import CallStatus
from dispo.ids import new_call_id, new_object_id
from dispo.phones import to_e164
from dispo.store import calls as call_store
from dispo.store import imports as import_store
from dispo.store.database import Database
from dispo.timeutil import now_ms, parse_instant

__all__ = ["CONVERTERS", "ImportOutcome", "ItemResult", "import_calls", "read_jsonl", "to_rows"]


@dataclass
class ItemResult:
    """What became of one call of a request: ``imported``, ``duplicate`` (an earlier import, or an
    earlier item of the same request, has its ``externalId``) or ``invalid`` (``errors``)."""

    index: int
    external_id: str | None
    status: str
    call_id: str | None = None
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "externalId": self.external_id,
            "status": self.status,
            "callId": self.call_id,
            "errors": self.errors,
        }


@dataclass
class ImportOutcome:
    results: list[ItemResult]
    pks: list[int]  # the calls stored with their analytics pending: enqueue them after the commit

    def summary(self) -> dict[str, Any]:
        count = {
            s: sum(1 for r in self.results if r.status == s) for s in ("imported", "duplicate", "invalid")
        }
        return {
            "imported": count["imported"],
            "duplicates": count["duplicate"],
            "invalid": count["invalid"],
            "results": [r.to_json() for r in self.results],
        }


def import_calls(db: Database, org_id: str, items: Sequence[Any], *, where: str = "calls") -> ImportOutcome:
    """Validate and store ``items`` (parsed JSON, one per call) for ``org_id``; see the module."""
    results: list[ItemResult] = []
    valid: list[tuple[int, ImportCall]] = []
    for i, item in enumerate(items):
        call, problems = import_problems(item, f"{where}[{i}]" if where else "")
        external = item.get("externalId") if isinstance(item, dict) else None
        results.append(
            ItemResult(i, external if isinstance(external, str) else None, "invalid", errors=problems)
        )
        if call is not None:
            valid.append((i, call))
    try:
        pks = _store(db, org_id, valid, results, where)
    except IntegrityError:  # another request imported one of these meanwhile: those are duplicates now
        pks = _store(db, org_id, valid, results, where)
    return ImportOutcome(results, pks)


def _store(
    db: Database, org_id: str, valid: list[tuple[int, ImportCall]], results: list[ItemResult], where: str
) -> list[int]:
    now = now_ms()
    with db.write() as conn:
        known = import_store.existing_external_ids(conn, org_id, [c.external_id for _, c in valid])
        agents = import_store.existing_agents(conn, org_id, [c.agent_id for _, c in valid if c.agent_id])
        batch: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        for i, call in valid:
            result = results[i]
            if call.external_id in known:
                result.status, result.call_id, result.errors = "duplicate", known[call.external_id], []
                continue
            if call.agent_id is not None and call.agent_id not in agents:
                result.status, result.errors = (
                    "invalid",
                    [
                        f"{f'{where}[{i}].' if where else ''}agentId {call.agent_id} is not an agent of this organization: "
                        "list them with GET /agent, or leave agentId out."
                    ],
                )
                continue
            values, transcript = to_rows(org_id, call, now)
            known[call.external_id] = values["call_id"]
            result.status, result.call_id, result.errors = "imported", values["call_id"], []
            batch.append((values, transcript))
        pks = call_store.insert_ended_calls(conn, batch)
    return pks


def _instant(value: str | int | None, name: str) -> int | None:
    if value is None:
        return None
    return int(value) if isinstance(value, int) else parse_instant(value, field=name)


def _number(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    return to_e164(value) or value.strip()


def to_rows(org_id: str, call: ImportCall, now: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``calls`` row and the transcript rows of a validated import.

    Times: ``startedAt`` defaults to the first turn's timestamp, then to ``endedAt - duration``;
    ``endedAt`` to ``startedAt + duration``, then to the last turn's, then to now; ``duration`` to
    ``endedAt - startedAt``. The call is listed at its start (``createdAt``)."""
    turns = [(t.role, t.content, _instant(t.timestamp, "timestamp"), t.latency_ms) for t in call.transcript]
    stamps = [t[2] for t in turns if t[2] is not None]
    started = _instant(call.started_at, "startedAt")
    ended = _instant(call.ended_at, "endedAt")
    seconds = call.duration
    if started is None:
        if stamps:
            started = min(stamps)
        elif ended is not None and seconds is not None:
            started = ended - int(seconds * 1000)
    if ended is None:
        if started is not None and seconds is not None:
            ended = started + int(seconds * 1000)
        else:
            ended = max(stamps) if stamps else started if started is not None else now
    if started is None or started > ended:
        started = ended
    if seconds is None:
        seconds = (ended - started) / 1000
    latencies = [t[3] for t in turns if t[3] is not None]
    agent_latency = call.average_agent_latency
    if agent_latency is None and latencies:
        agent_latency = round(sum(latencies) / len(latencies), 1)
    values: dict[str, Any] = {
        "id": new_object_id(started),
        "call_id": new_call_id(started),
        "org_id": org_id,
        "external_id": call.external_id,
        "agent_id": call.agent_id,
        "type": call.type,
        "status": call.status,
        "disconnection_reason": call.disconnection_reason,
        "from_number": _number(call.from_number),
        "to_number": _number(call.to_number),
        "duration": float(seconds),
        "call_cost": float(call.call_cost or 0),
        "recording_url": call.recording_url,
        "variables": call.variables or {},
        "avg_transcriber_latency": call.average_transcriber_latency,
        "avg_agent_latency": agent_latency,
        "avg_synthesizer_latency": call.average_synthesizer_latency,
        "started_at": started if call.status == CallStatus.COMPLETED else None,
        "ended_at": ended,
        "created_at": started,
        "updated_at": now,
    }
    transcript = [
        {"role": role, "content": content, "timestamp": stamp, "latency_ms": latency}
        for role, content, stamp, latency in turns
    ]
    return values, transcript


CONVERTERS = ("dispo", "vapi", "retell")


def read_jsonl(path: Path, source: str = "dispo") -> Iterator[tuple[int, Any]]:
    """``(line number, import body)`` for each non-empty line of a JSONL file; a line that is not
    JSON, or not a ``source`` payload, comes as the problem's text (the import reports it)."""
    from dispo.integrations import retell, vapi

    convert = {"vapi": vapi.from_end_of_call_report, "retell": retell.from_call_ended}.get(source)
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                yield number, convert(item) if convert is not None else item
            except (ValueError, AttributeError, KeyError, TypeError) as exc:
                yield number, f"line {number}: {exc}: each line must be one JSON {source} call."
