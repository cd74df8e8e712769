"""The command line: schedules, manual runs, advisories and jobs.

Every listing has ``--json``; human output is a table; every error is one line
on stderr and a non-zero exit code (2 for bad input).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn, TypeVar

import asyncpg
import typer
from rich.console import Console
from rich.table import Table
from temporalio.client import Client
from temporalio.service import RPCError

from activities.store import AdvisoryStore, JobStore
from activities.types import ScrapeSourceInput, ScrapeSourceResult
from advisories.errors import UnknownSourceError
from advisories.settings import Settings, get_settings, redact_url
from advisories.sources import SOURCES, SourceSpec, get_source, source_ids
from starter.schedules import all_schedules, sync_schedules
from worker.client import connect
from workflows import ScrapeSourceWorkflow

T = TypeVar("T")

app = typer.Typer(
    name="starter",
    help="Travel-advisory scheduler: run scrapes, inspect advisories and jobs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
schedules_app = typer.Typer(help="Temporal schedules of the project.", no_args_is_help=True)
app.add_typer(schedules_app, name="schedules")

# A table piped to a file or another program keeps its full width instead of 80 columns.
out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True)


class CliError(Exception):
    """An error reported as one line and an exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = 1) -> NoReturn:
    """Stop with ``message`` on stderr and exit ``code``."""
    raise CliError(message, code)


def _sources(source: str | None) -> list[SourceSpec]:
    """The named source (validated) or all of them."""
    if source is None:
        return [get_source(s) for s in source_ids()]
    try:
        return [get_source(source)]
    except UnknownSourceError as exc:
        fail(str(exc), 2)


def _run(func: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(func())  # type: ignore[arg-type]


async def _client(settings: Settings) -> Client:
    try:
        return await connect(settings)
    except RuntimeError as exc:
        fail(f"{exc} — is the stack up? (make up)")


async def _pool(settings: Settings) -> asyncpg.Pool:
    url = settings.database_url.get_secret_value()
    try:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    except (OSError, asyncpg.PostgresError) as exc:
        fail(
            f"cannot connect to PostgreSQL at {redact_url(url)}: {exc} — is the stack up? (make up)"
        )
    assert pool is not None
    return pool


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def _print_json(rows: Sequence[dict[str, Any]]) -> None:
    print(json.dumps([{k: _jsonable(v) for k, v in r.items()} for r in rows], indent=2))


def _print_table(title: str, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row[c] is None else str(_short(row[c])) for c in columns))
    out.print(table)


def _short(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return value


@app.command()
def schedule(
    source: Annotated[str | None, typer.Option(help="Source id (default: every source).")] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the cycle to finish and print it.")] = False,
) -> None:
    """Start a scrape now (outside the schedule)."""
    specs = _sources(source)
    settings = get_settings()

    async def go() -> None:
        client = await _client(settings)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        handles = []
        for spec in specs:
            handle = await client.start_workflow(
                ScrapeSourceWorkflow.run,
                ScrapeSourceInput(source=spec.id, retry=settings.retry_config()),
                id=f"scrape-{spec.id}-manual-{stamp}",
                task_queue=spec.priority.task_queue,
            )
            out.print(f"started {handle.id}  {settings.workflow_url(handle.id)}")
            handles.append(handle)
        if wait:
            for handle in handles:
                result: ScrapeSourceResult = await handle.result()
                state = "not modified (304)" if result.not_modified else "fetched"
                out.print(
                    f"{result.source}: {state}, {result.items_seen} countries, "
                    f"{result.versions_created} new versions, {result.requests_made} requests"
                )

    _run(go)


@schedules_app.command("sync")
def schedules_sync() -> None:
    """Create or update every schedule from the configuration."""
    settings = get_settings()

    async def go() -> None:
        client = await _client(settings)
        for outcome in await sync_schedules(client, settings):
            out.print(f"{outcome.action} schedule {outcome.schedule_id}")

    _run(go)


@schedules_app.command("trigger")
def schedules_trigger(
    schedule_ids: Annotated[
        list[str] | None, typer.Argument(help="Schedule ids (default: every scrape schedule).")
    ] = None,
) -> None:
    """Run schedules' actions now (works even while a schedule is paused)."""
    settings = get_settings()
    known = list(all_schedules(settings))
    ids = schedule_ids or [s.schedule_id for s in SOURCES.values()]
    unknown = [i for i in ids if i not in known]
    if unknown:
        fail(f"unknown schedule {', '.join(unknown)}; valid schedules: {', '.join(known)}", 2)

    async def go() -> None:
        client = await _client(settings)
        for schedule_id in ids:
            try:
                await client.get_schedule_handle(schedule_id).trigger()
            except RPCError as exc:
                fail(f"cannot trigger {schedule_id}: {exc.message} (run: schedules sync)")
            out.print(
                f"triggered {schedule_id}  {settings.temporal_ui_url}/namespaces/"
                f"{settings.temporal_namespace}/schedules/{schedule_id}"
            )

    _run(go)


@schedules_app.command("list")
def schedules_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the schedules with their next run."""
    settings = get_settings()

    async def go() -> list[dict[str, Any]]:
        client = await _client(settings)
        rows: list[dict[str, Any]] = []
        async for entry in await client.list_schedules():
            info = entry.info
            state = entry.schedule.state if entry.schedule else None
            rows.append(
                {
                    "id": entry.id,
                    "paused": state.paused if state else None,
                    "next_run": info.next_action_times[0]
                    if info and info.next_action_times
                    else None,
                    "recent_runs": len(info.recent_actions) if info else 0,
                }
            )
        return sorted(rows, key=lambda r: r["id"])

    rows = _run(go)
    if as_json:
        _print_json(rows)
    else:
        _print_table("Schedules", ["id", "paused", "next_run", "recent_runs"], rows)


@app.command()
def advisories(
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """Current advisories, one row per source and country."""
    if source is not None:
        _sources(source)
    settings = get_settings()

    async def go() -> list[dict[str, Any]]:
        pool = await _pool(settings)
        try:
            return [dict(r) for r in await AdvisoryStore(pool).current(source=source)]
        finally:
            await pool.close()

    rows = _run(go)
    if as_json:
        _print_json(rows)
        return
    _print_table(
        f"Current advisories ({len(rows)})",
        ["source", "country", "country_name", "level", "regional_level", "source_updated_at"],
        rows,
    )


@app.command()
def jobs(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many (newest first).")] = 20,
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """Recent scrape jobs."""
    if source is not None:
        _sources(source)
    settings = get_settings()

    async def go() -> list[dict[str, Any]]:
        pool = await _pool(settings)
        try:
            return [dict(r) for r in await JobStore(pool).recent(limit=limit, source=source)]
        finally:
            await pool.close()

    rows = _run(go)
    if as_json:
        _print_json(rows)
        return
    _print_table(
        f"Recent jobs ({len(rows)})",
        [
            "id",
            "source",
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
        rows,
    )


@app.command("config")
def show_config() -> None:
    """Show the configuration in force (secrets masked)."""
    print(json.dumps(get_settings().safe_summary(), indent=2, default=str))


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of ``python -m starter`` and the console script."""
    code = 0
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
    sys.stdout.flush()
    sys.stderr.flush()
    # temporalio can crash during interpreter finalisation (sdk-python #300).
    os._exit(code)
