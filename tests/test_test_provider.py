"""The ``test`` telephony provider: seeded, reproducible callees and the outcome mapping."""

from __future__ import annotations

from collections import Counter

import pytest

from dispo.config import Settings
from dispo.runtime.dialogue import AgentProfile, ScriptedBrain, converse
from dispo.telephony import UNCONNECTED, DialOutcome, DialRequest, make_provider, provider_names
from dispo.telephony.simulated import Callee, SimulatedProvider

NUMBERS = [f"+1415555{i:04d}" for i in range(400)]
PROFILE = AgentProfile("a" * 24, "Sales", "You are a sales agent.", None)


def test_the_test_provider_is_registered_and_configured() -> None:
    assert "test" in provider_names()
    provider = make_provider("test", Settings(test_provider_seed=7, test_provider_pace=0.5))
    assert isinstance(provider, SimulatedProvider)
    assert (provider.seed, provider.pace) == (7, 0.5)
    with pytest.raises(Exception, match="Unknown telephony provider 'twilio'"):
        make_provider("twilio", Settings())


def test_callees_are_reproducible_from_the_member() -> None:
    first = [Callee.draw(n, {}, 0) for n in NUMBERS]
    again = [Callee.draw(n, {}, 0) for n in NUMBERS]
    assert first == again
    other_seed = [Callee.draw(n, {}, 0, seed=1) for n in NUMBERS]
    assert first != other_seed


def test_the_person_is_stable_across_attempts_but_the_dial_is_not() -> None:
    changed = 0
    for n in NUMBERS:
        a, b = Callee.draw(n, {}, 0), Callee.draw(n, {}, 1)
        assert (a.first_name, a.interested, a.gives_name, a.patience) == (
            b.first_name,
            b.interested,
            b.gives_name,
            b.patience,
        )
        changed += a.outcome != b.outcome
    assert changed > 0  # a retry can reach somebody the first dial missed


def test_outcomes_cover_every_kind_in_plausible_shares() -> None:
    outcomes = Counter(Callee.draw(n, {}, 0).outcome for n in NUMBERS)
    assert set(outcomes) == set(DialOutcome)
    assert outcomes[DialOutcome.ANSWERED] > len(NUMBERS) * 0.6
    behaviours = [Callee.draw(n, {}, 0) for n in NUMBERS]
    assert any(c.interested for c in behaviours)
    assert any(not c.interested for c in behaviours)
    assert any(c.hangs_up_early for c in behaviours)


def test_names_come_from_the_member() -> None:
    callee = Callee.draw("+916366821717", {"firstName": "Test", "lastName": "User"}, 0)
    assert callee.name == "Test User"


@pytest.mark.parametrize(
    ("number", "status", "reason"),
    [
        ("+15005550001", "failed", "connection_error"),
        ("+15005550002", "busy", "dial_no_answer"),
        ("+15005550003", "no_answer", "dial_no_answer"),
    ],
)
def test_unanswered_dials_map_to_statuses_and_reasons(number: str, status: str, reason: str) -> None:
    result = SimulatedProvider().dial(DialRequest("CALL-1-abcdef", number))
    assert result.session is None
    assert UNCONNECTED[result.outcome] == (status, reason)
    assert [e.kind for e in result.events][:2] == ["dialing", "ringing"]
    assert result.events[-1].kind == result.outcome.value
    assert result.ended_ms is not None
    assert result.ended_ms > result.events[0].at_ms


def _talk(number: str, **kwargs: float) -> tuple[str, list[str]]:
    result = SimulatedProvider().dial(DialRequest("CALL-1-abcdef", number, variables={"firstName": "Asha"}))
    assert result.session is not None
    outcome = converse(
        result.session,
        ScriptedBrain(),
        PROFILE,
        max_duration_s=kwargs.get("max_duration_s", 600),
        silence_timeout_s=kwargs.get("silence_timeout_s", 10),
    )
    return outcome.reason, [f"{t.role}: {t.content}" for t in outcome.turns]


def test_an_interested_callee_gives_name_and_agrees() -> None:
    reason, lines = _talk("+15005550006")
    text = "\n".join(lines)
    assert "I am interested" in text
    assert "Asha" in text
    assert "follow-up" in text
    assert reason in ("agent_hangup", "user_hangup")
    assert lines[0].startswith("agent: ")


def test_an_uninterested_callee_says_so() -> None:
    _, lines = _talk("+15005550007")
    assert any("not interested" in line for line in lines)
    assert not any("Asha" in line for line in lines)


def test_early_hang_up_silence_and_maximum_duration() -> None:
    assert _talk("+15005550005")[0] == "user_hangup"
    reason, lines = _talk("+15005550004", silence_timeout_s=7)
    assert reason == "timeout"
    assert [line.split(":")[0] for line in lines] == ["agent"]
    assert _talk("+15005550006", max_duration_s=5)[0] == "timeout"


def test_simulated_time_makes_durations_without_waiting() -> None:
    result = SimulatedProvider().dial(DialRequest("CALL-1-abcdef", "+15005550006"))
    assert result.session is not None
    outcome = converse(
        result.session, ScriptedBrain(latency_ms=400), PROFILE, max_duration_s=600, silence_timeout_s=10
    )
    assert 10 < outcome.duration_s < 120
    stamps = [t.timestamp_ms for t in outcome.turns]
    assert stamps == sorted(stamps)
    assert outcome.agent_latency_ms == 400
