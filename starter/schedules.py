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
from advisories.settings import Settings
from advisories.sources import SOURCES, SourceSpec
from workflows import ScrapeSourceWorkflow


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """What syncing one schedule did: ``created`` or ``updated``."""

    schedule_id: str
    action: str


def scrape_schedule(spec: SourceSpec, settings: Settings) -> Schedule:
    """The schedule that scrapes ``spec`` at its priority's interval."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ScrapeSourceWorkflow.run,
            ScrapeSourceInput(source=spec.id, retry=settings.retry_config()),
            id=spec.schedule_id,
            task_queue=spec.priority.task_queue,
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=spec.priority.interval)],
            jitter=timedelta(seconds=settings.schedule_jitter_seconds),
        ),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.SKIP,
            catchup_window=timedelta(seconds=settings.schedule_catchup_window_seconds),
        ),
    )


def all_schedules(settings: Settings) -> dict[str, Schedule]:
    """Every schedule the project owns, by id."""
    return {spec.schedule_id: scrape_schedule(spec, settings) for spec in SOURCES.values()}


async def sync_schedules(client: Client, settings: Settings) -> list[SyncOutcome]:
    """Create each schedule, or update it to the current configuration."""
    outcomes: list[SyncOutcome] = []
    for schedule_id, schedule in all_schedules(settings).items():
        try:
            await client.create_schedule(schedule_id, schedule)
            outcomes.append(SyncOutcome(schedule_id, "created"))
        except ScheduleAlreadyRunningError:

            def _replace(_: ScheduleUpdateInput, new: Schedule = schedule) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=new)

            await client.get_schedule_handle(schedule_id).update(_replace)
            outcomes.append(SyncOutcome(schedule_id, "updated"))
    return outcomes
