"""Ending a call in one place (``store.calls.end_call``), its vocabulary (``dispo.calls``), and the
one retry/fail transition of an analytics job (``lifecycle.after_failure``)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dispo.analytics.lifecycle import after_failure
from dispo.calls import TERMINAL_STATUSES, CallEnding, CallStatus, CallType, DisconnectReason, call_cost
from dispo.runtime.runner import new_call_values
from dispo.store import calls as call_store
from dispo.store.analytics_jobs import Claim
from dispo.store.database import Database
from dispo.store.tables import calls, transcript_messages
from dispo.types import Row
from tests.analytics_fakes import make_agent
from tests.conftest import Org


def _live_call(db: Database, org: Org, *, call_type: CallType = CallType.TELEPHONY_OUTBOUND) -> int:
    values = new_call_values(
        org_id=org.id,
        agent_id=make_agent(db, org.id),
        to_number="+14155550199",
        from_number="+14155550100",
        call_type=call_type,
        now=1_000_000,
    )
    with db.write() as conn:
        return call_store.insert_call(conn, values)


def _row(db: Database, pk: int) -> Row:
    with db.read() as conn:
        return dict(conn.execute(select(calls).where(calls.c.pk == pk)).mappings().one())


def _transcript(db: Database, pk: int) -> list[tuple[int, str]]:
    t = transcript_messages.c
    with db.read() as conn:
        return [
            (seq, content)
            for seq, content in conn.execute(
                select(t.seq, t.content).where(t.call_pk == pk).order_by(t.seq)
            ).all()
        ]


def _turn(content: str, at: int) -> Row:
    return {"role": "agent", "content": content, "timestamp": at, "latency_ms": None}


def test_end_call_writes_the_ending_the_rest_of_the_transcript_and_marks_analytics(
    db: Database, org: Org
) -> None:
    pk = _live_call(db, org)
    with db.write() as conn:
        call_store.append_transcript(conn, pk, [_turn("Hello!", 1_000_100)], 0)
    ending = CallEnding(
        CallStatus.COMPLETED,
        DisconnectReason.USER_HANGUP,
        started_at=1_000_000,
        ended_at=1_090_000,
        updated_at=1_090_001,
        duration=90.0,
        cost=call_cost(90.0, 2.0),
        agent_latency=420.5,
    )
    with db.write() as conn:
        ended = call_store.end_call(conn, pk, ending, [_turn("Goodbye!", 1_089_000)])
    assert ended == call_store.Ended("completed", "user_hangup", changed=True, marked=True)
    row = _row(db, pk)
    assert (row["status"], row["disconnection_reason"]) == ("completed", "user_hangup")
    assert (row["started_at"], row["ended_at"], row["updated_at"]) == (1_000_000, 1_090_000, 1_090_001)
    assert (row["duration"], row["call_cost"], row["avg_agent_latency"]) == (90.0, 3.0, 420.5)
    assert row["analytics_status"] == "pending"
    # Appended after the turn already stored.
    assert _transcript(db, pk) == [(0, "Hello!"), (1, "Goodbye!")]


def test_end_call_leaves_a_call_that_already_ended_as_it_is(db: Database, org: Org) -> None:
    pk = _live_call(db, org)
    with db.write() as conn:
        first = call_store.end_call(conn, pk, CallEnding.system_error("Dispo stopped.", 1_050_000))
    assert first == call_store.Ended("failed", "system_error", changed=True, marked=True)
    before = _row(db, pk)
    late = CallEnding(
        CallStatus.COMPLETED,
        DisconnectReason.AGENT_HANGUP,
        ended_at=1_090_000,
        updated_at=1_090_000,
        duration=90.0,
        cost=1.0,
    )
    with db.write() as conn:
        again = call_store.end_call(conn, pk, late, [_turn("Too late.", 1_089_000)])
    assert again == call_store.Ended("failed", "system_error", changed=False, marked=False)
    assert _row(db, pk) == before
    assert _transcript(db, pk) == []


def test_append_transcript_numbers_turns_after_the_last_one_stored(db: Database, org: Org) -> None:
    pk = _live_call(db, org, call_type=CallType.CHAT)
    with db.write() as conn:
        call_store.append_transcript(conn, pk, [])  # nothing to add: nothing written
        call_store.append_transcript(conn, pk, [_turn("a", 1), _turn("b", 2)])
        call_store.append_transcript(conn, pk, [_turn("c", 3)])
        call_store.append_transcript(conn, pk, [_turn("d", 4)], 3)
    assert _transcript(db, pk) == [(0, "a"), (1, "b"), (2, "c"), (3, "d")]


def test_idle_chats_are_chats_in_progress_not_updated_since(db: Database, org: Org) -> None:
    idle = _live_call(db, org, call_type=CallType.CHAT)
    phone = _live_call(db, org)  # not a chat
    with db.read() as conn:
        found = {
            call_id for org_id, call_id in call_store.idle_chats(conn, 1_000_001, 100) if org_id == org.id
        }
    assert found == {_row(db, idle)["call_id"]}
    assert _row(db, phone)["call_id"] not in found
    with db.write() as conn:
        call_store.end_call(conn, idle, CallEnding(CallStatus.COMPLETED, None, ended_at=2, updated_at=2))
    with db.read() as conn:
        assert all(org_id != org.id for org_id, _ in call_store.idle_chats(conn, 1_000_001, 100))


def test_the_vocabulary_matches_the_wire() -> None:
    assert [s.value for s in TERMINAL_STATUSES] == ["completed", "failed", "no_answer", "busy", "cancelled"]
    assert CallStatus.NO_ANSWER == "no_answer"
    assert DisconnectReason.SYSTEM_ERROR == "system_error"
    assert call_cost(61.0, 1.5) == round(61.0 / 60 * 1.5, 4)
    assert CallEnding.system_error("why", 5).values() == {
        "status": "failed",
        "disconnection_reason": "system_error",
        "call_failure_reason": "why",
        "ended_at": 5,
        "updated_at": 5,
    }
    with pytest.raises(ValueError, match="a call ends with one of"):
        CallEnding(CallStatus.IN_PROGRESS, None, ended_at=1, updated_at=1)


def test_one_transition_after_a_failed_attempt_or_a_dead_worker() -> None:
    first, last = Claim(1, 1, 100), Claim(1, 3, 100)
    retry = after_failure(first, "boom", max_attempts=3, retry_delay=5.0)
    assert (retry.kind, retry.retry_in, retry.error) == (
        "retry",
        5.0,
        "Attempt 1 of 3 failed, retrying in 5s: boom",
    )
    assert after_failure(Claim(1, 2, 100), "boom", max_attempts=3, retry_delay=5.0).retry_in == 10.0
    failed = after_failure(last, "boom", max_attempts=3, retry_delay=5.0)
    assert (failed.kind, failed.error) == ("failed", "Failed after 3 attempts: boom")
    permanent = after_failure(first, "gone", max_attempts=3, retry_delay=5.0, permanent=True)
    assert (permanent.kind, permanent.error) == ("failed", "Failed after 1 attempt: gone")
    # The sweeper (retry_delay None): due at once.
    swept = after_failure(first, "dead", max_attempts=3, retry_delay=None)
    assert (swept.kind, swept.retry_in, swept.error) == (
        "retry",
        0.0,
        "Attempt 1 of 3 failed, retrying: dead",
    )
