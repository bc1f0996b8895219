"""Chat calls (``type: chat``): a person talks to an agent in text; logged like any other call.

The same agent turn as on the phone (:func:`dispo.runtime.dialogue.agent_turn`), driven by the
person's messages instead of a telephony session. Each turn is stored as it happens, so a chat
read back mid-conversation shows its transcript so far. A chat ends when the person hangs up
(``user_hangup``), the agent says goodbye (``agent_hangup``), or the person is silent for
``call_silence_timeout_seconds`` or the chat reaches ``call_max_duration_seconds`` (``timeout``);
an idle chat is ended when its next message arrives or by the server's periodic sweep
(:class:`IdleSweeper`, started with the app). An ended chat's analytics go on ``jobs``, the
process's :class:`~dispo.analytics.jobs.Jobs` (``app.state.jobs``), passed in.

Durations are wall-clock time; cost is credits per minute, as for phone calls.
"""

from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dispo.calls import CallEnding, CallStatus, CallType, DisconnectReason, call_cost
from dispo.config import Settings
from dispo.errors import Conflict, NotFound
from dispo.runtime.dialogue import AgentProfile, Brain, Turn, agent_turn
from dispo.runtime.runner import new_call_values
from dispo.store import agents as agent_store
from dispo.store import calls as call_store
from dispo.store import webhooks as webhook_store
from dispo.store.database import Database
from dispo.timeutil import now_ms
from dispo.types import Row

if TYPE_CHECKING:
    from dispo.analytics.jobs import Jobs

log = logging.getLogger("dispo.runtime.chat")

ACTIVE = CallStatus.IN_PROGRESS


@dataclass
class ChatState:
    call_pk: int
    call_id: str
    org_id: str
    profile: AgentProfile
    started_ms: int
    last_activity_ms: int
    status: str
    turns: list[Turn] = field(default_factory=list)
    reason: str | None = None

    @property
    def ended(self) -> bool:
        return self.status != ACTIVE


# One message at a time per chat in this process: turns are numbered in order.
_CHAT_LOCKS: weakref.WeakValueDictionary[str, threading.Lock] = weakref.WeakValueDictionary()
_GUARD = threading.Lock()


def chat_lock(call_id: str) -> threading.Lock:
    with _GUARD:
        lock = _CHAT_LOCKS.get(call_id)
        if lock is None:
            lock = threading.Lock()
            _CHAT_LOCKS[call_id] = lock
        return lock


def start(
    db: Database,
    settings: Settings,
    jobs: Jobs,
    org_id: str,
    agent: Row,
    variables: dict[str, Any],
    brain_for: Any,
) -> ChatState:
    """Create the chat call and write the agent's opening turn."""
    profile = AgentProfile.from_row(agent, variables)
    values = new_call_values(
        org_id=org_id,
        agent_id=agent["id"],
        to_number=None,
        from_number=None,
        call_type=CallType.CHAT,
        variables=variables,
    )
    values["started_at"] = values["created_at"]
    with db.write() as conn:
        pk = call_store.insert_call(conn, values)
        webhook_store.emit_for_call(conn, pk, "pre-conversation")
    state = ChatState(
        pk, values["call_id"], org_id, profile, values["started_at"], values["started_at"], ACTIVE
    )
    _agent_speaks(db, settings, jobs, state, brain_for(profile))
    return state


def load(db: Database, org_id: str, call_id: str) -> tuple[ChatState, Row]:
    with db.read() as conn:
        row = call_store.get_call(conn, org_id, call_id)
        if row is None or row["type"] != CallType.CHAT:
            raise NotFound(f"No chat {call_id} in this organization: start one with POST /conversation/chat.")
        agent = agent_store.agent_by_id(conn, row["agent_id"])
        turns = [
            Turn(m["role"], m["content"], m["timestamp"] or 0, m.get("latency_ms"))
            for m in call_store.load_transcripts(conn, [row["pk"]])[row["pk"]]
        ]
    profile = AgentProfile.from_row(agent, row["variables"] or {})
    last = max([row["started_at"] or row["created_at"], *(t.timestamp_ms for t in turns)])
    state = ChatState(
        row["pk"],
        row["call_id"],
        org_id,
        profile,
        row["started_at"] or row["created_at"],
        last,
        row["status"],
        turns,
    )
    state.reason = row["disconnection_reason"]
    return state, row


def expired_reason(state: ChatState, settings: Settings, now: int) -> DisconnectReason | None:
    if now - state.started_ms >= settings.call_max_duration_seconds * 1000:
        return DisconnectReason.TIMEOUT
    if now - state.last_activity_ms >= settings.call_silence_timeout_seconds * 1000:
        return DisconnectReason.TIMEOUT
    return None


def user_says(
    db: Database, settings: Settings, jobs: Jobs, state: ChatState, text: str, brain: Brain
) -> list[Turn]:
    """The person's message and the agent's reply; the chat may end with them."""
    if state.ended:
        raise Conflict(
            f"Chat {state.call_id} has ended ({state.reason}): start a new one with POST /conversation/chat."
        )
    now = now_ms()
    timed_out = expired_reason(state, settings, now)
    if timed_out is not None:
        end(
            db,
            settings,
            jobs,
            state,
            timed_out,
            at=min(now, state.last_activity_ms + int(settings.call_silence_timeout_seconds * 1000)),
        )
        raise Conflict(
            f"Chat {state.call_id} ended on a timeout (no message for {settings.call_silence_timeout_seconds:g} s, "
            "or the maximum duration): start a new one with POST /conversation/chat."
        )
    before = len(state.turns)
    user = Turn("user", text, now)
    state.turns.append(user)
    state.last_activity_ms = now
    with db.write() as conn:
        call_store.append_transcript(conn, state.call_pk, [user.to_row()], before)
    _agent_speaks(db, settings, jobs, state, brain)
    return state.turns[before:]


def _agent_speaks(db: Database, settings: Settings, jobs: Jobs, state: ChatState, brain: Brain) -> None:
    try:
        reply = agent_turn(brain, state.profile, state.turns)
    except Exception:
        # As on the phone (dispo.runtime.dialogue.converse): a model that fails, or whose worker process
        # died (ModelCrashed), ends the chat as system_error with its transcript so far; the
        # error still reaches the person's request, whose answer says what happened.
        end(db, settings, jobs, state, DisconnectReason.SYSTEM_ERROR)
        raise
    turn = Turn("agent", reply.text, now_ms(), reply.latency_ms)
    state.turns.append(turn)
    state.last_activity_ms = turn.timestamp_ms
    with db.write() as conn:
        call_store.append_transcript(conn, state.call_pk, [turn.to_row()], len(state.turns) - 1)
        call_store.update_call(conn, state.call_pk, {"updated_at": turn.timestamp_ms})
    if reply.end_call:
        end(db, settings, jobs, state, DisconnectReason.AGENT_HANGUP)


def end(
    db: Database,
    settings: Settings,
    jobs: Jobs,
    state: ChatState,
    reason: DisconnectReason,
    *,
    at: int | None = None,
) -> bool:
    """End the chat (idempotent); returns False when it had already ended."""
    ended_at = at if at is not None else now_ms()
    duration = round(max(0, ended_at - state.started_ms) / 1000, 1)
    latencies = [t.latency_ms for t in state.turns if t.latency_ms is not None]
    ending = CallEnding(
        CallStatus.COMPLETED,
        reason,
        ended_at=ended_at,
        updated_at=max(ended_at, now_ms()),
        duration=duration,
        cost=call_cost(duration, settings.credits_per_minute),
        agent_latency=round(sum(latencies) / len(latencies), 1) if latencies else None,
    )
    with db.write() as conn:
        # A chat ended meanwhile (the sweep, another request) keeps how it ended.
        ended = call_store.end_call(conn, state.call_pk, ending)
    state.status, state.reason = ended.status, ended.reason
    if ended.marked:
        jobs.enqueue(state.call_pk)
    return ended.changed


def sweep_idle(db: Database, settings: Settings, jobs: Jobs, now: int | None = None, limit: int = 200) -> int:
    """End chats nobody wrote to for the silence timeout (or past the maximum duration)."""
    at = now if now is not None else now_ms()
    idle_before = at - int(settings.call_silence_timeout_seconds * 1000)
    with db.read() as conn:
        rows = call_store.idle_chats(conn, idle_before, limit)
    ended = 0
    for org_id, call_id in rows:
        with chat_lock(call_id):
            state, _ = load(db, org_id, call_id)
            reason = expired_reason(state, settings, at)
            if reason is not None and not state.ended:
                stop_at = min(at, state.last_activity_ms + int(settings.call_silence_timeout_seconds * 1000))
                ended += end(db, settings, jobs, state, reason, at=stop_at)
    return ended


class IdleSweeper:
    """Runs :func:`sweep_idle` on a thread every ``interval`` seconds while the server is up, so
    that a chat nobody writes to ends on its timeout without waiting for a next message.

    ``interval`` defaults to half the silence timeout, at most 5 s: the ending is recorded at the
    moment the chat went silent too long (``sweep_idle``), so the interval only bounds how long
    the chat still reads ``in_progress``.
    """

    def __init__(self, db: Database, settings: Settings, jobs: Jobs, interval: float | None = None) -> None:
        self.db = db
        self.settings = settings
        self.jobs = jobs
        default = min(5.0, max(0.05, settings.call_silence_timeout_seconds / 2))
        self.interval = interval if interval is not None else default
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="dispo-chat-sweeper", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                ended = sweep_idle(self.db, self.settings, self.jobs)
            except Exception:
                log.exception("Sweeping idle chats failed; retrying in %.1f s", self.interval)
                continue
            if ended:
                log.info("Ended %d idle chat(s) on their timeout.", ended)
