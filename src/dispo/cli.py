"""The ``dispo`` command: serve, doctor, worker, migrate, keys, orgs, calls, numbers, analytics,
demo-data, eval.

Commands other than ``serve`` work on the database directly (``DISPO_DATABASE_URL`` or the embedded
SQLite file), so they run with or without a server.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from dispo.api import calllog
from dispo.config import Settings, get_settings
from dispo.errors import DispoError
from dispo.evaluation.command import eval_command
from dispo.store import orgs as org_store
from dispo.store.database import Database
from dispo.store.migrate import migrate as run_migrations
from dispo.timeutil import ms_to_iso

if TYPE_CHECKING:
    from rich.progress import Progress

    from dispo.types import Row

app = typer.Typer(help="Dispo: self-hosted call logs and post-call analytics.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (Bearer sk_…), one organization each.", no_args_is_help=True)
orgs_app = typer.Typer(help="Organizations.", no_args_is_help=True)
calls_app = typer.Typer(help="Read the call log.", no_args_is_help=True)
analytics_app = typer.Typer(help="Post-call analytics jobs.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(orgs_app, name="orgs")
app.add_typer(calls_app, name="calls")
numbers_app = typer.Typer(help="Phone numbers campaigns call from.", no_args_is_help=True)
app.add_typer(numbers_app, name="numbers")
app.add_typer(analytics_app, name="analytics")
app.command("eval")(eval_command)

# Piped output (files, CI logs) gets wide tables instead of Rich's 80-column fallback.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, soft_wrap=True)


def _db(settings: Settings) -> Database:
    db = Database(settings.effective_database_url, pool_size=2)
    run_migrations(db)
    return db


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


def _resolve_org(db: Database, org: str | None) -> str:
    with db.read() as conn:
        all_orgs = org_store.list_orgs(conn)
    if org:
        if not any(o["id"] == org for o in all_orgs):
            raise _fail(f"No organization {org}: `dispo orgs list` shows them.")
        return org
    if not all_orgs:
        raise _fail(
            "No organization yet: start the server once (`make run`) or run `dispo orgs create NAME`."
        )
    if len(all_orgs) > 1:
        raise _fail("There are several organizations: name one with --org (see `dispo orgs list`).")
    return str(all_orgs[0]["id"])


OrgOption = Annotated[
    str | None, typer.Option("--org", help="Organization id (needed when there are several).")
]


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (DISPO_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (DISPO_PORT).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Analytics worker threads in the server process (default: DISPO_WORKERS with the "
            "SQLite queue, none with Redis, where `dispo worker` runs them).",
        ),
    ] = None,
    skip_doctor: Annotated[
        bool,
        typer.Option(
            "--skip-doctor",
            help="Start without `dispo doctor`'s checks (the model then loads on first use).",
        ),
    ] = False,
) -> None:
    """Migrate the database, create a first organization and key if there is none, check the
    installation (`dispo doctor`), and serve the API."""
    import uvicorn

    from dispo.analytics.jobs import is_sqlite_queue, make_huey, queue_description
    from dispo.api.app import create_app
    from dispo.api.server import server_options
    from dispo.bootstrap import prepare

    overrides: dict[str, Any] = {}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    settings = get_settings().model_copy(update=overrides)
    db = Database(settings.effective_database_url, pool_size=settings.db_pool_size)
    boot = prepare(settings, db)
    base = settings.base_url
    console.print(f"[bold]Dispo[/bold] on {db.dialect} ({db.url.render_as_string(hide_password=True)})")
    console.print(f"  API base URL : {base}/api/v1   (also {base}/atoms/v1)")
    console.print(f"  OpenAPI docs : {base}/docs")
    console.print(f"  Dashboard    : {base}/dashboard   (log in with an API key)")
    if boot.new_key:
        console.print(f"  Organization : {boot.org_id} (created)")
        console.print(f"  API key      : [bold green]{boot.new_key}[/bold green]  (shown once; store it now)")
        console.print(
            f"  Try it       : export SMALLEST_BASE_URL={base}/api/v1 SMALLEST_API_KEY={boot.new_key}"
        )
    else:
        console.print("  API keys     : existing keys are kept hashed; make one with `dispo keys create`")
    try:
        make_huey(settings)  # a bad DISPO_QUEUE_URL stops the start, with the reason
    except DispoError as exc:
        raise _fail(exc.message) from None
    run_workers = workers if workers is not None else (settings.workers if is_sqlite_queue(settings) else 0)
    where = (
        f"{run_workers} worker thread(s) in this process" if run_workers else "run `dispo worker` to work it"
    )
    console.print(f"  Analytics    : queue {queue_description(settings)}, {where}")
    console.print(
        f"  Dialer       : {settings.dialer_concurrency} concurrent calls, provider {settings.telephony_provider}"
        if settings.dialer_enabled
        else "  Dialer       : off (DISPO_DIALER_ENABLED=false); campaigns wait"
    )
    if not skip_doctor:
        _serve_doctor(settings)
    from dispo.llm import close_backends

    try:
        uvicorn.run(
            create_app(settings, db, run_workers=run_workers, run_dialer=settings.dialer_enabled),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            access_log=False,
            **server_options(settings),  # request-head timeout, WebSocket frame cap (api/server.py)
        )
    finally:
        close_backends()  # the model the doctor loaded, even if no call ever used it


def _serve_doctor(settings: Settings) -> None:
    """`dispo doctor`'s checks at start-up: problems are printed; a model that cannot load stops
    the start (the model loads in a worker process, so even a segfault only fails the check)."""
    from dispo import doctor
    from dispo.llm import close_backends

    checks = doctor.run_checks(settings, keep_model=True)
    model = next(c for c in checks if c.name == "model")
    problems = [c for c in checks if c.status != "ok"]
    if model.status == "ok":
        console.print(f"  Model        : {model.detail}")
    if not problems:
        console.print(f"  Doctor       : {len(checks)} checks passed")
        return
    for line in doctor.render(problems):
        err_console.print(f"  {line}", markup=False, highlight=False)
    fatal = [c for c in problems if c.status == "fail" and c.name in doctor.MODEL_CHECKS]
    if fatal:
        close_backends()
        raise _fail(
            f"{fatal[0].name}: {fatal[0].detail} Not starting: fix it (`dispo doctor` checks again), or "
            "start with --skip-doctor."
        )


@app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Check the installation: the model (loaded in a child process), the llama.cpp build, the
    database, the queue and free disk. Exits 1 when a check fails."""
    from dispo import doctor as checks_module
    from dispo.llm import close_backends

    settings = get_settings()
    try:
        checks = checks_module.run_checks(settings)
    finally:
        close_backends()
    if as_json:
        sys.stdout.write(json.dumps(checks_module.as_json(checks), indent=2) + "\n")
    else:
        for line in checks_module.render(checks):
            console.print(line, markup=False, highlight=False)
    if not all(c.ok for c in checks):
        raise typer.Exit(code=1)


@app.command()
def migrate() -> None:
    """Bring the database to the newest schema."""
    settings = get_settings()
    db = Database(settings.effective_database_url, pool_size=1)
    run_migrations(db)
    console.print(f"Database at {db.url.render_as_string(hide_password=True)} is up to date.")


@app.command()
def worker(
    workers: Annotated[int, typer.Option(min=1, help="Jobs run at once (threads or processes).")] = 1,
    worker_type: Annotated[
        str,
        typer.Option(
            "--worker-type",
            help="thread (one model shared, for an LLM server) or process (one model per process, "
            "for the local backend on many cores).",
        ),
    ] = "thread",
) -> None:
    """Run post-call analytics jobs from the queue (DISPO_QUEUE_URL) until stopped (Ctrl-C)."""
    import logging

    from dispo.analytics.jobs import Jobs, make_huey, run_worker
    from dispo.llm import LazyBackend

    if worker_type not in ("thread", "process"):
        raise _fail(f"--worker-type {worker_type!r}: use thread or process.")
    settings = get_settings()
    try:
        make_huey(settings)
    except DispoError as exc:
        raise _fail(exc.message) from None
    db = Database(settings.effective_database_url, pool_size=1)
    run_migrations(db)
    db.dispose()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # The worker's one backend (loaded by its first job) and queue, made here and passed in.
    backend = LazyBackend(settings)
    analytics_jobs = Jobs(settings, backend=backend)
    err_console.print(
        f"Dispo worker: queue {analytics_jobs.description}, database "
        f"{db.url.render_as_string(hide_password=True)}, {workers} {worker_type}(s)"
    )
    # Webhook deliveries from their queue too, in threads beside the analytics jobs (no relay: the
    # server relays; Huey's periodic sweep here relays as well, once a minute).
    from dispo.webhooks.service import Webhooks

    hooks = Webhooks(settings)
    if settings.webhook_workers and worker_type == "thread":  # no threads in a process that forks
        hooks.start(settings.webhook_workers, relay=False)
    try:
        run_worker(analytics_jobs, workers=workers, worker_type=worker_type)
    finally:
        hooks.stop()
        backend.close()  # the model's worker processes go with this one


@orgs_app.command("create")
def orgs_create(name: str) -> None:
    """Create an organization and print its id and a first API key."""
    from dispo.store import phone_numbers as number_store

    settings = get_settings()
    db = _db(settings)
    with db.write() as conn:
        org_id = org_store.create_org(conn, name)
        key = org_store.create_key(conn, org_id, name="first key")
        for number in settings.phone_number_list:  # DISPO_PHONE_NUMBERS, as every start does
            number_store.add_number(conn, org_id, number)
    console.print(f"Organization {org_id} ({name})")
    console.print(f"API key: [bold green]{key.secret}[/bold green]  (shown once)")


@orgs_app.command("list")
def orgs_list() -> None:
    """List organizations."""
    db = _db(get_settings())
    with db.read() as conn:
        rows = org_store.list_orgs(conn)
    table = Table("id", "name", "created")
    for row in rows:
        table.add_row(row["id"], row["name"], ms_to_iso(row["created_at"]) or "")
    console.print(table)


@keys_app.command("create")
def keys_create(
    org: OrgOption = None,
    name: Annotated[str, typer.Option(help="A label to tell keys apart.")] = "cli",
) -> None:
    """Create an API key; the key is printed once and only its hash is stored."""
    db = _db(get_settings())
    org_id = _resolve_org(db, org)
    with db.write() as conn:
        key = org_store.create_key(conn, org_id, name=name)
    console.print(key.secret)
    err_console.print(f"Key {key.id} for organization {org_id}. Store it now: it is not shown again.")


@keys_app.command("list")
def keys_list(org: OrgOption = None) -> None:
    """List API keys (prefixes only)."""
    db = _db(get_settings())
    with db.read() as conn:
        rows = org_store.list_keys(conn, org)
    table = Table("id", "prefix", "name", "organization", "created", "revoked")
    for row in rows:
        table.add_row(
            row["id"],
            row["prefix"] + "…",
            row["name"],
            row["org_id"],
            ms_to_iso(row["created_at"]) or "",
            ms_to_iso(row["revoked_at"]) or "",
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="Key id or the prefix `dispo keys list` shows.")],
) -> None:
    """Revoke an API key; requests with it get 401 from then on."""
    db = _db(get_settings())
    try:
        with db.write() as conn:
            row = org_store.revoke_key(conn, key.rstrip("…"))
    except DispoError as exc:
        raise _fail(exc.message) from None
    console.print(f"Revoked key {row['id']} ({row['prefix']}…).")


@calls_app.command("list")
def calls_list(
    org: OrgOption = None,
    agent: Annotated[str | None, typer.Option(help="Agent ids, comma-separated.")] = None,
    campaign: Annotated[str | None, typer.Option(help="Campaign ids, comma-separated.")] = None,
    status: Annotated[str | None, typer.Option(help="Statuses, e.g. completed,failed.")] = None,
    call_type: Annotated[
        str | None, typer.Option("--type", help="telephony_inbound, telephony_outbound, chat.")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Disconnection reasons, e.g. user_hangup.")] = None,
    search: Annotated[str | None, typer.Option(help="Call id or phone-number prefix.")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="ISO date or '7 days ago'.")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="ISO date or 'yesterday'.")] = None,
    duration: Annotated[str | None, typer.Option(help="Buckets: 0-30, 30-60, 1-5, 5+.")] = None,
    min_duration: Annotated[float | None, typer.Option(help="Seconds.")] = None,
    max_duration: Annotated[float | None, typer.Option(help="Seconds.")] = None,
    sort: Annotated[str, typer.Option(help="createdAt, updatedAt, callDuration, avgLatency.")] = "createdAt",
    order: Annotated[str, typer.Option(help="asc or desc.")] = "desc",
    page: Annotated[int, typer.Option(help="Page number.")] = 1,
    limit: Annotated[int, typer.Option(help="Calls per page (1-1000).")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of a table.")] = False,
    metric: Annotated[
        list[str] | None,
        typer.Option(help="Metric filter IDENTIFIER=VALUE, e.g. budget=gte:5000 (repeatable)."),
    ] = None,
) -> None:
    """List calls with the same filters as GET /conversation."""
    settings = get_settings()
    db = _db(settings)
    org_id = _resolve_org(db, org)
    params = {
        "agentIds": agent,
        "campaignIds": campaign,
        "statusFilter": status,
        "callTypes": call_type,
        "disconnectReasonFilter": reason,
        "search": search,
        "dateFrom": date_from,
        "dateTo": date_to,
        "durationFilter": duration,
        "minDuration": None if min_duration is None else str(min_duration),
        "maxDuration": None if max_duration is None else str(max_duration),
        "sortBy": sort,
        "sortOrder": order,
        "page": str(page),
        "limit": str(limit),
        **_metric_params(metric),
    }
    try:
        query = calllog.parse_list_query(
            org_id,
            {k: v for k, v in params.items() if v is not None},
            max_limit=settings.page_limit_max,
            total_cap=settings.list_total_cap,
        )
        with db.read() as conn:
            data = calllog.list_calls(conn, query)
    except DispoError as exc:
        raise _fail("; ".join(exc.errors)) from None
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    p = data["pagination"]
    total = f"{p['total']}+" if p.get("totalIsLowerBound") else p["total"]
    table = Table(title=f"Calls {len(data['logs'])} of {total} (page {p['page']} of {p['totalPages']})")
    for column in ("call id", "created", "status", "type", "from", "to", "duration", "reason", "cost"):
        table.add_column(column, justify="right" if column in ("duration", "cost") else "left")
    for log in data["logs"]:
        table.add_row(
            log["callId"],
            (log["createdAt"] or "")[:19].replace("T", " "),
            log["status"],
            log["type"],
            log["from"] or "",
            log["to"] or "",
            f"{log['duration']:.0f}s",
            log["disconnectionReason"] or "",
            f"{log['callCost']:.2f}",
        )
    console.print(table)


def _metric_params(metric: list[str] | None) -> dict[str, str]:
    """``--metric IDENTIFIER=VALUE`` options as ``metric.IDENTIFIER`` list parameters."""
    params = {}
    for item in metric or ():
        name, sep, value = item.partition("=")
        if not sep:
            raise _fail(f"--metric {item!r}: write IDENTIFIER=VALUE, e.g. --metric user_interested=yes.")
        params[f"metric.{name}"] = value
    return params


@calls_app.command("show")
def calls_show(
    call_id: Annotated[str, typer.Argument(help="CALL-… id.")],
    org: OrgOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
) -> None:
    """Show one call: details, transcript and post-call analytics."""
    db = _db(get_settings())
    org_id = _resolve_org(db, org)
    with db.read() as conn:
        data = calllog.get_call(conn, org_id, call_id)
    if data is None:
        raise _fail(f"No call {call_id} in organization {org_id}: `dispo calls list` shows recent ones.")
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    details = Table(show_header=False, title=data["callId"])
    for label, key in (
        ("status", "status"),
        ("type", "type"),
        ("from", "from"),
        ("to", "to"),
        ("duration (s)", "duration"),
        ("cost (credits)", "callCost"),
        ("disconnection", "disconnectionReason"),
        ("agent", "agentId"),
        ("campaign", "campaignId"),
        ("created", "createdAt"),
        ("recording", "recordingUrl"),
        ("transcriber latency (ms)", "average_transcriber_latency"),
        ("agent latency (ms)", "average_agent_latency"),
        ("synthesizer latency (ms)", "average_synthesizer_latency"),
    ):
        value = data.get(key)
        details.add_row(label, "" if value is None else str(value))
    console.print(details)
    if data["transcript"]:
        console.print("[bold]Transcript[/bold]")
        for msg in data["transcript"]:
            style = "cyan" if msg["role"] == "agent" else "green"
            console.print(f"  [{style}]{msg['role']:>5}[/{style}]: {msg['content']}")
    analytics = data["postCallAnalytics"]
    if analytics.get("status"):
        version = analytics.get("configVersion")
        line = f"[bold]Analytics[/bold]: {analytics['status']}" + (f" (config v{version})" if version else "")
        if analytics.get("error"):
            line += f" - {analytics['error']}"
        console.print(line)
    if analytics.get("summary") or analytics.get("dispositionMetrics"):
        console.print(f"[bold]Summary[/bold]: {analytics.get('summary')}")
        for metric in analytics.get("dispositionMetrics", []):
            console.print(
                f"  {metric['identifier']}: {metric.get('value')!r} "
                f"(confidence {metric.get('confidence')}) - {metric.get('reasoning')}"
            )


@numbers_app.command("add")
def numbers_add(
    number: Annotated[str, typer.Argument(help="E.164 number, e.g. +14155550123.")],
    org: OrgOption = None,
    agent: Annotated[
        str | None, typer.Option("--agent", help="Agent id to assign the number to (inbound calls).")
    ] = None,
    provider: Annotated[str, typer.Option(help="Telephony provider of the number.")] = "test",
) -> None:
    """Add a phone number to an organization (nothing changes if it has it already)."""
    from dispo.phones import EXAMPLE, to_e164
    from dispo.store import agents as agent_store
    from dispo.store import phone_numbers as number_store

    e164 = to_e164(number)
    if e164 is None:
        raise _fail(
            f"{number!r} is not a valid phone number: write it in E.164 with the country code, e.g. {EXAMPLE}."
        )
    db = _db(get_settings())
    org_id = _resolve_org(db, org)
    with db.write() as conn:
        if agent is not None and agent_store.get_agent(conn, org_id, agent) is None:
            raise _fail(f"No agent {agent} in organization {org_id}: GET /agent lists the agents.")
        row, created = number_store.add_number(conn, org_id, e164, provider=provider, agent_id=agent)
    what = "Added" if created else "Already there:"
    console.print(f"{what} {row['phone_number']} (id {row['id']}) in organization {org_id}.")


@numbers_app.command("list")
def numbers_list(org: OrgOption = None) -> None:
    """List phone numbers (of every organization unless --org is given)."""
    from dispo.store import phone_numbers as number_store

    db = _db(get_settings())
    with db.read() as conn:
        rows = number_store.list_numbers(conn, org)
    table = Table("id", "number", "country", "provider", "agent", "active", "organization", "created")
    for row in rows:
        table.add_row(
            row["id"],
            row["phone_number"],
            row["country_code"] or "",
            row["provider"],
            row["agent_id"] or "",
            "yes" if row["is_active"] else "no",
            row["org_id"],
            ms_to_iso(row["created_at"]) or "",
        )
    console.print(table)


@analytics_app.command("rerun")
def analytics_rerun(
    call_id: Annotated[
        list[str] | None, typer.Option("--call-id", help="A call to re-analyze (repeat for more).")
    ] = None,
    agent_id: Annotated[
        list[str] | None, typer.Option("--agent-id", help="Calls of this agent (repeatable).")
    ] = None,
    campaign_id: Annotated[
        list[str] | None, typer.Option("--campaign-id", help="Calls of this campaign (repeatable).")
    ] = None,
    status: Annotated[str | None, typer.Option(help="Call statuses, e.g. completed,failed.")] = None,
    since: Annotated[str | None, typer.Option(help="Created at or after: ISO date or '7 days ago'.")] = None,
    until: Annotated[str | None, typer.Option(help="Created at or before: ISO date or 'yesterday'.")] = None,
    config_version: Annotated[
        int | None, typer.Option(min=1, help="Config version to use (default: each agent's newest).")
    ] = None,
    inline: Annotated[
        bool, typer.Option("--inline", help="Run the analyses in this process instead of the workers.")
    ] = False,
    wait: Annotated[bool, typer.Option(help="Follow the queued jobs until they finish.")] = True,
    org: OrgOption = None,
) -> None:
    """Run post-call analytics again for ended calls chosen by id or by filters, with a progress bar."""
    settings = get_settings()
    db = _db(settings)
    org_id = _resolve_org(db, org)
    # The call list's filters, as GET /conversation's query string gives them.
    given = {
        "agentIds": ",".join(agent_id) if agent_id else None,
        "campaignIds": ",".join(campaign_id) if campaign_id else None,
        "statusFilter": status,
        "dateFrom": since,
        "dateTo": until,
    }
    filters = {name: value for name, value in given.items() if value is not None}
    if call_id and filters:
        raise _fail(
            "Give --call-id or filters (--agent-id, --campaign-id, --status, --since, --until), not both."
        )
    rows, config_ids = _rerun_select(db, org_id, call_id, filters, config_version, mark_pending=not inline)
    if not rows:
        console.print("No ended call matches: nothing to re-analyze.")
        return
    if inline:
        _report_rerun(len(rows), _rerun_inline(db, settings, rows, config_ids))
        return
    pks = [int(r["pk"]) for r in rows]
    _rerun_enqueue(db, settings, pks)
    if not wait:
        return
    _wait_for_reanalysis(db, pks)
    _report_rerun(len(rows), _rerun_failures(db, pks))


def _rerun_select(
    db: Database,
    org_id: str,
    call_ids: list[str] | None,
    filters: dict[str, str],
    config_version: int | None,
    *,
    mark_pending: bool,
) -> tuple[list[Row], dict[str | None, int | None]]:
    """The ended calls to re-analyze and the config id each agent's calls use; marked pending for
    the workers (in the same transaction) when ``mark_pending``."""
    from dispo.analytics import reanalysis
    from dispo.store import analytics_jobs

    try:
        with db.write() as conn:
            if call_ids:
                rows = reanalysis.select_by_ids(conn, org_id, call_ids)
            else:
                rows = reanalysis.select_by_filter(conn, reanalysis.parse_filters(org_id, filters))
            config_ids = reanalysis.config_ids_for(conn, rows, config_version)
            if mark_pending:
                analytics_jobs.mark_pending_many(conn, rows, config_ids)
    except DispoError as exc:
        raise _fail("; ".join(exc.errors)) from None
    return rows, config_ids


def _rerun_progress(on: Console | None = None) -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=on or console,
    )


def _rerun_inline(
    db: Database, settings: Settings, rows: list[Row], config_ids: dict[str | None, int | None]
) -> list[tuple[str, str]]:
    """Analyze each call in this process, one after the other; the failures, as (call id, reason)."""
    from dispo.analytics import lifecycle
    from dispo.llm import LazyBackend
    from dispo.store import analytics_jobs

    backend = LazyBackend(settings)  # loaded for the run, released after it
    failures: list[tuple[str, str]] = []
    progress = _rerun_progress()
    try:
        with progress:
            task = progress.add_task("Re-analyzing", total=len(rows))
            for row in rows:
                with db.write() as conn:
                    analytics_jobs.mark_pending_many(conn, [row], config_ids)
                try:
                    lifecycle.drive(db, settings, int(row["pk"]), backend)
                except lifecycle.AnalysisFailed as exc:
                    failures.append((row["call_id"], exc.message))
                progress.advance(task)
    finally:
        backend.close()
    return failures


def _rerun_enqueue(db: Database, settings: Settings, pks: list[int]) -> None:
    """Put the calls (already marked pending) on the queue for the workers."""
    from dispo.analytics import jobs

    queue = jobs.Jobs(settings, db)  # enqueues only: the workers run the jobs
    queued = queue.enqueue_many(pks, priority=jobs.PRIORITY_RERUN)
    console.print(f"Queued {len(pks)} call(s) for re-analysis on {queue.description}.")
    if queued < len(pks):
        err_console.print(
            "[yellow]The queue could not be reached; the sweeper will enqueue the calls later.[/yellow]"
        )


def _wait_for_reanalysis(db: Database, pks: list[int]) -> None:
    """Follow the queued jobs with a progress bar until each has completed or failed; a hint if
    none moves for 30 s; Ctrl-C stops waiting (exit 130) and leaves them queued."""
    import time

    from dispo.store import analytics_jobs

    hinted = False
    last_change = time.monotonic()
    done = 0
    progress = _rerun_progress()
    try:
        with progress:
            task = progress.add_task("Re-analyzing", total=len(pks))
            while done < len(pks):
                time.sleep(0.5)
                with db.read() as conn:
                    counts = analytics_jobs.status_counts(conn, pks)
                finished = counts.get("completed", 0) + counts.get("failed", 0)
                if finished != done or counts.get("running"):
                    last_change = time.monotonic()
                done = finished
                progress.update(task, completed=done)
                if not hinted and time.monotonic() - last_change > 30:
                    progress.console.print(
                        "[yellow]No job has moved for 30 s: is a worker running? (`dispo serve` works the "
                        "SQLite queue; `dispo worker` works any queue.) Ctrl-C stops waiting; the jobs stay queued.[/yellow]"
                    )
                    hinted = True
    except KeyboardInterrupt:
        err_console.print(
            "Stopped waiting; the jobs stay queued (`dispo calls show ID` shows each one's status)."
        )
        raise typer.Exit(code=130) from None


def _rerun_failures(db: Database, pks: list[int]) -> list[tuple[str, str]]:
    """The calls among ``pks`` whose analysis failed, as (call id, reason)."""
    from dispo.store import analytics_jobs

    with db.read() as conn:
        return [(r["call_id"], r["analytics_error"] or "") for r in analytics_jobs.failed_calls(conn, pks)]


def _report_rerun(total: int, failures: list[tuple[str, str]]) -> None:
    console.print(f"Re-analyzed {total - len(failures)} of {total} call(s).")
    for call, reason in failures[:10]:
        err_console.print(f"[red]failed[/red] {call}: {reason}")
    if len(failures) > 10:
        err_console.print(f"… and {len(failures) - 10} more failures.")
    if failures:
        raise typer.Exit(code=1)


@calls_app.command("import")
def calls_import(
    file: Annotated[Path, typer.Argument(help="JSONL file: one call per line.", exists=True, dir_okay=False)],
    source: Annotated[
        str,
        typer.Option(
            help="Each line is a dispo ImportCall, a vapi end-of-call-report or a retell call_ended."
        ),
    ] = "dispo",
    server: Annotated[
        str | None,
        typer.Option(help="Post to this Dispo server (e.g. http://127.0.0.1:8000) instead of the database."),
    ] = None,
    key: Annotated[str | None, typer.Option(envvar="DISPO_API_KEY", help="API key for --server.")] = None,
    org: OrgOption = None,
    batch: Annotated[int, typer.Option(min=1, max=1000, help="Calls per request (per transaction).")] = 500,
) -> None:
    """Import finished calls from another voice stack (see docs/import.md), with a progress bar."""
    from dispo import imports

    if source not in imports.CONVERTERS:
        raise _fail(f"--source {source!r} is not known: use {', '.join(imports.CONVERTERS)}.")
    if server is not None and not key:
        raise _fail("--server needs an API key: pass --key sk_… or set DISPO_API_KEY.")
    send, close = _import_sender(server, key, org)
    try:
        counts, problems = _import_file(file, source, batch, send)
    finally:
        close()
    console.print(
        f"{counts['imported']} imported, {counts['duplicate']} already there (same externalId), "
        f"{counts['invalid']} invalid."
    )
    for problem in problems[:20]:
        err_console.print(f"[red]{problem}[/red]")
    if counts["invalid"]:
        raise typer.Exit(code=1)


def _import_file(file: Path, source: str, batch: int, send: Any) -> tuple[dict[str, int], list[str]]:
    """Send ``file``'s calls in batches, with a progress bar: the counts by status, and the problems."""
    from dispo import imports

    with file.open(encoding="utf-8") as lines:
        total = sum(1 for line in lines if line.strip())
    counts = {"imported": 0, "duplicate": 0, "invalid": 0}
    problems: list[str] = []
    with _rerun_progress() as progress:
        task = progress.add_task(f"Importing {file.name}", total=total)
        chunk: list[tuple[int, Any]] = []
        for number, item in itertools.chain(imports.read_jsonl(file, source), [(0, None)]):  # None: the end
            if item is not None:
                chunk.append((number, item))
            if chunk and (len(chunk) >= batch or item is None):
                for status, message in _import_chunk(send, chunk):
                    counts[status] += 1
                    problems += [message] if message else []
                progress.advance(task, len(chunk))
                chunk = []
    return counts, problems


def _import_sender(server: str | None, key: str | None, org: str | None) -> tuple[Any, Any]:
    """``(send, close)``: ``send`` imports a list of calls and returns the per-call results (API shape)."""
    if server is not None:
        import httpx

        client = httpx.Client(
            base_url=server.rstrip("/"), headers={"Authorization": f"Bearer {key}"}, timeout=120
        )

        def post(items: list[Any]) -> list[dict[str, Any]]:
            response = client.post("/api/v1/conversation/import/batch", json={"calls": items})
            body = response.json()
            if not body.get("status"):
                raise _fail("; ".join(body.get("errors") or [response.text[:200]]))
            return list(body["data"]["results"])

        return post, client.close
    from dispo import imports
    from dispo.analytics import jobs

    settings = get_settings()
    db = _db(settings)
    org_id = _resolve_org(db, org)
    queue = jobs.Jobs(settings, db)  # enqueues only: the workers analyse the calls

    def store(items: list[Any]) -> list[dict[str, Any]]:
        outcome = imports.import_calls(db, org_id, items)
        queue.enqueue_many(outcome.pks)
        return [r.to_json() for r in outcome.results]

    return store, db.dispose


def _import_chunk(send: Any, chunk: list[tuple[int, Any]]) -> list[tuple[str, str | None]]:
    """``(status, problem or None)`` per line of ``chunk``; lines that could not be read are invalid."""
    out: list[tuple[str, str | None]] = [("invalid", item) for _, item in chunk if isinstance(item, str)]
    calls = [(number, item) for number, item in chunk if not isinstance(item, str)]
    if calls:
        for (number, _), result in zip(calls, send([item for _, item in calls]), strict=True):
            errors = [re.sub(r"^calls\[\d+\]\.?", f"line {number}: ", e) for e in result["errors"]]
            problem = "; ".join(errors) or None
            out.append((result["status"], problem))
    return out


@calls_app.command("export")
def calls_export(
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write (- for standard output).")],
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl.")] = "csv",
    org: OrgOption = None,
    agent: Annotated[str | None, typer.Option(help="Agent ids, comma-separated.")] = None,
    status: Annotated[str | None, typer.Option(help="Statuses, e.g. completed,failed.")] = None,
    search: Annotated[str | None, typer.Option(help="Call id, phone-number prefix or words said.")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="ISO date or '7 days ago'.")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="ISO date or 'yesterday'.")] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(help="Metric filter IDENTIFIER=VALUE, e.g. budget=gte:5000 (repeatable)."),
    ] = None,
) -> None:
    """Export the calls matching the filters, as GET /conversation/export does, with a progress bar."""
    from dispo.api import exports

    if fmt not in exports.FORMATS:
        raise _fail(f"--format {fmt!r} is not an export format: use csv or jsonl.")
    settings = get_settings()
    db = _db(settings)
    org_id = _resolve_org(db, org)
    params = {
        "agentIds": agent,
        "statusFilter": status,
        "search": search,
        "dateFrom": date_from,
        "dateTo": date_to,
    }
    params.update(_metric_params(metric))
    try:
        given = {k: v for k, v in params.items() if v is not None}
        query = calllog.parse_list_query(org_id, {**given, "limit": "1"}, total_cap=10**12)
        with db.read() as conn:
            total = calllog.list_calls(conn, query)["pagination"]["total"]
    except DispoError as exc:
        raise _fail("; ".join(exc.errors)) from None
    metrics = exports.metric_columns(db, query) if fmt == "csv" else []
    sink = sys.stdout.buffer if str(out) == "-" else out.open("wb")
    try:
        with _rerun_progress(err_console) as progress:  # the export may go to standard output
            task = progress.add_task("Exporting", total=total)
            for chunk in exports.export_lines(db, query, fmt, metrics, lambda n: progress.advance(task, n)):
                sink.write(chunk)
    finally:
        if sink is not sys.stdout.buffer:
            sink.close()


@app.command("demo-data")
def demo_data(
    calls: Annotated[int, typer.Option(help="How many synthetic calls to add.")] = 1000,
    days: Annotated[int, typer.Option(help="Spread them over this many past days.")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same calls).")] = 1,
    org: OrgOption = None,
) -> None:
    """Add realistic synthetic calls (with agents and campaigns) to try the call log with."""
    from dispo.store import synthetic

    db = _db(get_settings())
    org_id = _resolve_org(db, org)
    with db.write() as conn:
        fleet = synthetic.create_fleet(conn, org_id, seed=seed)
        n = synthetic.load_calls(conn, org_id, fleet, calls, days=days, seed=seed)
    console.print(
        f"Added {n} synthetic calls over {days} days, {len(fleet.agent_ids)} agents, "
        f"{len(fleet.campaigns)} campaigns, to organization {org_id}."
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
