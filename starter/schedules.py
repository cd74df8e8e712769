"""Temporal schedules: built from the source registry and settings, synced idempotently."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from activities.cleanup import CleanupInput
from activities.reports import ReportInput
from activities.types import ScrapeSourceInput
from advisories.queues import MAINTENANCE, MONITORING, REPORTING
from advisories.schedule_spec import (
    CLEANUP_SCHEDULE,
    HEALTH_SCHEDULE,
    PERIODIC_INTERVALS,
    PROCESS_DLQ_SCHEDULE,
    REPORT_SCHEDULE,
    Timing,
    schedule_timing,
    source_timing,
)
from advisories.settings import Settings
from advisories.sources import SOURCES, SourceSpec
from workflows import (
    CleanupWorkflow,
    DeadLetterProcessingWorkflow,
    HealthWorkflow,
    ReportWorkflow,
    ScrapeSourceWorkflow,
)
from workflows.maintenance import ProcessDeadLettersInput
from workflows.monitoring import HealthInput


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """What syncing one schedule did: ``created`` or ``updated``."""

    schedule_id: str
    action: str


def schedule_spec(timing: Timing, settings: Settings) -> ScheduleSpec:
    """The Temporal spec of ``timing`` (decided in :mod:`advisories.schedule_spec`) with jitter."""
    return ScheduleSpec(
        intervals=[ScheduleIntervalSpec(every=timing.every)] if timing.every else [],
        cron_expressions=[timing.cron] if timing.cron else [],
        jitter=timedelta(seconds=settings.schedule_jitter_seconds),
    )


def _policy(settings: Settings) -> SchedulePolicy:
    return SchedulePolicy(
        overlap=ScheduleOverlapPolicy.SKIP,
        catchup_window=timedelta(seconds=settings.schedule_catchup_window_seconds),
    )


def scrape_input(spec: SourceSpec, settings: Settings, **extra: object) -> ScrapeSourceInput:
    """The workflow input of a scrape of ``spec``, from configuration."""
    return ScrapeSourceInput(
        source=spec.id,
        retry=settings.retry_config(),
        batch_size=settings.scrape_batch_size,
        batch_concurrency=settings.scrape_batch_concurrency,
        max_parallel_batches=settings.scrape_max_parallel_batches,
        **extra,  # type: ignore[arg-type]
    )


def _schedule(
    schedule_id: str, workflow: Any, arg: object, *, queue: str, timing: Timing, settings: Settings
) -> Schedule:
    """A schedule starting ``workflow(arg)`` on ``queue`` at ``timing``."""
    return Schedule(
        action=ScheduleActionStartWorkflow(workflow, arg, id=schedule_id, task_queue=queue),
        spec=schedule_spec(timing, settings),
        policy=_policy(settings),
    )


def scrape_schedule(spec: SourceSpec, settings: Settings) -> Schedule:
    """The schedule that scrapes ``spec`` at its priority's interval (or the override)."""
    return _schedule(
        spec.schedule_id,
        ScrapeSourceWorkflow.run,
        scrape_input(spec, settings),
        queue=spec.priority.task_queue,
        timing=source_timing(spec, settings.schedule_overrides),
        settings=settings,
    )


def all_schedules(settings: Settings) -> dict[str, Schedule]:
    """Every schedule the project owns, by id: scrapes, health, dead letters, report, cleanup."""
    schedules = {spec.schedule_id: scrape_schedule(spec, settings) for spec in SOURCES.values()}
    periodic: list[tuple[str, Any, object, str]] = [
        (HEALTH_SCHEDULE, HealthWorkflow.run, HealthInput(), MONITORING),
        (
            PROCESS_DLQ_SCHEDULE,
            DeadLetterProcessingWorkflow.run,
            ProcessDeadLettersInput(),
            MAINTENANCE,
        ),
        (REPORT_SCHEDULE, ReportWorkflow.run, ReportInput(hours=6.0), REPORTING),
        (CLEANUP_SCHEDULE, CleanupWorkflow.run, CleanupInput(), MAINTENANCE),
    ]
    for schedule_id, workflow, arg, queue in periodic:
        timing = schedule_timing(
            schedule_id, PERIODIC_INTERVALS[schedule_id], settings.schedule_overrides
        )
        schedules[schedule_id] = _schedule(
            schedule_id, workflow, arg, queue=queue, timing=timing, settings=settings
        )
    return schedules


async def sync_schedules(client: Client, settings: Settings) -> list[SyncOutcome]:
    """Create each schedule, or update it to the current configuration."""
    outcomes: list[SyncOutcome] = []
    for schedule_id, schedule in all_schedules(settings).items():
        try:
            await client.create_schedule(schedule_id, schedule)
            outcomes.append(SyncOutcome(schedule_id, "created"))
        except ScheduleAlreadyRunningError:

            def _replace(current: ScheduleUpdateInput, new: Schedule = schedule) -> ScheduleUpdate:
                # Keep what a person set at run time (paused, note) across a sync.
                new.state = current.description.schedule.state
                return ScheduleUpdate(schedule=new)

            await client.get_schedule_handle(schedule_id).update(_replace)
            outcomes.append(SyncOutcome(schedule_id, "updated"))
    return outcomes
