"""The dashboard in a real browser: Debian's Chromium driven by Playwright (no browser download).

Logs in, filters the log, opens a call, plays a recording by clicking a transcript line, edits a
metric into an invalid one (an ENUM without choices) and sees the API's error, re-runs analytics,
starts and pauses a campaign, and looks at the overview's charts and a phone-sized screen. Every
page is saved as a screenshot under ``test-artifacts/dashboard/`` (gitignored).

Skipped, with the reason, where Chromium or Playwright is missing (``make install`` installs
Chromium where it can: ``make chromium``). Runs on SQLite only (its own ``db`` fixture): the pages'
SQL is the API's, tested on both databases by tests/test_dashboard.py.
"""

from __future__ import annotations

import base64
import io
import math
import os
import shutil
import time
import wave
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dispo.api.app import create_app
from dispo.config import Settings
from dispo.runtime.dialogue import ScriptedBrain
from dispo.runtime.runner import CallRunner
from dispo.store import calls as call_store
from dispo.store.database import Database
from dispo.store.migrate import migrate
from dispo.telephony.simulated import SimulatedProvider
from dispo.voice.voices import Voices
from tests.conftest import LiveServer, Org
from tests.dashboard_helpers import World, build_world

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "dashboard"


def chromium_path() -> str | None:
    """Debian's Chromium binary (the ``chromium`` on the PATH is a shell wrapper around it)."""
    for candidate in (
        os.environ.get("DISPO_CHROMIUM"),
        "/usr/lib/chromium/chromium",
        shutil.which("chromium"),
    ):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed: pip install -e '.[dev]' (it is in the dev extra).")
    executable = chromium_path()
    if executable is None:
        pytest.skip(
            "Chromium is not installed: `make chromium` (root with apt-get) or `sudo apt-get install chromium`; "
            "or set DISPO_CHROMIUM to a Chromium binary."
        )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        args = ["--autoplay-policy=no-user-gesture-required"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run its sandbox as root
        b = p.chromium.launch(executable_path=executable, headless=True, args=args)
        yield b
        b.close()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """SQLite only, in place of conftest's both-databases ``db``: the pages' SQL is the API's, and
    tests/test_dashboard.py runs them on both."""
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('browser') / 'dispo.db'}")
    migrate(database)
    yield database
    database.dispose()


@pytest.fixture
def world(db: Database, client: TestClient, org: Org) -> World:
    return build_world(db, client, org.id)


@pytest.fixture
def page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    # A resource the Content-Security-Policy refuses (an inline style, a CDN) is a console error.
    pg.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    yield pg
    context.close()
    assert not errors, f"JavaScript or Content-Security-Policy errors on the pages: {errors}"


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def log_in(page: Any, key: str) -> None:
    page.goto("/dashboard/calls")
    assert "/dashboard/login" in page.url
    shot(page, "01-login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/dashboard/calls")


def tone_wav(seconds: float, rate: int = 4000) -> str:
    """A 440 Hz tone of ``seconds`` as a ``data:`` URL (8-bit mono, small): a recording the
    browser can play with no server."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(rate)
        w.writeframes(
            bytes(128 + int(100 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(seconds * rate)))
        )
    return "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_log_in_filter_and_open_a_call(page: Any, world: World, org: Org) -> None:
    log_in(page, org.key)
    shot(page, "02-calls")
    page.get_by_label("Status").select_option("completed")
    page.get_by_label("Agent").select_option(world.agent_id)
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**statusFilter=completed**")
    assert f"agentIds={world.agent_id}" in page.url  # the view is in the URL, to share
    shot(page, "03-calls-filtered")
    statuses = page.locator("table.calls tbody .badge").all_inner_texts()
    assert statuses
    assert set(statuses) == {"completed"}
    assert page.locator("th.metric", has_text="user_interested").count() == 1
    # Sort by duration, then open the first call.
    page.get_by_role("link", name="Duration").click()
    page.wait_for_url("**sortBy=callDuration**")
    page.locator("table.calls tbody tr").first.get_by_role("link").click()
    page.wait_for_url("**/dashboard/calls/CALL-*")
    assert page.get_by_role("heading", name="Transcript").is_visible()
    assert page.get_by_text("Recordings appear here when the call has audio").is_visible()
    shot(page, "04-call")
    # Re-run analytics (a POST with the page's CSRF token).
    page.get_by_role("button", name="Re-run analytics").click()
    page.wait_for_load_state()
    assert page.get_by_role("status").inner_text().startswith("Analytics queued again")
    assert page.locator("#analytics-status").inner_text() in ("pending", "running", "completed")
    shot(page, "05-call-reanalysed")


def test_play_a_recording_from_a_transcript_line(
    page: Any, world: World, org: Org, db: Database, client: TestClient
) -> None:
    # The shortest completed call, with a tone as long as its transcript (and then some).
    params = {"statusFilter": "completed", "sortBy": "callDuration", "sortOrder": "asc", "limit": 1}
    call = client.get("/api/v1/conversation", params=params).json()["data"]["logs"][0]
    start = datetime.fromisoformat(call["startedAt"] or call["createdAt"])
    length = (datetime.fromisoformat(call["transcript"][-1]["timestamp"]) - start).total_seconds() + 10
    with db.write() as conn:
        row = call_store.get_call(conn, org.id, call["callId"])
        assert row is not None
        call_store.update_call(conn, row["pk"], {"recording_url": tone_wav(length)})
    log_in(page, org.key)
    page.goto(f"/dashboard/calls/{call['callId']}")
    audio = page.locator("audio#audio-mono")
    assert audio.count() == 1
    lines = page.locator("button.seek")
    target = lines.nth(1)
    offset = float(target.get_attribute("data-seek"))
    target.click()
    page.wait_for_function("() => !document.querySelector('audio#audio-mono').paused")
    position = page.evaluate("() => document.querySelector('audio#audio-mono').currentTime")
    assert offset - 0.05 <= position < offset + 5  # playing from the line
    assert "playing" in (target.get_attribute("class") or "")
    shot(page, "06-call-recording")


def test_recordings_from_real_calls(
    page: Any, world: World, org: Org, db: Database, settings: Settings
) -> None:
    # A call the test provider places with a voice (a scripted agent, so no model is needed): its
    # recordings are real WAV files under the same data directory the live server reads.
    runner = CallRunner(
        db,
        settings,
        brain_factory=lambda _p: ScriptedBrain(latency_ms=50),
        providers={"test": SimulatedProvider(voices=Voices.from_settings(settings))},
    )
    with TestClient(create_app(settings, db, runner=runner), headers=org.headers) as voiced:
        response = voiced.post(
            "/api/v1/conversation/outbound", json={"agentId": world.agent_id, "phoneNumber": "+15005550006"}
        )
        assert response.status_code == 200, response.text
        call_id = response.json()["data"]["conversationId"]
        deadline = time.monotonic() + 60
        while (call := voiced.get(f"/api/v1/conversation/{call_id}").json()["data"])["status"] in (
            "in_queue",
            "in_progress",
        ):
            assert time.monotonic() < deadline, call
            time.sleep(0.05)
    assert call["recordingUrl"], call
    assert call["recordingDualUrl"], call
    log_in(page, org.key)
    page.goto(f"/dashboard/calls/{call_id}")
    page.locator("button.seek").first.click()
    page.wait_for_function("() => !document.querySelector('audio.recording').paused")
    shot(page, "06b-call-real-recording")


def test_an_enum_without_choices_shows_the_error(page: Any, world: World, org: Org) -> None:
    log_in(page, org.key)
    page.goto("/dashboard/agents")
    shot(page, "07-agents")
    page.get_by_role("link", name="Version 1 — edit").first.click()
    page.wait_for_url("**/analytics")
    shot(page, "08-config")
    page.locator("#choices_0").fill("")
    page.get_by_role("button", name="Save as a new version").click()
    page.wait_for_load_state()
    error = page.locator("#metric-0-errors")
    assert "is an ENUM and needs choices" in error.inner_text()
    assert page.locator("#choices_0").get_attribute("aria-invalid") == "true"
    shot(page, "09-config-error")
    page.locator("#choices_0").fill("yes, no")
    page.get_by_role("button", name="Save as a new version").click()
    page.wait_for_load_state()
    assert "version 2" in page.get_by_role("status").inner_text()
    page.get_by_role("button", name="Show the difference").click()
    page.wait_for_load_state()
    assert page.locator("pre.diff").is_visible()
    shot(page, "10-config-diff")


def test_start_and_pause_a_campaign_with_live_progress(
    page: Any, world: World, org: Org, client: TestClient
) -> None:
    log_in(page, org.key)
    page.goto("/dashboard/campaigns")
    shot(page, "11-campaigns")
    page.goto(f"/dashboard/campaigns/{world.campaign_id}")
    assert page.locator('[data-field="status"]').inner_text() == "draft"
    assert page.get_by_role("button", name="Pause").is_disabled()
    page.get_by_role("button", name="Start").click()
    page.wait_for_load_state()
    assert page.get_by_role("status").inner_text() == "Campaign started."
    assert page.locator('[data-field="total"]').inner_text() == "2"
    page.get_by_role("button", name="Pause").click()
    page.wait_for_load_state()
    assert page.get_by_role("status").inner_text() == "Campaign paused."
    assert page.locator('[data-field="status"]').inner_text() == "paused"
    shot(page, "12-campaign")
    # Resumed elsewhere (the API): the page follows within a poll (2 s), without a reload.
    page.evaluate("() => { window.notReloaded = true; }")
    r = client.post(f"/api/v1/campaign/{world.campaign_id}/start")
    assert r.status_code == 202, r.text
    page.wait_for_function(
        "() => document.querySelector('[data-field=status]').textContent === 'running'", timeout=6000
    )
    assert page.evaluate("() => window.notReloaded") is True
    assert page.get_by_role("button", name="Pause").is_enabled()
    shot(page, "12b-campaign-live")


def test_overview_charts_link_to_the_calls(page: Any, world: World, org: Org) -> None:
    log_in(page, org.key)
    page.goto("/dashboard/overview")
    page.wait_for_function("() => document.getElementById('chart-status').chart !== undefined")
    assert page.locator("canvas#chart-user_interested").count() == 1
    shot(page, "13-overview")
    # Click the chart's tallest bar: the call log of that day (and status) opens.
    box = page.locator("canvas#chart-status").bounding_box()
    point = page.evaluate(
        """() => { const c = document.getElementById('chart-status').chart;
                   for (let d = 0; d < c.data.datasets.length; d++) {
                     const meta = c.getDatasetMeta(d);
                     for (let i = c.data.labels.length - 1; i >= 0; i--) {
                       if (c.data.datasets[d].data[i] > 0) { const el = meta.data[i]; return {x: el.x, y: (el.y + el.base) / 2}; } } }
                   return null; }"""
    )
    assert point is not None
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    page.wait_for_url("**/dashboard/calls?**dateFrom=**")
    assert "statusFilter=" in page.url
    shot(page, "14-overview-drilldown")
    # A metric's bar: that day's calls with that value, through the API's metric filter.
    page.goto("/dashboard/overview")
    page.wait_for_function("() => document.getElementById('chart-user_interested').chart !== undefined")
    page.locator("canvas#chart-user_interested").scroll_into_view_if_needed()
    box = page.locator("canvas#chart-user_interested").bounding_box()
    found = page.evaluate(
        """() => { const c = document.getElementById('chart-user_interested').chart;
                   for (let d = 0; d < c.data.datasets.length; d++) {
                     const meta = c.getDatasetMeta(d);
                     for (let i = c.data.labels.length - 1; i >= 0; i--) {
                       if (c.data.datasets[d].data[i] > 0) { const el = meta.data[i];
                         return {x: el.x, y: (el.y + el.base) / 2, value: c.data.datasets[d].label,
                                 count: c.data.datasets[d].data[i]}; } } }
                   return null; }"""
    )
    assert found is not None
    page.mouse.click(box["x"] + found["x"], box["y"] + found["y"])
    page.wait_for_url("**/dashboard/calls?**metric.user_interested=**")
    assert f"metric.user_interested={found['value']}" in page.url
    # As many calls as the bar counts (the overview samples every analysed call of this small world).
    assert page.locator("tbody tr a[href*='/dashboard/calls/CALL-']").count() == found["count"]
    # The filter is a field of the form, to change or clear.
    assert page.locator("input[name='metric.user_interested']").input_value() == found["value"]
    shot(page, "14b-overview-metric-drilldown")


def test_phone_sized_screen_and_keyboard(
    browser: Any, live_server: LiveServer, world: World, org: Org
) -> None:
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    pg = context.new_page()
    log_in(pg, org.key)
    width = pg.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the page is {width}px wide on a 390px screen"
    shot(pg, "15-phone-calls")
    # Keyboard: the first Tab reaches the skip link, which moves focus to the content.
    pg.keyboard.press("Tab")
    assert pg.evaluate("() => document.activeElement.textContent") == "Skip to content"
    pg.keyboard.press("Enter")
    assert pg.evaluate("() => document.activeElement.id") == "main"
    for path in (
        "/dashboard/overview",
        f"/dashboard/calls/{world.call_ids[-1]}",
        f"/dashboard/agents/{world.agent_id}/analytics",
    ):
        pg.goto(path)
        width = pg.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390 + 1, f"{path} is {width}px wide on a 390px screen"
    pg.goto("/dashboard/overview")
    shot(pg, "16-phone-overview")
    context.close()


def test_webhooks_pages(page: Any, world: World, org: Org, client: TestClient) -> None:
    body = {
        "endpoint": "https://crm.example.com/hooks/dispo",
        "events": [{"agentId": world.agent_id, "eventType": "post-conversation"}],
    }
    webhook_id = client.post("/api/v1/webhook", json=body).json()["data"]["_id"]
    log_in(page, org.key)
    page.get_by_role("link", name="Webhooks").click()
    page.wait_for_url("**/dashboard/webhooks")
    shot(page, "17-webhooks")
    page.get_by_role("link", name="https://crm.example.com/hooks/dispo").click()
    page.wait_for_url(f"**/dashboard/webhooks/{webhook_id}")
    assert page.get_by_role("button", name="Replay every dead-lettered delivery").is_disabled()
    shot(page, "18-webhook")
