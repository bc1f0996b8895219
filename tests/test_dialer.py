"""The dialer: campaigns call every member once (plus retries), survive restarts, pause and stop."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dispo.api.app import create_app
from dispo.config import Settings
from dispo.runtime.dialer import Dialer
from dispo.runtime.dialogue import ScriptedBrain
from dispo.runtime.runner import CallRunner
from dispo.store import agents as agent_store
from dispo.store import audiences as audience_store
from dispo.store import calls as call_store
from dispo.store import campaigns as campaign_store
from dispo.store import members
from dispo.store import phone_numbers as phone_store
from dispo.store.database import Database
from dispo.store.tables import calls, campaign_members, campaigns
from dispo.telephony import DialRequest, DialResult, Provider
from dispo.telephony.simulated import SimulatedProvider
from dispo.timeutil import now_ms
from tests.conftest import Org

FINAL = {"completed", "no_answer", "busy", "failed", "cancelled"}


@dataclass
class Campaign:
    id: str
    agent_id: str
    numbers: list[str]


def make_campaign(
    db: Database, org_id: str, size: int, *, max_retries: int = 0, retry_delay: int = 1, start: bool = True
) -> Campaign:
    numbers = [f"+1415555{i:04d}" for i in range(size)]
    with db.write() as conn:
        agent_id = agent_store.create_agent(
            conn, org_id, {"name": "Dialer agent", "global_prompt": "You sell solar panels."}
        )
        phone, _ = phone_store.add_number(conn, org_id, "+12025550100")
        audience_id = audience_store.create_audience(
            conn,
            org_id,
            name=f"{size} people",
            description="",
            phone_number_column_name="phoneNumber",
            members=[(n, {"phoneNumber": n, "firstName": f"P{i}"}) for i, n in enumerate(numbers)],
        )
        campaign_id = campaign_store.create_campaign(
            conn,
            org_id,
            {
                "name": "Dialer test",
                "agent_id": agent_id,
                "audience_id": audience_id,
                "phone_number_ids": [phone["id"]],
                "max_retries": max_retries,
                "retry_delay": retry_delay,
            },
        )
        if start:
            row = campaign_store.get_campaign(conn, org_id, campaign_id)
            assert row is not None
            assert campaign_store.start(conn, row)
    return Campaign(campaign_id, agent_id, numbers)


def campaign_status(db: Database, campaign_id: str) -> str:
    with db.read() as conn:
        return str(conn.execute(select(campaigns.c.status).where(campaigns.c.id == campaign_id)).scalar_one())


def member_rows(db: Database, campaign_id: str) -> list[dict[str, object]]:
    with db.read() as conn:
        rows = conn.execute(select(campaign_members).where(campaign_members.c.campaign_id == campaign_id))
        return [dict(r) for r in rows.mappings()]


def calls_per_number(db: Database, campaign_id: str) -> Counter[str]:
    return Counter(number for number, _ in campaign_calls(db, campaign_id))


def campaign_calls(db: Database, campaign_id: str) -> list[tuple[str, str]]:
    """``(to_number, call_id)`` of every call the campaign placed."""
    with db.read() as conn:
        rows = conn.execute(
            select(calls.c.to_number, calls.c.call_id).where(calls.c.campaign_id == campaign_id)
        )
        return [(str(n), str(c)) for n, c in rows]


def dials_per_number(db: Database, campaign_id: str, provider: SimulatedProvider) -> Counter[str]:
    """Dials the provider saw for this campaign's calls (other tests' campaigns share the database)."""
    out: Counter[str] = Counter()
    for number, call_id in campaign_calls(db, campaign_id):
        out[number] += provider.dialed_calls[call_id]
    return out


def wait_for(predicate: Callable[[], bool], timeout: float = 180.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def scripted_runner(db: Database, settings: Settings, provider: Provider) -> CallRunner:
    return CallRunner(db, settings, brain_factory=lambda _p: ScriptedBrain(), providers={"test": provider})


@pytest.fixture
def dialers(db: Database, settings: Settings) -> Iterator[list[Dialer]]:
    """Dialers a test starts; all stopped at the end, whatever happened."""
    _finish_other_campaigns(db)
    made: list[Dialer] = []
    yield made
    for d in made:
        d.stop(wait=True, timeout=30)
        d.runner.shutdown(wait=False)
    _finish_other_campaigns(db)


def _finish_other_campaigns(db: Database) -> None:
    """Dialers work every running campaign in the database, which the tests share: a test's
    dialer must see only the campaigns that test makes."""
    with db.write() as conn:
        conn.execute(
            campaigns.update().where(campaigns.c.status.in_(("running", "paused"))).values(status="completed")
        )


def new_dialer(
    dialers: list[Dialer],
    db: Database,
    settings: Settings,
    provider: Provider,
    *,
    concurrency: int = 8,
    clock: Callable[[], int] = now_ms,
    lease_seconds: float = 30.0,
) -> Dialer:
    dialer = Dialer(
        db,
        settings,
        scripted_runner(db, settings, provider),
        concurrency=concurrency,
        poll_seconds=0.02,
        lease_seconds=lease_seconds,
        clock=clock,
    )
    dialers.append(dialer)
    return dialer


def assert_accounted(
    db: Database, campaign: Campaign, provider: SimulatedProvider, max_retries: int
) -> list[dict[str, object]]:
    """Every member ended in a final status, dialled once per attempt, with one call row per dial."""
    rows = member_rows(db, campaign.id)
    assert len(rows) == len(campaign.numbers)
    assert {r["phone_number"] for r in rows} == set(campaign.numbers)
    assert Counter(str(r["status"]) for r in rows).keys() <= FINAL, Counter(str(r["status"]) for r in rows)
    per_number = calls_per_number(db, campaign.id)
    dials = dials_per_number(db, campaign.id, provider)
    for r in rows:
        number = str(r["phone_number"])
        attempts = int(r["attempts"])  # type: ignore[call-overload]
        assert 1 <= attempts <= 1 + max_retries, r
        assert per_number[number] == attempts, (number, per_number[number], attempts)
        assert dials[number] == attempts, (number, dials[number], attempts)
        if r["status"] != "completed" and max_retries:
            assert attempts == 1 + max_retries, r  # retries were used up before giving up
    with db.read() as conn:
        open_calls = conn.execute(
            select(func.count())
            .select_from(calls)
            .where(calls.c.campaign_id == campaign.id, calls.c.status.in_(("in_queue", "in_progress")))
        ).scalar_one()
    assert open_calls == 0
    return rows


def test_a_1000_member_campaign_completes_with_every_member_accounted_for(
    db: Database, org: Org, settings: Settings, dialers: list[Dialer]
) -> None:
    campaign = make_campaign(db, org.id, 1000)
    provider = SimulatedProvider()
    dialer = new_dialer(dialers, db, settings, provider, concurrency=16)
    dialer.start()
    most = [0]

    def done() -> bool:
        most[0] = max(most[0], dialer.runner.active)
        return campaign_status(db, campaign.id) == "completed"

    wait_for(done, what="the campaign to complete")
    assert 1 < most[0] <= 16  # calls ran in parallel, never more than the concurrency
    rows = assert_accounted(db, campaign, provider, max_retries=0)
    statuses = Counter(str(r["status"]) for r in rows)
    assert statuses["completed"] > 600
    assert statuses["no_answer"] > 0
    assert statuses["busy"] > 0
    with db.read() as conn:
        completed = (
            conn.execute(
                select(calls)
                .where(calls.c.campaign_id == campaign.id, calls.c.status == "completed")
                .limit(5)
            )
            .mappings()
            .all()
        )
        transcripts = call_store.load_transcripts(conn, [c["pk"] for c in completed])
    for call in completed:
        assert call["duration"] > 0
        assert call["call_cost"] > 0
        assert call["disconnection_reason"] in ("agent_hangup", "user_hangup", "timeout")
        assert call["from_number"] == "+12025550100"
        assert call["analytics_status"] == "pending"
        assert transcripts[call["pk"]][0]["role"] == "agent"


def test_retries_follow_max_retries_and_retry_delay(
    db: Database, org: Org, settings: Settings, dialers: list[Dialer]
) -> None:
    campaign = make_campaign(db, org.id, 120, max_retries=2, retry_delay=1)
    provider = SimulatedProvider()
    offset = [0]
    dialer = new_dialer(dialers, db, settings, provider, clock=lambda: now_ms() + offset[0])
    dialer.start()
    # First attempts only: retries are due a minute later on the dialer's clock.
    wait_for(lambda: sum(provider.dials.values()) >= 120 and dialer.in_flight == 0, what="first attempts")
    time.sleep(0.2)
    assert sum(provider.dials.values()) == 120
    queued = [r for r in member_rows(db, campaign.id) if r["status"] == "queued"]
    assert queued, "some first attempts should have failed"
    assert all(r["next_attempt_at"] > now_ms() + 50_000 for r in queued)  # type: ignore[operator]
    offset[0] = 61_000
    dialer.wake()
    wait_for(lambda: sum(provider.dials.values()) > 120 and dialer.in_flight == 0, what="second attempts")
    offset[0] = 200_000
    dialer.wake()
    wait_for(lambda: campaign_status(db, campaign.id) == "completed", what="the campaign to complete")
    rows = assert_accounted(db, campaign, provider, max_retries=2)
    assert any(int(r["attempts"]) > 1 and r["status"] == "completed" for r in rows)  # type: ignore[call-overload]
    with db.read() as conn:
        retry_counts = set(
            conn.execute(select(calls.c.retry_count).where(calls.c.campaign_id == campaign.id)).scalars()
        )
    assert retry_counts == {0, 1, 2}


def test_a_restart_in_the_middle_loses_nothing_and_duplicates_nothing(
    db: Database, org: Org, settings: Settings, dialers: list[Dialer]
) -> None:
    campaign = make_campaign(db, org.id, 400)
    provider = SimulatedProvider()
    first = new_dialer(dialers, db, settings, provider)
    first.start()
    wait_for(lambda: sum(provider.dials.values()) >= 150, what="150 calls")
    first.stop(wait=True)  # a server shutdown: calls in progress finish, nothing new starts
    done_before = sum(provider.dials.values())
    assert done_before < 400
    assert campaign_status(db, campaign.id) == "running"
    second = new_dialer(dialers, db, settings, provider)
    second.start()
    wait_for(lambda: campaign_status(db, campaign.id) == "completed", what="the campaign to complete")
    assert_accounted(db, campaign, provider, max_retries=0)
    assert first.placed + second.placed == 400


class HangingProvider(Provider):
    """Places the call, then hangs (as if the server died mid-call) until ``release`` is set."""

    name = "test"

    def __init__(self, inner: SimulatedProvider) -> None:
        self.inner = inner
        self.release = threading.Event()
        self.hanging = 0

    def dial(self, request: DialRequest) -> DialResult:
        result = self.inner.dial(request)
        self.hanging += 1
        self.release.wait(30)
        return result


def test_a_crash_mid_call_is_reconciled_without_calling_anyone_twice(
    db: Database, org: Org, settings: Settings, dialers: list[Dialer]
) -> None:
    campaign = make_campaign(db, org.id, 60, max_retries=3)
    provider = SimulatedProvider()
    hanging = HangingProvider(provider)
    crashed = new_dialer(dialers, db, settings, hanging, concurrency=5, lease_seconds=1)
    crashed.start()
    wait_for(lambda: hanging.hanging == 5, what="five calls in progress")
    crashed.stop(wait=False)  # the process "dies": its five calls never end, their leases expire
    stuck = [r for r in member_rows(db, campaign.id) if r["status"] == "dialing"]
    assert len(stuck) == 5
    # The next server starts two seconds later (by its clock): the leases have expired.
    offset = [2_000]
    restarted = new_dialer(dialers, db, settings, provider, clock=lambda: now_ms() + offset[0])
    restarted.start()
    for _ in range(6):  # first attempts, then retries (due a minute later on the dialer's clock)
        wait_for(lambda: restarted.in_flight == 0 and restarted.placed > 0, what="a round of calls")
        time.sleep(0.1)
        if campaign_status(db, campaign.id) == "completed":
            break
        offset[0] += 61_000
        restarted.wake()
    wait_for(lambda: campaign_status(db, campaign.id) == "completed", what="the campaign to complete")
    hanging.release.set()  # the "dead" dialer's threads wake up: they must change nothing
    crashed.stop(wait=True)
    rows = {r["member_id"]: r for r in member_rows(db, campaign.id)}
    for r in stuck:
        after = rows[r["member_id"]]
        assert (after["status"], after["attempts"]) == ("failed", 1)
        assert dials_per_number(db, campaign.id, provider)[str(r["phone_number"])] == 1
    with db.read() as conn:
        lost = (
            conn.execute(select(calls).where(calls.c.call_id.in_([str(r["last_call_id"]) for r in stuck])))
            .mappings()
            .all()
        )
    assert {(c["status"], c["disconnection_reason"]) for c in lost} == {("failed", "system_error")}
    assert all("restart" in c["call_failure_reason"] for c in lost)
    assert sum(calls_per_number(db, campaign.id).values()) == sum(
        dials_per_number(db, campaign.id, provider).values()
    )


def test_reconciling_a_call_that_ended_settles_from_the_call_row(
    db: Database, org: Org, settings: Settings, dialers: list[Dialer]
) -> None:
    campaign = make_campaign(db, org.id, 3)
    now = now_ms()
    dialer = Dialer(db, settings, scripted_runner(db, settings, SimulatedProvider()), lease_seconds=1)
    with db.write() as conn:
        claimed = members.claim_due(conn, campaign.id, limit=3, now=now, lease_ms=1000)
        assert len(claimed) == 3
        again = members.claim_due(conn, campaign.id, limit=3, now=now, lease_ms=1000)
        assert again == []  # claimed members are not claimed twice
        for i, c in enumerate(claimed):
            if i == 2:
                continue  # a claim whose call row was never written
            pk = call_store.insert_call(
                conn,
                {
                    "id": f"{i:024x}",
                    "call_id": f"CALL-{now}-{i:06x}",
                    "org_id": org.id,
                    "agent_id": campaign.agent_id,
                    "campaign_id": campaign.id,
                    "type": "telephony_outbound",
                    "status": "in_progress",
                    "to_number": c.phone_number,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            members.attach_call(conn, c, f"CALL-{now}-{i:06x}")
            if i == 0:
                call_store.update_call(conn, pk, {"status": "busy", "disconnection_reason": "dial_no_answer"})
    dialer.clock = lambda: now_ms() + 5_000
    assert dialer.reconcile() == 3
    by_number = {r["phone_number"]: r for r in member_rows(db, campaign.id)}
    first, second, third = (by_number[c.phone_number] for c in claimed)
    assert (first["status"], first["last_outcome"]) == ("busy", "busy")  # the call row decided
    assert second["status"] == "failed"  # in progress when the dialer died: not dialled again
    assert (third["status"], third["attempts"]) == ("queued", 0)  # never dialled: back in the queue
    dialer.runner.shutdown()


def test_pause_stops_new_calls_and_start_resumes(
    db: Database, org: Org, settings: Settings, dialers: list[Dialer]
) -> None:
    campaign = make_campaign(db, org.id, 200)
    provider = SimulatedProvider(pace=0.0005)  # a minute-long call takes ~30 ms
    dialer = new_dialer(dialers, db, settings, provider, concurrency=4)
    dialer.start()
    wait_for(lambda: sum(provider.dials.values()) >= 20, what="20 calls")
    with db.write() as conn:
        assert campaign_store.pause(conn, campaign.id)

    def settled() -> bool:
        return dialer.in_flight == 0 and not [
            r for r in member_rows(db, campaign.id) if r["status"] == "dialing"
        ]

    wait_for(settled, what="calls in progress to finish")
    paused_at = sum(provider.dials.values())
    time.sleep(0.3)
    assert sum(provider.dials.values()) == paused_at < 200
    assert campaign_status(db, campaign.id) == "paused"
    assert not [r for r in member_rows(db, campaign.id) if r["status"] == "dialing"]
    with db.write() as conn:
        row = campaign_store.get_campaign(conn, org.id, campaign.id)
        assert row is not None
        assert campaign_store.start(conn, row)
    wait_for(lambda: campaign_status(db, campaign.id) == "completed", what="the campaign to complete")
    assert_accounted(db, campaign, provider, max_retries=0)


def test_stop_cancels_the_rest_and_lets_calls_in_progress_finish(
    db: Database, org: Org, settings: Settings, dialers: list[Dialer]
) -> None:
    campaign = make_campaign(db, org.id, 200, max_retries=2)
    provider = SimulatedProvider(pace=0.0005)
    dialer = new_dialer(dialers, db, settings, provider, concurrency=4)
    dialer.start()
    wait_for(lambda: sum(provider.dials.values()) >= 20, what="20 calls")
    with db.write() as conn:
        assert campaign_store.stop(conn, campaign.id)
    wait_for(
        lambda: (
            dialer.in_flight == 0
            and not [r for r in member_rows(db, campaign.id) if r["status"] == "dialing"]
        ),
        what="calls in progress to finish",
    )
    time.sleep(0.2)
    rows = member_rows(db, campaign.id)
    statuses = Counter(str(r["status"]) for r in rows)
    assert set(statuses) <= FINAL, statuses
    assert statuses["cancelled"] > 100
    dialled = sum(dials_per_number(db, campaign.id, provider).values())
    assert sum(calls_per_number(db, campaign.id).values()) == dialled < 200
    assert campaign_status(db, campaign.id) == "completed"


def test_starting_a_campaign_wakes_the_dialer(
    db: Database, org: Org, tmp_path: Path, dialers: list[Dialer]
) -> None:
    """POST /campaign/{id}/start wakes the server's dialer: with a 30 s poll interval, the first
    call still goes out at once rather than at the next poll."""
    campaign = make_campaign(db, org.id, 3, start=False)
    settings = Settings(data_dir=tmp_path, dialer_poll_seconds=30)
    provider = SimulatedProvider(pace=0.0005)
    app = create_app(settings, db, run_dialer=True, runner=scripted_runner(db, settings, provider))
    with TestClient(app, headers=org.headers) as client:
        dialer = app.state.dialer
        assert dialer is not None
        wait_for(lambda: dialer._last_maintenance > 0, timeout=10, what="the dialer's first pass")
        time.sleep(0.3)  # that pass found nothing to dial; the next poll is 30 s away
        assert sum(provider.dials.values()) == 0
        started = time.monotonic()
        response = client.post(f"/api/v1/campaign/{campaign.id}/start")
        assert response.status_code == 202, response.text
        wait_for(lambda: sum(provider.dials.values()) >= 1, timeout=5, what="the first call")
        assert time.monotonic() - started < 5
        wait_for(lambda: campaign_status(db, campaign.id) == "completed", timeout=10, what="completion")
    assert_accounted(db, campaign, provider, max_retries=0)
