"""Vapi's ``end-of-call-report`` server message → an ``ImportCall`` body.

The shape read (from Vapi's public docs, "Server URL → End-of-call report"): a POST body
``{"message": {"type": "end-of-call-report", "endedReason", "startedAt", "endedAt", "cost",
"call": {"id", "type"}, "customer": {"number"}, "phoneNumber": {"number"}, "artifact":
{"messages": [{"role", "message", "time", "secondsFromStart", "duration"}], "recordingUrl"}}}``.
``cost`` is in US dollars and is kept as the call's cost as it is. System, tool-call and
tool-result messages are left out of the transcript (they are not what was said).
"""

from __future__ import annotations

from typing import Any

__all__ = ["from_end_of_call_report"]

_ROLES = {"bot": "agent", "assistant": "agent", "user": "user"}
_TYPES = {
    "inboundPhoneCall": "telephony_inbound",
    "outboundPhoneCall": "telephony_outbound",
    "webCall": "webcall",
}
_NO_CALL = {"customer-did-not-answer": ("no_answer", "dial_no_answer"), "customer-busy": ("busy", None)}


def _reason(ended: str) -> str | None:
    if ended in ("customer-ended-call",):
        return "user_hangup"
    if ended in ("assistant-ended-call", "assistant-said-end-call-phrase", "assistant-forwarded-call"):
        return "agent_hangup"
    if ended in ("silence-timed-out", "exceeded-max-duration"):
        return "timeout"
    if "error" in ended or "fault" in ended or ended.startswith("pipeline-"):
        return "system_error"
    return None


def from_end_of_call_report(payload: dict[str, Any]) -> dict[str, Any]:
    """The import body of one end-of-call report (the whole POST body, or its ``message``)."""
    message = payload.get("message", payload)
    if message.get("type") != "end-of-call-report":
        raise ValueError(f"not an end-of-call-report message (type={message.get('type')!r})")
    call = message.get("call") or {}
    ended = str(message.get("endedReason") or call.get("endedReason") or "")
    status, reason = _NO_CALL.get(ended, ("completed", _reason(ended)))
    artifact = message.get("artifact") or {}
    customer = (message.get("customer") or call.get("customer") or {}).get("number")
    ours = (message.get("phoneNumber") or call.get("phoneNumber") or {}).get("number")
    call_type = _TYPES.get(str(call.get("type")), "telephony_inbound")
    caller, callee = (ours, customer) if call_type == "telephony_outbound" else (customer, ours)
    body: dict[str, Any] = {
        "externalId": f"vapi:{call.get('id') or message.get('callId')}",
        "type": call_type,
        "status": status,
        "from": caller,
        "to": callee,
        "startedAt": message.get("startedAt") or call.get("startedAt"),
        "endedAt": message.get("endedAt") or call.get("endedAt"),
        "disconnectionReason": reason,
        "callCost": message.get("cost") if message.get("cost") is not None else call.get("cost"),
        "transcript": [
            {"role": _ROLES[m["role"]], "content": m["message"], "timestamp": int(m["time"])}
            if isinstance(m.get("time"), int | float)
            else {"role": _ROLES[m["role"]], "content": m["message"]}
            for m in artifact.get("messages") or message.get("messages") or ()
            if m.get("role") in _ROLES and isinstance(m.get("message"), str)
        ],
        "recordingUrl": artifact.get("recordingUrl") or message.get("recordingUrl"),
        "variables": {"vapiEndedReason": ended} if ended else None,
    }
    return {k: v for k, v in body.items() if v is not None}
