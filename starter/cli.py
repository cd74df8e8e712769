"""The command line: scrapes, schedules, advisories, changes, jobs, dead letters.

Every listing has ``--json``; human output is a table; every error is one line
on stderr and a non-zero exit code (2 for bad input).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import asyncpg
import typer
from pydantic import ValidationError
from temporalio.client import Client, ScheduleBackfill, ScheduleOverlapPolicy
from temporalio.service import RPCError, RPCStatusCode

from activities.types import ScrapeSourceResult
from advisories.errors import ParseError
from advisories.models import Advisory
from advisories.parsers import parser_for
from advisories.queues import MAINTENANCE
from advisories.settings import Settings, config_errors, get_settings
from starter._output import (
    CliError,
    JsonOption,
    SourceOption,
    connect_client,
    err,
    fail,
    out,
    print_listing,
    run,
    sources,
    with_pool,
)
from starter.monitoring_cli import register as register_monitoring
from starter.ratelimits_cli import register as register_rate_limits
from starter.reports_cli import register as register_reports
from starter.schedules import all_schedules, scrape_input, sync_schedules
from store.advisories import AdvisoryStore
from store.dead_letters import DeadLetterStore
from store.documents import gunzip
from store.index import IndexStore
from store.jobs import JobStore
from worker.telemetry import setup_tracing, shutdown_tracing
from workflows import DeadLetterProcessingWorkflow, ScrapeSourceWorkflow
from workflows.maintenance import ProcessDeadLettersInput, ProcessDeadLettersResult

app = typer.Typer(
    name="starter",
    help="Travel-advisory scheduler: run scrapes, inspect advisories, changes, jobs, dead letters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
schedules_app = typer.Typer(help="Temporal schedules of the project.", no_args_is_help=True)
app.add_typer(schedules_app, name="schedules")
register_rate_limits(app)
register_monitoring(app)
register_reports(app)


JOB_STATUSES = ("pending", "started", "success", "failure", "retry", "dead_letter")
DEAD_LETTER_STATUSES = ("open", "requeued", "recovered", "resolved", "all")
_COUNTRY_CODE = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")


def _one_of(name: str, value: str | None, allowed: Sequence[str]) -> None:
    if value is not None and value not in allowed:
        fail(f"invalid {name} {value!r}; valid: {', '.join(allowed)}", 2)


def _country(value: str) -> str:
    code = value.strip().upper()
    if not _COUNTRY_CODE.match(code):
        fail(f"invalid country {value!r}: use an ISO 3166 code such as FR or PT-20", 2)
    return code


# ----------------------------------------------------------------------------- scrapes


@app.command()
def schedule(
    source: Annotated[str | None, typer.Option(help="Source id (default: every source).")] = None,
    country: Annotated[
        str | None, typer.Option(help="Scrape this one country now (needs --source).")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the cycle to finish and print it.")] = False,
) -> None:
    """Start a scrape now (outside the schedule)."""
    specs = sources(source)
    code = None
    if country is not None:
        if source is None:
            fail("--country needs --source", 2)
        code = _country(country)
    settings = get_settings()

    async def go() -> None:
        if code is not None:
            await _check_country_known(settings, specs[0].id, code)
        client = await connect_client(settings)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        handles = []
        for spec in specs:
            suffix = f"{code}-{stamp}" if code else stamp
            handle = await client.start_workflow(
                ScrapeSourceWorkflow.run,
                scrape_input(spec, settings, countries=[code] if code else None),
                id=f"scrape-{spec.id}-manual-{suffix}",
                task_queue=spec.priority.task_queue,
            )
            out.print(f"started {handle.id}  {settings.workflow_url(handle.id)}")
            handles.append(handle)
        if wait:
            for handle in handles:
                with err.status(f"waiting for {handle.id} ..."):
                    try:
                        result: ScrapeSourceResult = await handle.result()
                    except Exception as exc:
                        fail(f"{handle.id} failed: {getattr(exc, 'cause', None) or exc}")
                _print_cycle(result)

    run(go)


def _print_cycle(result: ScrapeSourceResult) -> None:
    state = "index not modified (304)" if result.not_modified else "index fetched"
    line = (
        f"{result.source}: {state}, {result.items_seen} countries, "
        f"{result.countries_planned} documents to fetch, {result.countries_stored} stored, "
        f"{result.versions_created} new versions, {result.requests_made} requests"
    )
    if result.countries_quarantined:
        line += f", quarantined: {', '.join(result.countries_quarantined)}"
    out.print(line)


async def _check_country_known(settings: Settings, source: str, country: str) -> None:
    known, found = await with_pool(settings, lambda pool: IndexStore(pool).knows(source, country))
    if known and not found:
        fail(f"unknown country {country} for {source}: its index does not list it", 2)


@app.command("process-dlq")
def process_dlq(
    wait: Annotated[bool, typer.Option(help="Wait and print what was requeued.")] = True,
) -> None:
    """Requeue recoverable dead letters (network, 5xx, rate limited) of healthy sources."""
    settings = get_settings()

    async def go() -> None:
        client = await connect_client(settings)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        handle = await client.start_workflow(
            DeadLetterProcessingWorkflow.run,
            ProcessDeadLettersInput(),
            id=f"process-dlq-manual-{stamp}",
            task_queue=MAINTENANCE,
        )
        out.print(f"started {handle.id}  {settings.workflow_url(handle.id)}")
        if wait:
            with err.status("requeueing in staggered batches ..."):
                result: ProcessDeadLettersResult = await handle.result()
            out.print(f"requeued {len(result.requeued)}: {', '.join(result.requeued) or '-'}")

    run(go)


# ----------------------------------------------------------------------------- schedules


@schedules_app.command("sync")
def schedules_sync() -> None:
    """Create or update every schedule from the configuration (keeps paused state)."""
    settings = get_settings()

    async def go() -> None:
        client = await connect_client(settings)
        for outcome in await sync_schedules(client, settings):
            out.print(f"{outcome.action} schedule {outcome.schedule_id}")

    run(go)


def _schedule_ids(settings: Settings, ids: Sequence[str]) -> list[str]:
    known = list(all_schedules(settings))
    unknown = [i for i in ids if i not in known]
    if unknown:
        fail(f"unknown schedule {', '.join(unknown)}; valid schedules: {', '.join(known)}", 2)
    return list(ids)


async def _on_schedule(
    client: Client, schedule_id: str, action: Callable[..., Awaitable[Any]]
) -> None:
    try:
        await action(client.get_schedule_handle(schedule_id))
    except RPCError as exc:
        hint = " (run: schedules sync)" if exc.status == RPCStatusCode.NOT_FOUND else ""
        fail(f"{schedule_id}: {exc.message}{hint}")


@schedules_app.command("trigger")
def schedules_trigger(
    schedule_ids: Annotated[
        list[str] | None, typer.Argument(help="Schedule ids (default: every scrape schedule).")
    ] = None,
) -> None:
    """Run schedules' actions now (works even while a schedule is paused)."""
    settings = get_settings()
    ids = _schedule_ids(settings, schedule_ids or [s.schedule_id for s in sources(None)])

    async def go() -> None:
        client = await connect_client(settings)
        for schedule_id in ids:
            await _on_schedule(client, schedule_id, lambda h: h.trigger())
            out.print(
                f"triggered {schedule_id}  {settings.temporal_ui_url}/namespaces/"
                f"{settings.temporal_namespace}/schedules/{schedule_id}"
            )

    run(go)


@schedules_app.command("pause")
def schedules_pause(
    schedule_id: Annotated[str, typer.Argument(help="Schedule id.")],
    note: Annotated[str, typer.Option(help="Why (shown in the Web UI).")] = "paused from the CLI",
) -> None:
    """Pause a schedule."""
    settings = get_settings()
    _schedule_ids(settings, [schedule_id])

    async def go() -> None:
        client = await connect_client(settings)
        await _on_schedule(client, schedule_id, lambda h: h.pause(note=note))
        out.print(f"paused {schedule_id}")

    run(go)


@schedules_app.command("unpause")
def schedules_unpause(
    schedule_id: Annotated[str, typer.Argument(help="Schedule id.")],
    note: Annotated[str, typer.Option(help="Why.")] = "unpaused from the CLI",
) -> None:
    """Unpause a schedule."""
    settings = get_settings()
    _schedule_ids(settings, [schedule_id])

    async def go() -> None:
        client = await connect_client(settings)
        await _on_schedule(client, schedule_id, lambda h: h.unpause(note=note))
        out.print(f"unpaused {schedule_id}")

    run(go)


def _parse_time(name: str, value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"invalid {name} {value!r}: use ISO 8601, e.g. 2026-11-28T09:00Z", 2)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@schedules_app.command("backfill")
def schedules_backfill(
    schedule_id: Annotated[str, typer.Argument(help="Schedule id.")],
    start: Annotated[str, typer.Option(help="ISO 8601 start of the period.")],
    end: Annotated[str, typer.Option(help="ISO 8601 end of the period.")],
) -> None:
    """Run the actions a schedule would have run in a past period (overlap: buffer all)."""
    settings = get_settings()
    _schedule_ids(settings, [schedule_id])
    start_at, end_at = _parse_time("--start", start), _parse_time("--end", end)
    if end_at <= start_at:
        fail("--end must be after --start", 2)

    async def go() -> None:
        client = await connect_client(settings)
        backfill = ScheduleBackfill(
            start_at=start_at, end_at=end_at, overlap=ScheduleOverlapPolicy.BUFFER_ALL
        )
        await _on_schedule(client, schedule_id, lambda h: h.backfill(backfill))
        out.print(f"backfilling {schedule_id} from {start_at.isoformat()} to {end_at.isoformat()}")

    run(go)


@schedules_app.command("list")
def schedules_list(as_json: JsonOption = False) -> None:
    """List the schedules: timing, paused, next run, recent runs."""
    settings = get_settings()

    async def go() -> list[dict[str, Any]]:
        client = await connect_client(settings)
        rows: list[dict[str, Any]] = []
        async for entry in await client.list_schedules():
            info = entry.info
            state = entry.schedule.state if entry.schedule else None
            spec = entry.schedule.spec if entry.schedule else None
            timing = ""
            if spec is not None:
                timing = ", ".join(
                    [f"every {i.every}" for i in spec.intervals]
                    + [f"cron {c}" for c in spec.cron_expressions]
                    + [f"calendar {c}" for c in spec.calendars][:1]
                )
            rows.append(
                {
                    "id": entry.id,
                    "timing": timing,
                    "paused": state.paused if state else None,
                    "next_run": info.next_action_times[0]
                    if info and info.next_action_times
                    else None,
                    "recent_runs": len(info.recent_actions) if info else 0,
                }
            )
        return sorted(rows, key=lambda r: r["id"])

    print_listing(
        run(go),
        as_json=as_json,
        title="Schedules",
        columns=["id", "timing", "paused", "next_run", "recent_runs"],
    )


# ----------------------------------------------------------------------------- advisories


@app.command()
def advisories(
    source: SourceOption = None,
    country: Annotated[str | None, typer.Option(help="Only this country (ISO code).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Current advisories, one row per source and country."""
    if source is not None:
        sources(source)
    code = _country(country) if country else None
    settings = get_settings()

    async def query(pool: asyncpg.Pool) -> list[dict[str, Any]]:
        return [dict(r) for r in await AdvisoryStore(pool).current(source=source, country=code)]

    rows = run(lambda: with_pool(settings, query))
    print_listing(
        rows,
        as_json=as_json,
        title="Current advisories",
        columns=[
            "source",
            "country",
            "country_name",
            "level",
            "regional_level",
            "source_updated_at",
        ],
    )


@app.command()
def changes(
    source: SourceOption = None,
    country: Annotated[str | None, typer.Option(help="Only this country (ISO code).")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only changes detected since (ISO 8601).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
    as_json: JsonOption = False,
) -> None:
    """Classified changes (new, raised, lowered, regional, text, withdrawn), newest first."""
    if source is not None:
        sources(source)
    code = _country(country) if country else None
    since_at = _parse_time("--since", since) if since else None
    settings = get_settings()

    async def query(pool: asyncpg.Pool) -> list[dict[str, Any]]:
        store = AdvisoryStore(pool)
        found = await store.changes(source=source, country=code, since=since_at, limit=limit)
        return [dict(r) for r in found]

    rows = run(lambda: with_pool(settings, query))
    print_listing(
        rows,
        as_json=as_json,
        title="Changes",
        columns=[
            "detected_at",
            "source",
            "country",
            "country_name",
            "kind",
            "level_before",
            "level_after",
            "regional_before",
            "regional_after",
            "source_updated_at",
        ],
    )


@app.command()
def parse(
    file: Annotated[Path, typer.Argument(help="A document of the source (index or country).")],
    source: Annotated[str, typer.Option(help="Which source's format.")],
    as_json: JsonOption = False,
) -> None:
    """Parse a local document and print the normalised advisories (no database needed)."""
    spec = sources(source)[0]
    if not file.is_file():
        fail(f"no such file: {file}", 2)
    body = file.read_bytes()
    try:
        found = parser_for(spec.id).parse_file(
            body, url=file.resolve().as_uri(), fetched_at=datetime.now(UTC)
        )
    except ParseError as exc:
        fail(str(exc), 1)
    rows = [
        {
            "source": a.source,
            "country": a.country,
            "country_name": a.country_name,
            "level": int(a.level),
            "regional_level": None if a.regional_level is None else int(a.regional_level),
            "raw_level": a.raw_level,
            "source_updated_at": a.source_updated_at,
            "title": a.title,
            "withdrawn": a.withdrawn,
            "url": a.url,
            "content_hash": a.content_hash,
        }
        for a in found
    ]
    print_listing(
        rows,
        as_json=as_json,
        title=f"{spec.id}: {file.name}",
        columns=[
            "country",
            "country_name",
            "level",
            "regional_level",
            "raw_level",
            "source_updated_at",
        ],
    )


@app.command()
def reparse(source: SourceOption = None) -> None:
    """Re-derive current advisories from stored raw documents (after a parser fix)."""
    specs = sources(source)
    settings = get_settings()

    async def go(pool: asyncpg.Pool) -> None:
        store = AdvisoryStore(pool)
        for spec in specs:
            rows = await store.versions_with_documents(source=spec.id)
            parsed: dict[str, list[Advisory]] = {}
            derived: list[Advisory] = []
            errors = 0
            for i, row in enumerate(rows, 1):
                key = row["sha256"]
                if key not in parsed:
                    try:
                        parsed[key] = parser_for(spec.id).parse_file(
                            gunzip(row["body_gzip"]), url=row["url"], fetched_at=row["fetched_at"]
                        )
                    except ParseError as exc:
                        errors += 1
                        err.print(f"{spec.id} {row['country']}: {exc}", markup=False)
                        parsed[key] = []
                derived.extend(a for a in parsed[key] if a.country == row["country"])
                if i % 50 == 0:
                    err.print(f"{spec.id}: {i}/{len(rows)} parsed", markup=False)
            now = datetime.now(UTC)
            result = await store.store(derived, fetched_at=now)
            out.print(
                f"{spec.id}: {len(rows)} stored documents re-parsed, {result.versions_created} "
                f"changed ({result.changes or 'none'}), {errors} errors"
            )

    run(lambda: with_pool(settings, go))


# ----------------------------------------------------------------------------- jobs


@app.command()
def jobs(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many (newest first).")] = 20,
    status: Annotated[str | None, typer.Option(help=f"One of {', '.join(JOB_STATUSES)}.")] = None,
    source: SourceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recent scrape jobs (cycles, index fetches, country fetches)."""
    if source is not None:
        sources(source)
    _one_of("status", status, JOB_STATUSES)
    settings = get_settings()

    async def query(pool: asyncpg.Pool) -> list[dict[str, Any]]:
        found = await JobStore(pool).recent(limit=limit, source=source, status=status)
        return [dict(r) for r in found]

    print_listing(
        run(lambda: with_pool(settings, query)),
        as_json=as_json,
        title="Recent jobs",
        columns=[
            "id",
            "source",
            "country",
            "kind",
            "status",
            "attempt",
            "started_at",
            "duration_ms",
            "http_status",
            "items_seen",
            "versions_created",
            "error",
        ],
    )


# ----------------------------------------------------------------------------- dead letters


@app.command("dead-letters")
def dead_letters(
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    source: SourceOption = None,
    status: Annotated[
        str, typer.Option(help=f"One of {', '.join(DEAD_LETTER_STATUSES)}.")
    ] = "open",
    as_json: JsonOption = False,
) -> None:
    """Quarantined jobs (the dead-letter queue), oldest first."""
    if source is not None:
        sources(source)
    _one_of("status", status, DEAD_LETTER_STATUSES)
    settings = get_settings()

    async def query(pool: asyncpg.Pool) -> list[dict[str, Any]]:
        found = await DeadLetterStore(pool).list(
            status=None if status == "all" else status, source=source, limit=limit
        )
        return [dict(r) for r in found]

    print_listing(
        run(lambda: with_pool(settings, query)),
        as_json=as_json,
        title="Dead letters",
        columns=[
            "workflow_id",
            "source",
            "country",
            "failure_kind",
            "attempts",
            "http_status",
            "requeue_count",
            "status",
            "last_failure_at",
            "message",
        ],
    )


_QUARANTINE_ID = re.compile(r"^quarantine-[a-z_]+-[A-Za-z0-9*-]+$")


def _signal_quarantine(workflow_id: str, signal: str, note: str | None) -> None:
    if not _QUARANTINE_ID.match(workflow_id):
        fail(f"invalid quarantine id {workflow_id!r} (see: dead-letters)", 2)
    settings = get_settings()

    async def go() -> None:
        client = await connect_client(settings)
        handle = client.get_workflow_handle(workflow_id)
        try:
            description = await handle.describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                fail(f"no quarantine {workflow_id} (see: dead-letters)", 2)
            raise
        state = description.status.name if description.status else "?"
        if state != "RUNNING":
            fail(f"{workflow_id} is closed ({state})", 2)
        await handle.signal(signal, note)
        out.print(f"sent {signal} to {workflow_id}  {settings.workflow_url(workflow_id)}")

    run(go)


@app.command()
def requeue(
    workflow_id: Annotated[str, typer.Argument(help="Quarantine workflow id.")],
    note: Annotated[str | None, typer.Option(help="Why (kept in its history).")] = None,
) -> None:
    """Requeue a quarantined job: success closes it, failure keeps it with the count raised."""
    _signal_quarantine(workflow_id, "requeue", note)


@app.command()
def resolve(
    workflow_id: Annotated[str, typer.Argument(help="Quarantine workflow id.")],
    note: Annotated[str, typer.Option(help="What was done about it.")],
) -> None:
    """Close a quarantined job by hand, with a note."""
    if not note.strip():
        fail("--note must not be empty", 2)
    _signal_quarantine(workflow_id, "resolve", note)


# ----------------------------------------------------------------------------- misc


@app.command("config")
def show_config() -> None:
    """Show the configuration in force (secrets masked)."""
    print(json.dumps(get_settings().safe_summary(), indent=2, default=str))


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of ``python -m starter`` and the console script."""
    code = 0
    provider = setup_tracing(service_name="advisory-starter", export_timeout_seconds=2.0)
    try:
        app(args=argv, standalone_mode=False)
    except CliError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        code = exc.code
    except typer.Exit as exc:
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        code = 130
    except ValidationError as exc:
        err.print(
            f"error: invalid configuration: {config_errors(exc)}", markup=False, highlight=False
        )
        code = 2
    except typer.TyperException as exc:
        # Usage errors (bad option, missing argument): the parser's own message.
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(f"error: {exc}", markup=False, highlight=False)
        code = int(getattr(exc, "exit_code", 2))
    except Exception as exc:
        # Anything unexpected: one line, not a traceback.
        err.print(f"error: {type(exc).__name__}: {exc}", markup=False, highlight=False)
        code = 1
    shutdown_tracing(provider)
    sys.stdout.flush()
    sys.stderr.flush()
    # temporalio can crash during interpreter finalisation (sdk-python #300).
    os._exit(code)
