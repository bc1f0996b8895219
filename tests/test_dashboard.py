"""The dashboard without a browser: login, CSRF, organization isolation, the call log's filters and
export, the config editor's inline errors, re-running analytics, campaign actions, the overview.
(tests/test_dashboard_browser.py drives the same pages in Chromium.)"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dispo.api.app import create_app
from dispo.config import Settings
from dispo.dashboard.session import COOKIE
from dispo.store import calls as call_store
from dispo.store import orgs
from dispo.store.database import Database
from tests.conftest import Org
from tests.dashboard_helpers import World, build_world, csrf_token, login


@pytest.fixture
def browser_client(db: Database, settings: Settings) -> Iterator[TestClient]:
    """A client without an API key: it gets in only through the login page, as a browser does."""
    with TestClient(create_app(settings, db)) as c:
        yield c


@pytest.fixture
def world(db: Database, client: TestClient, org: Org) -> World:
    return build_world(db, client, org.id)


@pytest.fixture
def dash(browser_client: TestClient, org: Org, world: World) -> tuple[TestClient, str]:
    """Logged in as ``org``; the session's CSRF token."""
    return browser_client, login(browser_client, org.key)


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# --- login --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/dashboard/", "/dashboard/calls", "/dashboard/overview", "/dashboard/agents", "/dashboard/campaigns"],
)
def test_every_page_needs_a_login(browser_client: TestClient, path: str) -> None:
    r = browser_client.get(path + "?statusFilter=completed", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/dashboard/login?next=")
    assert "/dashboard/calls.csv" not in r.text
    export = browser_client.get("/dashboard/calls.csv", follow_redirects=False)
    assert export.status_code == 303


def test_login_with_a_wrong_key_says_what_to_do(browser_client: TestClient) -> None:
    token = csrf_token(browser_client.get("/dashboard/login").text)
    r = browser_client.post("/dashboard/login", data={"api_key": "sk_nope", "csrf_token": token})
    assert r.status_code == 401
    assert "Unknown or revoked API key" in r.text
    r = browser_client.post("/dashboard/login", data={"api_key": " ", "csrf_token": token})
    assert r.status_code == 401
    assert "Enter the API key" in r.text
    assert browser_client.get("/dashboard/calls", follow_redirects=False).status_code == 303


def test_the_session_cookie_is_httponly_samesite_and_signed(browser_client: TestClient, org: Org) -> None:
    token = csrf_token(browser_client.get("/dashboard/login").text)
    r = browser_client.post(
        "/dashboard/login",
        data={"api_key": org.key, "csrf_token": token, "next": "/dashboard/agents"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/dashboard/agents"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/dashboard" in cookie
    assert "Secure" not in cookie  # served over http here
    page = browser_client.get("/dashboard/agents")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert org.key not in cookie
    # A cookie altered by the client is worth nothing: back to the login page.
    value = browser_client.cookies[COOKIE]
    browser_client.cookies.clear()
    browser_client.cookies.set(COOKIE, value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB"))
    assert browser_client.get("/dashboard/calls", follow_redirects=False).status_code == 303


def test_the_cookie_is_secure_over_https(db: Database, settings: Settings, org: Org) -> None:
    with TestClient(create_app(settings, db), base_url="https://testserver") as c:
        token = csrf_token(c.get("/dashboard/login").text)
        r = c.post("/dashboard/login", data={"api_key": org.key, "csrf_token": token}, follow_redirects=False)
        assert "Secure" in r.headers["set-cookie"]


def test_login_does_not_redirect_off_the_dashboard(browser_client: TestClient, org: Org) -> None:
    token = csrf_token(browser_client.get("/dashboard/login").text)
    r = browser_client.post(
        "/dashboard/login",
        data={"api_key": org.key, "csrf_token": token, "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/dashboard/"


def test_logout_and_a_revoked_key_end_the_session(
    dash: tuple[TestClient, str], db: Database, org: Org
) -> None:
    client, token = dash
    assert client.get("/dashboard/calls", follow_redirects=False).status_code == 200
    again = client.get("/dashboard/login?next=/dashboard/agents", follow_redirects=False)
    assert again.headers["location"] == "/dashboard/agents"  # logged in already
    r = client.post("/dashboard/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/dashboard/calls", follow_redirects=False).status_code == 303
    login(client, org.key)
    with db.write() as conn:
        key = orgs.list_keys(conn, org.id)[0]
        orgs.revoke_key(conn, key["id"])
    assert client.get("/dashboard/calls", follow_redirects=False).status_code == 303


# --- CSRF ---------------------------------------------------------------------------------------


def test_forms_refuse_a_request_without_a_valid_csrf_token(
    dash: tuple[TestClient, str], world: World, browser_client: TestClient
) -> None:
    client, token = dash
    call_id = world.call_ids[-1]
    posts = [
        (f"/dashboard/calls/{call_id}/reanalyze", {}),
        (f"/dashboard/agents/{world.agent_id}/analytics", {"summary_prompt": "x"}),
        (f"/dashboard/campaigns/{world.campaign_id}/start", {}),
        ("/dashboard/logout", {}),
    ]
    for path, data in posts:
        for bad in (None, "", token[:-2] + "xx"):
            body = data if bad is None else {**data, "csrf_token": bad}
            r = client.post(path, data=body, follow_redirects=False)
            assert r.status_code == 403, (path, bad, r.text)
            assert "security token is missing or out of date" in r.text
            assert "reload the page" in r.text
    # Nothing happened: the campaign is still a draft, the session still logged in.
    page = client.get(f"/dashboard/campaigns/{world.campaign_id}").text
    assert 'data-field="status">draft<' in page
    # The login form too, without a session at all.
    fresh = TestClient(client.app)
    r = fresh.post("/dashboard/login", data={"api_key": "sk_x"}, follow_redirects=False)
    assert r.status_code == 403


# --- organization isolation ---------------------------------------------------------------------


def test_another_organizations_calls_never_appear(
    dash: tuple[TestClient, str], db: Database, other_org: Org, world: World
) -> None:
    client, _ = dash
    with TestClient(
        create_app(Settings(data_dir=client.app.state.settings.data_dir), db), headers=other_org.headers
    ) as api:
        theirs = build_world(db, api, other_org.id, n=20)
    their_call = theirs.call_ids[-1]
    # By URL: their call, agent and campaign are "not found" here.
    for path in (
        f"/dashboard/calls/{their_call}",
        f"/dashboard/agents/{theirs.agent_id}/analytics",
        f"/dashboard/campaigns/{theirs.campaign_id}",
        f"/dashboard/campaigns/{theirs.campaign_id}/progress",
    ):
        r = client.get(path)
        assert r.status_code == 404, path
        assert "in this organization" in r.text  # said as not found: nothing of theirs shown
    # By filter: their agent or campaign matches nothing here.
    for params in (
        {"agentIds": theirs.agent_id},
        {"campaignIds": theirs.campaign_id},
        {"search": their_call},
    ):
        page = client.get("/dashboard/calls", params=params).text
        assert "No calls match these filters." in page
        assert _csv(client.get("/dashboard/calls.csv", params=params).text) == []
    # Unfiltered: only ours, in the page and in the export.
    page = client.get("/dashboard/calls", params={"limit": 200}).text
    assert not any(c in page for c in theirs.call_ids)
    exported = {row["callId"] for row in _csv(client.get("/dashboard/calls.csv").text)}
    assert exported == set(world.call_ids)
    # Their campaign cannot be started from here either (404, nothing changed).
    token = csrf_token(client.get("/dashboard/calls").text)
    r = client.post(f"/dashboard/campaigns/{theirs.campaign_id}/start", data={"csrf_token": token})
    assert r.status_code == 404
    assert client.get("/dashboard/overview").status_code == 200


# --- the call log ---------------------------------------------------------------------------------


def test_the_log_filters_like_the_api_and_exports_the_view(
    dash: tuple[TestClient, str], client: TestClient, world: World
) -> None:
    browser, _ = dash
    params = {"statusFilter": "completed", "agentIds": world.agent_id, "limit": "200"}
    api = client.get("/api/v1/conversation", params=params).json()["data"]
    expected = {c["callId"] for c in api["logs"]}
    assert expected
    page = browser.get("/dashboard/calls", params=params)
    assert page.status_code == 200
    shown = {c for c in world.call_ids if f'/dashboard/calls/{c}"' in page.text}
    assert shown == expected
    # One column per metric of the selected agent's config, with the values.
    assert '<th scope="col" class="metric">user_interested</th>' in page.text
    # The export of the same view: the same calls, with the metric columns.
    rows = _csv(
        browser.get("/dashboard/calls.csv", params={k: v for k, v in params.items() if k != "limit"}).text
    )
    assert {r["callId"] for r in rows} == expected
    assert {r["status"] for r in rows} == {"completed"}
    assert {r["user_interested"] for r in rows} <= {"yes", "no", "unclear"}
    # The link of the export keeps the filters.
    assert f"/dashboard/calls.csv?agentIds={world.agent_id}" in page.text or "calls.csv?" in page.text


def test_the_log_filters_by_extracted_values_like_the_api(
    dash: tuple[TestClient, str], client: TestClient, world: World
) -> None:
    browser, _ = dash
    base = {"agentIds": world.agent_id, "limit": "200"}
    for value in ("yes", "in:no,unclear", "is:notnull"):
        params = {**base, "metric.user_interested": value}
        api = client.get("/api/v1/conversation", params=params)
        assert api.status_code == 200, api.text
        expected = {c["callId"] for c in api.json()["data"]["logs"]}
        page = browser.get("/dashboard/calls", params=params)
        assert page.status_code == 200
        assert {c for c in world.call_ids if f'/dashboard/calls/{c}"' in page.text} == expected
        # The field shows the filter, and the export of the view keeps it.
        assert 'name="metric.user_interested"' in page.text
        rows = _csv(
            browser.get("/dashboard/calls.csv", params={k: v for k, v in params.items() if k != "limit"}).text
        )
        assert {r["callId"] for r in rows} == expected
    assert expected  # is:notnull: the world's analysed calls
    bad = browser.get("/dashboard/calls", params={**base, "metric.user_interested": "gte:many"})
    assert bad.status_code == 400
    assert "metric.user_interested" in bad.text
    assert 'name="metric.user_interested"' in bad.text  # the fields stay, to correct it


def test_the_log_paginates_with_the_cursor_and_sorts(dash: tuple[TestClient, str], world: World) -> None:
    client, _ = dash
    seen: list[str] = []
    url = "/dashboard/calls?limit=25&sortBy=callDuration&sortOrder=asc"
    for _ in range(10):
        page = client.get(url).text
        seen += [c for c in world.call_ids if f'/dashboard/calls/{c}"' in page]
        if 'rel="next"' not in page:
            break
        href = page.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
        assert "cursor=" in href
        assert "sortBy=callDuration" in href
        url = href
    assert sorted(seen) == sorted(world.call_ids)  # every call once, across pages
    assert 'aria-sort="ascending"' in client.get("/dashboard/calls?sortBy=callDuration&sortOrder=asc").text


def test_a_bad_filter_shows_the_apis_message(dash: tuple[TestClient, str]) -> None:
    client, _ = dash
    r = client.get("/dashboard/calls", params={"statusFilter": "exploded", "minDuration": "x"})
    assert r.status_code == 400
    assert "statusFilter has unknown value exploded" in r.text
    assert "minDuration=&#39;x&#39; is not a number of seconds" in r.text
    export = client.get("/dashboard/calls.csv", params={"statusFilter": "exploded"})
    assert export.status_code == 400
    assert "statusFilter has unknown value" in export.text


# --- one call -------------------------------------------------------------------------------------


def test_a_call_shows_its_story_and_reruns_analytics(
    dash: tuple[TestClient, str], client: TestClient, world: World
) -> None:
    browser, token = dash
    completed = client.get("/api/v1/conversation", params={"statusFilter": "completed", "limit": 1}).json()
    call = completed["data"]["logs"][0]
    page = browser.get(f"/dashboard/calls/{call['callId']}").text
    assert call["transcript"][0]["content"].replace("'", "&#39;") in page
    assert call["postCallAnalytics"]["summary"] in page
    assert "The user said so." in page  # a metric's quoted reasoning
    assert "Recordings appear here when the call has audio" in page
    assert "Transcriber (average)" in page
    r = browser.post(f"/dashboard/calls/{call['callId']}/reanalyze", data={"csrf_token": token})
    assert r.status_code == 200
    assert "Analytics queued again" in r.text
    after = client.get(f"/api/v1/conversation/{call['callId']}").json()["data"]["postCallAnalytics"]
    assert after["status"] in ("pending", "running", "completed")
    assert after["queuedAt"] is not None


def test_a_call_with_a_recording_has_a_player_and_seekable_lines(
    dash: tuple[TestClient, str], db: Database, world: World, client: TestClient
) -> None:
    browser, _ = dash
    from dispo.store import calls as call_store

    call = client.get("/api/v1/conversation", params={"statusFilter": "completed", "limit": 1}).json()[
        "data"
    ]["logs"][0]
    with db.write() as conn:
        row = call_store.get_call(conn, world_org(client), call["callId"])
        assert row is not None
        call_store.update_call(
            conn, row["pk"], {"recording_url": "/audio/mono.wav", "recording_dual_url": "/audio/stereo.wav"}
        )
    page = browser.get(f"/dashboard/calls/{call['callId']}").text
    assert '<audio id="audio-mono"' in page
    assert '<audio id="audio-stereo"' in page
    assert 'class="seek" data-seek="0.0"' in page


def world_org(client: TestClient) -> str:
    """The organization ``client``'s key belongs to."""
    key = client.headers["authorization"].split()[1]
    with client.app.state.db.read() as conn:
        org_id = orgs.org_for_key_hash(conn, orgs.hash_key(key))
    assert org_id is not None
    return org_id


# --- the config editor ----------------------------------------------------------------------------


def test_an_enum_without_choices_shows_the_apis_error_next_to_it(
    dash: tuple[TestClient, str], client: TestClient, world: World
) -> None:
    browser, token = dash
    url = f"/dashboard/agents/{world.agent_id}/analytics"
    form = {
        "csrf_token": token,
        "summary_prompt": "Summarize the call.",
        "identifier_0": "user_interested",
        "type_0": "ENUM",
        "prompt_0": "Was the user interested?",
        "choices_0": "",
        "identifier_1": "user_name",
        "type_1": "STRING",
        "prompt_1": "The user's name",
    }
    r = browser.post(url, data=form)
    assert r.status_code == 400
    fieldset = r.text.split('id="metric-0"')[1].split("</fieldset>")[0]
    assert "is an ENUM and needs choices" in fieldset  # the API's message, next to its metric
    assert "is an ENUM and needs choices" not in r.text.split('id="metric-1"')[1]
    assert client.get(f"/api/v1/agent/{world.agent_id}/post-call-analytics").json()["data"]["version"] == 1
    # Fixed, it saves as version 2, and the diff between 1 and 2 shows the change.
    r = browser.post(
        url,
        data={
            **form,
            "choices_0": "yes, no",
            "identifier_2": "callback",
            "type_2": "BOOLEAN",
            "prompt_2": "Call back?",
        },
    )
    assert r.status_code == 200
    assert "version 2" in r.text
    saved = client.get(f"/api/v1/agent/{world.agent_id}/post-call-analytics").json()["data"]
    assert [m["identifier"] for m in saved["dispositionMetrics"]] == [
        "user_interested",
        "user_name",
        "callback",
    ]
    assert saved["dispositionMetrics"][0]["choices"] == ["yes", "no"]
    diff = browser.get(url, params={"a": 1, "b": 2}).text
    assert '<span class="add">+' in diff
    assert "callback" in diff.split('class="diff"')[1]


# --- campaigns ----------------------------------------------------------------------------------


def test_start_pause_and_stop_a_campaign(
    dash: tuple[TestClient, str], client: TestClient, world: World
) -> None:
    browser, token = dash
    base = f"/dashboard/campaigns/{world.campaign_id}"
    assert browser.get(f"{base}/progress").json()["status"] == "draft"
    r = browser.post(f"{base}/start", data={"csrf_token": token})
    assert "Campaign started." in r.text
    assert (
        client.get(f"/api/v1/campaign/{world.campaign_id}").json()["data"]["campaign"]["status"] == "running"
    )
    progress = browser.get(f"{base}/progress").json()
    assert progress["total"] == 2
    assert progress["actions"] == ["pause", "stop"]
    r = browser.post(f"{base}/pause", data={"csrf_token": token})
    assert "Campaign paused." in r.text
    r = browser.post(f"{base}/pause", data={"csrf_token": token})
    assert "it is already paused" in r.text  # the API's 409 message, shown
    r = browser.post(f"{base}/stop", data={"csrf_token": token})
    assert "Campaign stopped." in r.text
    assert browser.get("/dashboard/campaigns").text.count(world.campaign_id) >= 1


# --- the overview ---------------------------------------------------------------------------------


def test_the_overview_counts_and_charts(
    dash: tuple[TestClient, str], client: TestClient, world: World
) -> None:
    browser, _ = dash
    page = browser.get("/dashboard/overview", params={"days": "7"})
    assert page.status_code == 200
    total = client.get("/api/v1/conversation", params={"dateFrom": "6 days ago", "limit": 1}).json()
    assert f">{len(world.call_ids)}</a>" in page.text
    assert total["data"]["pagination"]["total"] >= 1
    assert "/dashboard/static/vendor/chart.umd.js" in page.text
    assert 'id="chart-status"' in page.text
    assert 'id="chart-user_interested"' in page.text
    assert "Percentiles per stage, from the turns of the newest" in page.text
    assert browser.get("/dashboard/static/vendor/chart.umd.js").status_code == 200
    one_agent = browser.get("/dashboard/overview", params={"agentId": world.agent_id}).text
    assert 'id="chart-user_interested"' in one_agent


# --- the overview's aggregates ------------------------------------------------------------------


def test_overview_aggregates_match_the_calls(
    db: Database, client: TestClient, org: Org, world: World
) -> None:
    """The store's aggregates against the same figures computed from the API's call list."""
    from datetime import UTC, date, datetime

    from dispo.store import overview as store

    today = (datetime.now(UTC).date() - date(1970, 1, 1)).days
    scope = store.Scope(org.id, today - 6, today)
    calls = client.get("/api/v1/conversation", params={"limit": 1000}).json()["data"]["logs"]
    with db.read() as conn:
        counts = store.counts_by_day_and_status(conn, scope)
        averages = store.averages(conn, scope)
        samples = store.recent_metric_values(conn, scope)
    assert sum(n for _, _, n in counts) == len(calls) == averages.calls
    connected = [c for c in calls if c["status"] in ("completed", "in_progress")]
    assert averages.connected == len(connected)
    assert averages.avg_duration == pytest.approx(sum(c["duration"] for c in connected) / len(connected))
    assert averages.total_cost == pytest.approx(sum(c["callCost"] for c in calls))
    analysed = [c for c in calls if c["postCallAnalytics"]["dispositionMetrics"]]
    assert len(samples) == len(analysed)
    # The stage percentiles from the newest calls' turns: with every call in the sample, those of
    # the API's GET /analytics/latency over the same range; with a smaller sample, of fewer turns.
    from dispo.store import latency
    from dispo.store.tables import calls as calls_table
    from dispo.store.tables import transcript_messages as tm

    with db.write() as conn:  # speech latencies on every turn of this organization's calls
        mine = sa.select(calls_table.c.pk).where(calls_table.c.org_id == org.id).scalar_subquery()
        conn.execute(
            sa.update(tm)
            .where(tm.c.call_pk.in_(mine))
            .values(
                latency_ms=100 + (tm.c.call_pk * 7 + tm.c.seq * 13) % 900,
                stt_ms=50 + (tm.c.call_pk + tm.c.seq) % 300,
                v2v_ms=400 + (tm.c.call_pk * 3 + tm.c.seq) % 1000,
            )
        )
    with db.read() as conn:
        sampled, stages = latency.recent_stage_percentiles(conn, org.id, scope.ms_from, scope.ms_to)
        every = latency.stage_percentiles(conn, org.id, date_from=scope.ms_from, date_to=scope.ms_to)
        few, fewer = latency.recent_stage_percentiles(conn, org.id, scope.ms_from, scope.ms_to, calls_limit=5)
    assert sampled == len(calls)
    assert stages == every
    assert stages["llm"]["count"] > 0
    assert few == 5
    assert 0 < fewer["llm"]["count"] < stages["llm"]["count"]
    # Another organization's scope sees none of it.
    with db.read() as conn:
        assert store.counts_by_day_and_status(conn, store.Scope("0" * 24, today - 6, today)) == []


def test_metric_charts_by_type() -> None:
    from dispo.dashboard.overview import metric_charts

    day = 1_767_139_200_000  # 2025-12-31
    definitions = {
        "interested": {"identifier": "interested", "dispositionMetricType": "ENUM", "choices": ["yes", "no"]},
        "callback": {"identifier": "callback", "dispositionValues": {"type": "BOOLEAN"}},
        "household": {"identifier": "household", "dispositionMetricType": "INTEGER"},
        "name": {"identifier": "name", "dispositionMetricType": "STRING"},
    }
    samples = [
        (
            day,
            None,
            [{"identifier": "interested", "value": "yes"}, {"identifier": "callback", "value": True}],
        ),
        (day, None, [{"identifier": "interested", "value": "no"}, {"identifier": "household", "value": 3}]),
        (
            day + 86_400_000,
            None,
            [{"identifier": "interested", "value": "yes"}, {"identifier": "household", "value": 25}],
        ),
        (day, None, [{"identifier": "name", "value": "Jordan"}, {"identifier": "household", "value": None}]),
    ]
    charts = {c["id"]: c for c in metric_charts(samples, definitions)}
    assert set(charts) == {"interested", "callback", "household"}  # no chart for a STRING
    interested = charts["interested"]
    assert interested["labels"] == ["2025-12-31", "2026-01-01"]
    assert {d["label"]: d["data"] for d in interested["datasets"]} == {"yes": [1, 1], "no": [1, 0]}
    assert charts["callback"]["datasets"] == [{"label": "true", "data": [1]}]
    household = charts["household"]
    assert household["chart"] == "histogram"
    assert sum(household["datasets"][0]["data"]) == 2
    assert household["labels"][0].startswith("3")


def test_unknown_pages_and_csv_cells(browser_client: TestClient) -> None:
    from dispo.dashboard.calls import cell

    r = browser_client.get("/dashboard/no-such-page")
    assert r.status_code == 404
    assert "text/html" in r.headers["content-type"]
    assert "No page /dashboard/no-such-page" in r.text
    assert browser_client.get("/api/v1/no-such").json()["status"] is False  # the API keeps its envelope
    assert cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert cell("-cmd") == "'-cmd"
    assert cell("+14155550100") == "+14155550100"
    assert cell(-3.5) == -3.5
    assert cell("yes") == "yes"


def test_the_signing_secret_is_made_once_and_kept(tmp_path: Path) -> None:
    from dispo.dashboard.session import secret_key

    settings = Settings(data_dir=tmp_path / "data")
    first = secret_key(settings)
    assert len(first) >= 40
    assert secret_key(settings) == first  # kept: sessions survive a restart
    assert (tmp_path / "data" / "session-secret").stat().st_mode & 0o077 == 0  # its owner's only
    assert list((tmp_path / "data").iterdir()) == [tmp_path / "data" / "session-secret"]
    assert secret_key(Settings(data_dir=tmp_path, session_secret="given")) == "given"


def test_the_benchmarks_pages_answer_with_server_timing(dash: tuple[TestClient, str], world: World) -> None:
    """benchmarks/dashboard.py measures these URLs by their Server-Timing header."""
    from benchmarks.dashboard import _TIMING, pages

    client, _ = dash
    for _name, _kind, path in pages(world.agent_id):
        r = client.get(path)
        assert r.status_code == 200, path
        assert _TIMING.search(r.headers["server-timing"]), path


# --- webhooks -----------------------------------------------------------------------------------


def test_webhooks_show_their_deliveries_and_replay(
    dash: tuple[TestClient, str], client: TestClient, db: Database, world: World, other_org: Org
) -> None:
    from dispo.store import webhooks as webhook_store

    browser, token = dash
    body = {
        "endpoint": "https://crm.example.com/hooks/dispo",
        "description": "Calls into the CRM",
        "events": [{"agentId": world.agent_id, "eventType": "post-conversation"}],
    }
    r = client.post("/api/v1/webhook", json=body)
    assert r.status_code == 201, r.text
    webhook_id = r.json()["data"]["_id"]
    calls = client.get("/api/v1/conversation", params={"agentIds": world.agent_id, "limit": 3}).json()
    org_id = world_org(client)
    with db.write() as conn:
        for call in calls["data"]["logs"]:
            row = call_store.get_call(conn, org_id, call["callId"])
            assert row is not None
            assert webhook_store.emit_for_call(conn, row["pk"], "post-conversation") == 1
    listing = browser.get("/dashboard/webhooks").text
    assert "https://crm.example.com/hooks/dispo" in listing
    assert "post-conversation (Agent 1)" in listing
    page = browser.get(f"/dashboard/webhooks/{webhook_id}")
    assert page.status_code == 200
    assert page.text.count("post-conversation</td>") == len(calls["data"]["logs"])
    assert (
        browser.get(f"/dashboard/webhooks/{webhook_id}", params={"status": "dead"}).text.count(
            "post-conversation</td>"
        )
        == 0
    )
    # A pending delivery is not replayed: the API's 409 message is shown.
    delivery = client.get(f"/api/v1/webhook/{webhook_id}/deliveries").json()["data"]["deliveries"][0]
    r = browser.post(
        f"/dashboard/webhooks/{webhook_id}/deliveries/{delivery['_id']}/replay", data={"csrf_token": token}
    )
    assert "only delivered or dead deliveries are replayed" in r.text
    r = browser.post(f"/dashboard/webhooks/{webhook_id}/replay", data={"csrf_token": token})
    assert "0 dead-lettered deliveries queued again." in r.text
    assert browser.post(f"/dashboard/webhooks/{webhook_id}/replay", data={}).status_code == 403
    # Another organization sees none of it.
    with TestClient(client.app) as theirs:
        login(theirs, other_org.key)
        assert theirs.get(f"/dashboard/webhooks/{webhook_id}").status_code == 404
        assert "crm.example.com" not in theirs.get("/dashboard/webhooks").text
