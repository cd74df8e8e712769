"""Temporal schedules: built from the source registry and settings, synced idempotently."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

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

from activities.types import ScrapeSourceInput
from advisories.queues import MAINTENANCE
from advisories.schedule_spec import Timing, parse_timing
from advisories.settings import Settings
from advisories.sources import SOURCES, SourceSpec
from workflows import DeadLetterProcessingWorkflow, ScrapeSourceWorkflow
from workflows.maintenance import ProcessDeadLettersInput

PROCESS_DLQ_SCHEDULE = "process-dlq"


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """What syncing one schedule did: ``created`` or ``updated``."""

    schedule_id: str
    action: str


def _timing(schedule_id: str, default: timedelta, settings: Settings) -> Timing:
    override = settings.schedule_overrides.get(schedule_id)
    return parse_timing(override) if override else Timing(every=default)


def _spec(timing: Timing, settings: Settings) -> ScheduleSpec:
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


def scrape_schedule(spec: SourceSpec, settings: Settings) -> Schedule:
    """The schedule that scrapes ``spec`` at its priority's interval (or the override)."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ScrapeSourceWorkflow.run,
            scrape_input(spec, settings),
            id=spec.schedule_id,
            task_queue=spec.priority.task_queue,
        ),
        spec=_spec(_timing(spec.schedule_id, spec.priority.interval, settings), settings),
        policy=_policy(settings),
    )


def process_dlq_schedule(settings: Settings) -> Schedule:
    """Hourly automatic requeue of recoverable dead letters."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            DeadLetterProcessingWorkflow.run,
            ProcessDeadLettersInput(),
            id=PROCESS_DLQ_SCHEDULE,
            task_queue=MAINTENANCE,
        ),
        spec=_spec(_timing(PROCESS_DLQ_SCHEDULE, timedelta(hours=1), settings), settings),
        policy=_policy(settings),
    )


def all_schedules(settings: Settings) -> dict[str, Schedule]:
    """Every schedule the project owns, by id."""
    schedules = {spec.schedule_id: scrape_schedule(spec, settings) for spec in SOURCES.values()}
    schedules[PROCESS_DLQ_SCHEDULE] = process_dlq_schedule(settings)
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
