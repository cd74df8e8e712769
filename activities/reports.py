"""Reports: read the rows (``store.reports``), build the model, render, store, write.

``ReportGenerator`` does the work against a pool; ``ReportActivities`` wraps it
as the ``generate_report`` activity and the ``generate-report`` command calls it
directly (no worker needed). Every report is stored whole in ``reports`` (HTML,
Markdown, JSON), so it can be fetched from the database later; files are only
written when an output directory is given.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from temporalio import activity
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from advisories.queues import ALL_QUEUES
from advisories.report import (
    BacklogPoint,
    Report,
    build_report,
    render_html,
    render_json,
    render_markdown,
)
from store.reports import ReportStore

__all__ = [
    "FORMATS",
    "MAX_REPORT_HOURS",
    "BacklogProbe",
    "GeneratedReport",
    "ReportActivities",
    "ReportGenerator",
    "ReportInput",
    "ReportResult",
    "temporal_backlog_probe",
    "validate_hours",
]

log = logging.getLogger(__name__)

#: Longest period a report may cover (a year and a bit).
MAX_REPORT_HOURS = 24 * 400
#: What every report is rendered as (all stored; all written with ``out_dir``).
FORMATS = ("html", "markdown", "json")
_SUFFIX = {"html": "html", "markdown": "md", "json": "json"}

#: Samples the task queues' backlog now (one point per queue it could describe).
BacklogProbe = Callable[[], Awaitable[list[BacklogPoint]]]


@dataclass(frozen=True)
class ReportInput:
    """Input of ``generate_report`` and of ``ReportWorkflow``.

    Attributes:
        hours: The report covers the last ``hours`` up to now.
        out_dir: Also write ``report-<timestamp>.html/.md/.json`` there (on the
            worker's file system); None writes no file.
    """

    hours: float = 6.0
    out_dir: str | None = None


@dataclass(frozen=True)
class ReportResult:
    """What a report run produced (small: the content stays in the database).

    Attributes:
        report_id: Row id in ``reports``.
        paths: Files written (empty without ``out_dir``).
        counts: Headline numbers (``Report.counts``).
    """

    report_id: int
    paths: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GeneratedReport:
    """A report run with the model and its JSON text (for the CLI's ``--json``)."""

    result: ReportResult
    report: Report
    json_text: str


def validate_hours(hours: float) -> None:
    """Raises ValueError unless ``0 < hours <= MAX_REPORT_HOURS``."""
    if not 0 < hours <= MAX_REPORT_HOURS:
        raise ValueError(f"hours must be > 0 and at most {MAX_REPORT_HOURS}, got {hours:g}")


class ReportGenerator:
    """Builds, stores and writes reports from the project's tables."""

    def __init__(self, pool: asyncpg.Pool, *, backlog: BacklogProbe | None = None) -> None:
        self._store = ReportStore(pool)
        self._backlog = backlog

    async def generate(self, inp: ReportInput, *, report_key: str | None = None) -> GeneratedReport:
        """Report on the last ``inp.hours``; store it, and write files if asked.

        Args:
            inp: Period and output directory.
            report_key: Idempotency key: a second call with the same key
                replaces that report instead of adding one (activity retries).

        Raises:
            ValueError: for hours out of range.
            OSError: if the output directory cannot be written.
        """
        validate_hours(inp.hours)
        start, end, rows = await self._store.period_rows(inp.hours)
        # Health runs' samples over the period, and one taken now if Temporal answers.
        now = await self._backlog() if self._backlog else []
        report = build_report(
            dataclasses.replace(rows, backlog=[*rows.backlog, *now]), start=start, end=end
        )
        texts = {
            # Charts are drawn by a JavaScript engine (~0.1 s each): off the event loop.
            "html": await asyncio.to_thread(render_html, report),
            "markdown": render_markdown(report),
            "json": render_json(report),
        }
        paths: list[str] = []
        if inp.out_dir is not None:
            stamp = report.generated_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
            paths = await asyncio.to_thread(_write_files, Path(inp.out_dir), stamp, texts)
        report_id = await self._store.save(report, texts, paths, formats=FORMATS, key=report_key)
        result = ReportResult(report_id=report_id, paths=paths, counts=report.counts)
        return GeneratedReport(result=result, report=report, json_text=texts["json"])


def _write_files(out_dir: Path, stamp: str, texts: dict[str, str]) -> list[str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in FORMATS:
        path = out_dir / f"report-{stamp}.{_SUFFIX[fmt]}"
        # Write then rename: a reader never sees half a report.
        partial = path.with_name(path.name + ".partial")
        partial.write_text(texts[fmt], encoding="utf-8")
        partial.replace(path)
        paths.append(str(path.resolve()))
    return paths


def temporal_backlog_probe(client: Client, queues: Sequence[str] = ALL_QUEUES) -> BacklogProbe:
    """A probe sampling each queue's backlog and pollers from Temporal's task-queue stats.

    Workflow and activity tasks are added up. A queue Temporal cannot describe
    is left out rather than failing the report.
    """

    async def probe() -> list[BacklogPoint]:
        points = []
        now = datetime.now(UTC)
        for queue in queues:
            backlog = 0
            pollers = 0
            try:
                for kind in (
                    TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                    TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
                ):
                    answer = await client.workflow_service.describe_task_queue(
                        DescribeTaskQueueRequest(
                            namespace=client.namespace,
                            task_queue=TaskQueue(name=queue),
                            task_queue_type=kind,
                            report_stats=True,
                            report_pollers=True,
                        ),
                        timeout=timedelta(seconds=5),
                    )
                    backlog += answer.stats.approximate_backlog_count
                    pollers = max(pollers, len(answer.pollers))
            except Exception as exc:  # a report without one queue beats no report
                log.warning("backlog of %s not available: %s", queue, exc)
                continue
            points.append(BacklogPoint(queue, now, backlog, pollers))
        return points

    return probe


class ReportActivities:
    """Constructed once per worker.

    Args:
        pool: The worker's pool.
        backlog: Optional probe of the queues' backlog (``temporal_backlog_probe``);
            without it the report has no backlog section.
    """

    def __init__(self, pool: asyncpg.Pool, *, backlog: BacklogProbe | None = None) -> None:
        self._generator = ReportGenerator(pool, backlog=backlog)

    @activity.defn
    async def generate_report(self, inp: ReportInput) -> ReportResult:
        """Generate, store and (with ``out_dir``) write a report of the last ``inp.hours``."""
        try:
            validate_hours(inp.hours)
        except ValueError as exc:
            raise ApplicationError(str(exc), type="InvalidInput", non_retryable=True) from exc
        info = activity.info()
        # One report per activity, however often it is retried.
        key = f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}"
        generated = await self._generator.generate(inp, report_key=key)
        activity.logger.info(
            "report %d stored (%s)", generated.result.report_id, json.dumps(generated.result.counts)
        )
        return generated.result
