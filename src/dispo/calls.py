"""The vocabulary of calls: statuses, types, disconnection reasons, cost, and how a call ends.

Plain values shared by the runtime (``dispo.runtime``), the store and the wire format
(``dispo.api.calllog``); no SQL here and nothing heavy to import. The enums are ``StrEnum``s
whose values are the strings stored in the database and sent on the wire, so a member compares
equal to its string and binds as it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "TERMINAL_STATUSES",
    "CallEnding",
    "CallStatus",
    "CallType",
    "DisconnectReason",
    "call_cost",
]


class CallStatus(StrEnum):
    """Where a call is: queued or in progress, then one terminal status (:data:`TERMINAL_STATUSES`)."""

    PENDING = "pending"
    IN_QUEUE = "in_queue"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    CANCELLED = "cancelled"


class CallType(StrEnum):
    TELEPHONY_INBOUND = "telephony_inbound"
    TELEPHONY_OUTBOUND = "telephony_outbound"
    CHAT = "chat"
    WEBCALL = "webcall"


class DisconnectReason(StrEnum):
    """Why a call ended (``disconnectionReason`` on the wire)."""

    USER_HANGUP = "user_hangup"
    AGENT_HANGUP = "agent_hangup"
    DIAL_NO_ANSWER = "dial_no_answer"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    SYSTEM_ERROR = "system_error"


# Statuses after which nothing more happens to a call: it is settled, and its analytics can run.
TERMINAL_STATUSES: tuple[CallStatus, ...] = (
    CallStatus.COMPLETED,
    CallStatus.FAILED,
    CallStatus.NO_ANSWER,
    CallStatus.BUSY,
    CallStatus.CANCELLED,
)


def call_cost(duration_seconds: float, credits_per_minute: float) -> float:
    """What a connected call of ``duration_seconds`` costs, in credits."""
    return round(duration_seconds / 60 * credits_per_minute, 4)


@dataclass(frozen=True)
class CallEnding:
    """How a call ended: what :func:`dispo.store.calls.end_call` writes to its row.

    ``duration`` (seconds), ``cost``, the latencies (ms) and the recordings' keys (see
    :mod:`dispo.voice.storage`) belong to a call that connected;
    ``failure_reason`` to one that failed; ``started_at`` is set when the call's start is known
    only now (a dial that was answered). Times are epoch milliseconds.
    """

    status: CallStatus
    reason: DisconnectReason | None
    ended_at: int
    updated_at: int
    started_at: int | None = None
    duration: float | None = None
    cost: float | None = None
    agent_latency: float | None = None
    failure_reason: str | None = None
    # Voice calls: the mean STT time and TTS time to first audio (ms), and the recordings' keys.
    transcriber_latency: float | None = None
    synthesizer_latency: float | None = None
    recording_key: str | None = None
    recording_dual_key: str | None = None

    def __post_init__(self) -> None:
        if self.status not in TERMINAL_STATUSES:
            raise ValueError(f"a call ends with one of {', '.join(TERMINAL_STATUSES)}, not {self.status!r}")

    @classmethod
    def system_error(cls, failure_reason: str, at: int) -> CallEnding:
        """A call Dispo itself could not place or continue: ``failed`` with ``system_error``."""
        return cls(
            CallStatus.FAILED,
            DisconnectReason.SYSTEM_ERROR,
            ended_at=at,
            updated_at=at,
            failure_reason=failure_reason,
        )

    def values(self) -> dict[str, Any]:
        """The columns of the call row this ending sets (plain strings, as stored)."""
        out: dict[str, Any] = {
            "status": self.status.value,
            "disconnection_reason": None if self.reason is None else self.reason.value,
            "ended_at": self.ended_at,
            "updated_at": self.updated_at,
        }
        if self.started_at is not None:
            out["started_at"] = self.started_at
        if self.duration is not None:
            out["duration"] = self.duration
            out["call_cost"] = self.cost
            out["avg_agent_latency"] = self.agent_latency
            out["avg_transcriber_latency"] = self.transcriber_latency
            out["avg_synthesizer_latency"] = self.synthesizer_latency
            out["recording_url"] = self.recording_key
            out["recording_dual_url"] = self.recording_dual_key
        if self.failure_reason is not None:
            out["call_failure_reason"] = self.failure_reason
        return out
