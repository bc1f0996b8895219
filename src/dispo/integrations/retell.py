"""Retell's ``call_ended`` (or ``call_analyzed``) webhook → an ``ImportCall`` body.

The shape read (from Retell's public docs, "Webhook"): a POST body ``{"event": "call_ended",
"call": {"call_id", "call_type": "phone_call" | "web_call", "direction", "from_number",
"to_number", "agent_id", "start_timestamp", "end_timestamp" (epoch ms), "disconnection_reason",
"transcript_object": [{"role": "agent" | "user", "content", "words": [{"word", "start", "end"}]}],
"call_cost": {"combined_cost"} (cents), "latency": {"llm": {"p50"}, "tts": {"p50"}, "asr": {"p50"}},
"recording_url", "retell_llm_dynamic_variables"}}``. A turn's timestamp is the call's start plus
its first word's ``start`` (seconds). Cost is converted from cents to dollars.
"""

from __future__ import annotations

from typing import Any

__all__ = ["from_call_ended"]

_REASONS = {
    "user_hangup": "user_hangup",
    "agent_hangup": "agent_hangup",
    "call_transfer": "agent_hangup",
    "inactivity": "timeout",
    "max_duration_reached": "timeout",
    "dial_no_answer": "dial_no_answer",
}
_NOT_CONNECTED = {"dial_no_answer": "no_answer", "dial_busy": "busy", "dial_failed": "failed"}


def _latency(call: dict[str, Any], stage: str) -> float | None:
    value = ((call.get("latency") or {}).get(stage) or {}).get("p50")
    return float(value) if isinstance(value, int | float) else None


def _turn(turn: dict[str, Any], start: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"role": turn["role"], "content": turn["content"]}
    words = turn.get("words") or []
    if start is not None and words and isinstance(words[0].get("start"), int | float):
        out["timestamp"] = start + int(words[0]["start"] * 1000)
    return out


def from_call_ended(payload: dict[str, Any]) -> dict[str, Any]:
    """The import body of one ``call_ended`` / ``call_analyzed`` webhook body."""
    if payload.get("event") not in ("call_ended", "call_analyzed"):
        raise ValueError(f"not a call_ended or call_analyzed event (event={payload.get('event')!r})")
    call = payload.get("call") or payload.get("data") or {}
    reason = str(call.get("disconnection_reason") or "")
    start = call.get("start_timestamp")
    cost = (call.get("call_cost") or {}).get("combined_cost")
    if call.get("call_type") == "web_call":
        call_type = "webcall"
    else:
        call_type = "telephony_outbound" if call.get("direction") == "outbound" else "telephony_inbound"
    body: dict[str, Any] = {
        "externalId": f"retell:{call.get('call_id')}",
        "type": call_type,
        "status": _NOT_CONNECTED.get(reason, "completed"),
        "from": call.get("from_number"),
        "to": call.get("to_number"),
        "startedAt": start,
        "endedAt": call.get("end_timestamp"),
        "disconnectionReason": _REASONS.get(reason, "system_error" if reason.startswith("error") else None),
        "callCost": round(cost / 100, 4) if isinstance(cost, int | float) else None,
        "transcript": [
            _turn(t, start if isinstance(start, int) else None)
            for t in call.get("transcript_object") or ()
            if t.get("role") in ("agent", "user") and isinstance(t.get("content"), str)
        ],
        "averageAgentLatency": _latency(call, "llm"),
        "averageSynthesizerLatency": _latency(call, "tts"),
        "averageTranscriberLatency": _latency(call, "asr"),
        "recordingUrl": call.get("recording_url"),
        "variables": call.get("retell_llm_dynamic_variables") or None,
    }
    return {k: v for k, v in body.items() if v is not None}
