"""The ``generate-report`` and ``cleanup`` commands: straight against the database.

Neither needs a worker. ``generate-report`` stores the report in ``reports``
and, with ``--out``, writes it as HTML, Markdown and JSON files; when Temporal
answers, the report also shows each task queue's backlog. ``cleanup`` deletes
old operational rows in batches, printing its progress per table on stderr.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import typer

from activities.cleanup import DEFAULT_RETENTION_DAYS, Cleaner, CleanupInput, CleanupResult
from activities.reports import (
    BacklogProbe,
    GeneratedReport,
    ReportGenerator,
    ReportInput,
    temporal_backlog_probe,
    validate_hours,
)
from advisories.settings import Settings, get_settings
from starter._output import err, fail, out, print_table, run, with_pool
from worker.client import connect

#: How long ``generate-report`` waits for Temporal before reporting without backlog.
_TEMPORAL_WAIT_SECONDS = 5.0


def register(app: typer.Typer) -> None:
    """Add ``generate-report`` and ``cleanup`` to ``app``."""
    app.command("generate-report")(generate_report)
    app.command("cleanup")(cleanup)


def generate_report(
    hours: Annotated[float, typer.Option(help="Report on the last N hours.")] = 6.0,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Also write report-<timestamp>.html, .md and .json into DIR.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON report (with its id and paths).")
    ] = False,
) -> None:
    """Generate a report (success rates, durations, budget, levels, changes) and store it."""
    try:
        validate_hours(hours)
    except ValueError as exc:
        fail(f"--hours: {exc}", 2)
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        fail(f"--out {out_dir} exists and is not a directory", 2)
    settings = get_settings()

    async def go(pool: asyncpg.Pool) -> GeneratedReport:
        probe = await _backlog_probe(settings)
        if probe is None:
            err.print(
                f"note: Temporal at {settings.temporal_address} did not answer; "
                "the report has no backlog section",
                markup=False,
                highlight=False,
            )
        generator = ReportGenerator(pool, backlog=probe)
        inp = ReportInput(hours=hours, out_dir=None if out_dir is None else str(out_dir))
        try:
            return await generator.generate(inp)
        except OSError as exc:
            fail(f"cannot write the report to {out_dir}: {exc}")

    generated = run(lambda: with_pool(settings, go))
    result = generated.result
    if as_json:
        document = json.loads(generated.json_text)
        print(json.dumps({"report_id": result.report_id, "paths": result.paths, **document}))
        return
    counts = result.counts
    out.print(
        f"report {result.report_id} stored: last {hours:g} h, {counts['fetch_jobs']} fetch jobs "
        f"({counts['fetch_jobs_failed']} failed), {counts['requests']} requests, "
        f"{counts['countries']} countries ({counts['disagreements']} with disagreeing levels), "
        f"{counts['changes']} changes ({counts['notable_changes']} notable)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    for path in result.paths:
        out.print(path, markup=False, highlight=False, soft_wrap=True)


async def _backlog_probe(settings: Settings) -> BacklogProbe | None:
    """A probe of the queues' backlog, or None when Temporal does not answer soon."""
    try:
        client = await asyncio.wait_for(connect(settings), _TEMPORAL_WAIT_SECONDS)
    except (RuntimeError, TimeoutError, OSError):
        return None
    return temporal_backlog_probe(client)


def cleanup(
    days: Annotated[
        int,
        typer.Option(
            help="Delete job, request, health, report, finished webhook delivery, resolved"
            " alert and closed dead-letter rows older than N days."
        ),
    ] = int(DEFAULT_RETENTION_DAYS),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Delete old operational rows and unneeded raw documents.

    Old job rows, requests, health checks, reports, finished webhook deliveries,
    resolved alerts and closed dead letters go. Current advisories, every
    version's history, the raw document of every current advisory, pending
    deliveries, firing alerts and open dead letters are never deleted.
    """
    if days < 1:
        fail(f"--days must be at least 1, got {days}", 2)
    settings = get_settings()

    def progress(table: str, count: int, done: bool) -> None:
        verb = "to delete" if dry_run else "deleted"
        state = "" if done else " so far ..."
        err.print(f"{table}: {count} {verb}{state}", markup=False, highlight=False)

    async def go(pool: asyncpg.Pool) -> CleanupResult:
        return await Cleaner(pool).run(CleanupInput(days=days, dry_run=dry_run), progress=progress)

    result = run(lambda: with_pool(settings, go))
    if as_json:
        print(json.dumps(dataclasses.asdict(result), indent=2))
        return
    rows: list[dict[str, Any]] = [
        {"table": table, "rows": count, "older_than": result.cutoffs[table]}
        for table, count in result.counts.items()
    ]
    rows += [{"table": table, "rows": "absent", "older_than": ""} for table in result.skipped]
    title = f"Cleanup {'(dry run) ' if dry_run else ''}of rows older than {days} days"
    column = "would delete" if dry_run else "deleted"
    print_table(
        title,
        ["table", column, "older_than"],
        [{"table": r["table"], column: r["rows"], "older_than": r["older_than"]} for r in rows],
    )
    verb = "would lose" if dry_run else "lost"
    out.print(
        f"{result.versions_detached} old advisory versions {verb} their raw document "
        "(the versions themselves are kept)",
        markup=False,
        highlight=False,
    )
