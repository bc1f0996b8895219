"""Placing calls: dial through a provider, hold the conversation, record the call. Threads.

The :class:`CallRunner` runs each call in a thread of its own pool: ``dial`` and the LLM block,
and a provider serves many calls at once. Both the dialer (campaign members) and
``POST /conversation/outbound`` hand it a :class:`PlannedCall` whose call row already exists (the
caller inserts it, so the id is known before anything rings). When the call ends, one transaction
ends it (:func:`dispo.store.calls.end_call`: terminal status, duration, cost and latencies, its
transcript, its post-call analytics marked pending) and runs the caller's ``settle`` hook (the
dialer settles the campaign member there); after the commit the analytics job is enqueued.

The runner holds what its calls need, created once at start-up and passed in: the LLM backend
(``backend``, which agents' turns run on) and the analytics :class:`~dispo.analytics.jobs.Jobs`
(``jobs``, which ended calls are enqueued on); ``create_app`` hands it ``app.state.backend`` and
``app.state.jobs``. Without them it makes its own from the settings. A call whose session has
audio (the ``test`` provider with ``DISPO_TEST_PROVIDER_VOICE``) is recorded into ``recordings``
(a :class:`~dispo.voice.storage.RecordingStore`, by default files under ``DISPO_RECORDINGS_DIR``).

A call whose row already reached a terminal status when it ends (a restarted dialer reconciled it
as lost) is left as it is: the row is the record, and it was already settled.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from dispo.analytics.jobs import Jobs
from dispo.calls import CallEnding, CallStatus, CallType, call_cost
from dispo.config import Settings
from dispo.ids import new_call_id, new_object_id
from dispo.llm import Backend, LazyBackend
from dispo.runtime.dialogue import AgentProfile, Brain, ConversationResult, LLMBrain, ScriptedBrain, converse
from dispo.store import agents as agent_store
from dispo.store import calls as call_store
from dispo.store import webhooks as webhook_store
from dispo.store.database import Database
from dispo.telephony import UNCONNECTED, DialOutcome, DialRequest, Provider, make_provider
from dispo.timeutil import now_ms
from dispo.voice.storage import FileRecordingStore, RecordingStore

log = logging.getLogger("dispo.calls")

BrainFactory = Callable[[AgentProfile], Brain]
# settle(conn, call_status) runs inside the transaction that ends the call.
Settle = Callable[[Connection, str], None]


@dataclass(frozen=True)
class PlannedCall:
    call_pk: int
    call_id: str
    agent_id: str
    to_number: str
    from_number: str | None
    provider: str
    variables: dict[str, Any] = field(default_factory=dict)
    attempt: int = 0


def new_call_values(
    *,
    org_id: str,
    agent_id: str,
    to_number: str | None,
    from_number: str | None,
    call_type: CallType = CallType.TELEPHONY_OUTBOUND,
    status: CallStatus = CallStatus.IN_PROGRESS,
    campaign_id: str | None = None,
    variables: dict[str, Any] | None = None,
    retry_count: int = 0,
    now: int | None = None,
) -> dict[str, Any]:
    """The row of a call about to be placed (insert it with ``calls.insert_call``)."""
    at = now if now is not None else now_ms()
    return {
        "id": new_object_id(at),
        "call_id": new_call_id(at),
        "org_id": org_id,
        "agent_id": agent_id,
        "campaign_id": campaign_id,
        "type": call_type.value,
        "status": status.value,
        "from_number": from_number,
        "to_number": to_number,
        "retry_count": retry_count,
        "variables": variables or {},
        "created_at": at,
        "updated_at": at,
    }


def conversation_ending(
    result: ConversationResult, settings: Settings, recording_keys: tuple[str, str] | None = None
) -> CallEnding:
    """How a connected call that has ended is recorded."""
    duration = result.duration_s
    mono, dual = recording_keys or (None, None)
    return CallEnding(
        CallStatus.COMPLETED,
        result.reason,
        started_at=result.started_ms,
        ended_at=result.ended_ms,
        updated_at=max(now_ms(), result.started_ms),
        duration=duration,
        cost=call_cost(duration, settings.credits_per_minute),
        agent_latency=result.agent_latency_ms,
        transcriber_latency=result.transcriber_latency_ms,
        synthesizer_latency=result.synthesizer_latency_ms,
        recording_key=mono,
        recording_dual_key=dual,
    )


class CallRunner:
    """A pool of threads placing calls. ``brain_factory`` defaults to agents on ``backend`` (the
    settings' backend unless given: ``jobs``' if given, else one loaded on first use); ``jobs``
    defaults to a :class:`Jobs` of the settings' queue."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        backend: Backend | None = None,
        jobs: Jobs | None = None,
        brain_factory: BrainFactory | None = None,
        providers: dict[str, Provider] | None = None,
        max_workers: int | None = None,
        recordings: RecordingStore | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.backend: Backend = backend or (jobs.backend if jobs is not None else LazyBackend(settings))
        self.jobs = jobs or Jobs(settings, db, backend=self.backend)
        self.brain_factory = brain_factory or self._llm_brain
        self.recordings = recordings or FileRecordingStore(settings.recordings_path)
        self._providers: dict[str, Provider] = dict(providers or {})
        self._lock = threading.Lock()
        # Outbound calls share the pool with the dialer, which keeps its own count under this.
        self._pool = ThreadPoolExecutor(
            max_workers=max_workers or settings.dialer_concurrency + 4, thread_name_prefix="dispo-call"
        )
        self._active = 0

    @property
    def active(self) -> int:
        return self._active

    def provider(self, name: str) -> Provider:
        with self._lock:
            provider = self._providers.get(name)
            if provider is None:
                provider = self._providers[name] = make_provider(name, self.settings)
            return provider

    def _llm_brain(self, profile: AgentProfile) -> Brain:
        if self.settings.agent_brain == "scripted":
            return ScriptedBrain()
        return LLMBrain(self.backend, profile, max_tokens=self.settings.agent_max_tokens)

    def submit(self, call: PlannedCall, settle: Settle | None = None) -> Future[str]:
        with self._lock:
            self._active += 1
        return self._pool.submit(self._run_counted, call, settle)

    def _run_counted(self, call: PlannedCall, settle: Settle | None) -> str:
        try:
            return self.run(call, settle)
        except Exception:
            log.exception("Call %s failed in Dispo", call.call_id)
            self._record_failure(call, settle)
            return "failed"
        finally:
            with self._lock:
                self._active -= 1

    def run(self, call: PlannedCall, settle: Settle | None = None) -> str:
        """Place ``call`` now, in this thread; returns its final status."""
        with self.db.read() as conn:
            agent = agent_store.agent_by_id(conn, call.agent_id)
            status = call_store.call_status(conn, call.call_pk)
            announce = webhook_store.has_subscribers(conn, call.agent_id, "pre-conversation")
        if status == CallStatus.IN_QUEUE or announce:  # a write only when there is one to make
            with self.db.write() as conn:
                if status == CallStatus.IN_QUEUE:
                    call_store.update_call(
                        conn, call.call_pk, {"status": CallStatus.IN_PROGRESS.value, "updated_at": now_ms()}
                    )
                webhook_store.emit_for_call(conn, call.call_pk, "pre-conversation")
        provider = self.provider(call.provider)
        dialed = provider.dial(
            DialRequest(call.call_id, call.to_number, call.from_number, call.attempt, call.variables)
        )
        transcript: list[dict[str, Any]] = []
        if dialed.outcome is DialOutcome.ANSWERED and dialed.session is not None:
            profile = AgentProfile.from_row(agent, call.variables)
            result = converse(
                dialed.session,
                self.brain_factory(profile),
                profile,
                max_duration_s=self.settings.call_max_duration_seconds,
                silence_timeout_s=self.settings.call_silence_timeout_seconds,
            )
            recording = dialed.session.recording(result.ended_ms - result.started_ms)
            keys = None if recording is None else self.recordings.save(call.call_id, recording)
            ending = conversation_ending(result, self.settings, keys)
            transcript = [t.to_row() for t in result.turns]
        else:
            final, reason = UNCONNECTED[dialed.outcome]
            ended = dialed.ended_ms or now_ms()
            ending = CallEnding(
                final,
                reason,
                ended_at=ended,
                updated_at=max(now_ms(), ended),
                failure_reason=dialed.failure_reason,
            )
        return self._record(call, ending, transcript, settle)

    def _record(
        self,
        call: PlannedCall,
        ending: CallEnding,
        transcript: list[dict[str, Any]],
        settle: Settle | None,
    ) -> str:
        with self.db.write() as conn:
            ended = call_store.end_call(conn, call.call_pk, ending, transcript)
            if not ended.changed:
                log.warning(
                    "Call %s ended after it was recorded as %s; keeping that.", call.call_id, ended.status
                )
                return ended.status
            if settle is not None:
                settle(conn, ended.status)
        if ended.marked:
            self.jobs.enqueue(call.call_pk)
        return ended.status

    def _record_failure(self, call: PlannedCall, settle: Settle | None) -> None:
        try:
            ending = CallEnding.system_error(
                "Dispo could not place or continue the call: see the server log.", now_ms()
            )
            self._record(call, ending, [], settle)
        except Exception:
            log.exception("Could not record the failure of call %s", call.call_id)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
        for provider in self._providers.values():
            provider.close()
