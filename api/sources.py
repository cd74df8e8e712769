"""The ``/v1/sources`` view: each source's schedule, freshness, dead letters and health."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from advisories.health import HealthSettings, check_freshness
from advisories.schedule_spec import scrape_intervals
from advisories.settings import Settings
from advisories.sources import get_source, source_ids
from api.models import FreshnessOut, HealthCheckOut, ScheduleOut, SourceOut, SourcesOut
from store.read import ReadStore, Snapshot

__all__ = ["SUCCESS_WINDOW", "sources_out"]

#: Window of the sources' success rates.
SUCCESS_WINDOW: Final = timedelta(hours=24)


async def sources_out(
    store: ReadStore, snapshot: Snapshot, settings: Settings, health: HealthSettings
) -> SourcesOut:
    from starter.schedules import scrape_schedule  # imports Temporal's client: only here

    intervals = scrape_intervals(settings.schedule_overrides)
    now, metrics, checks = await store.source_metrics(window=SUCCESS_WINDOW, intervals=intervals)
    thresholds = health.thresholds()
    counts: dict[str, int] = {}
    for row in snapshot.advisories:
        counts[row.source] = counts.get(row.source, 0) + 1
    out = []
    for source_id in source_ids():
        spec = get_source(source_id)
        m = metrics[source_id]
        fresh = check_freshness(m, thresholds, now=now)
        spec_schedule = scrape_schedule(spec, settings).spec
        every = spec_schedule.intervals[0].every if spec_schedule.intervals else None
        last = datetime.fromisoformat(m.last_success_at) if m.last_success_at else None
        out.append(
            SourceOut(
                id=spec.id,
                name=spec.name,
                priority=spec.priority.value,
                task_queue=spec.priority.task_queue,
                schedule=ScheduleOut(
                    schedule_id=spec.schedule_id,
                    every_seconds=None if every is None else every.total_seconds(),
                    cron=spec_schedule.cron_expressions[0]
                    if spec_schedule.cron_expressions
                    else None,
                    jitter_seconds=(spec_schedule.jitter or timedelta()).total_seconds(),
                ),
                last_success_at=last,
                freshness=FreshnessOut(
                    age_seconds=None if last is None else round((now - last).total_seconds(), 1),
                    limit_seconds=round(thresholds.freshness_factor * m.interval_seconds, 1),
                    stale=not fresh.ok,
                ),
                dead_letters_open=m.dead_letters_open,
                advisories=counts.get(source_id, 0),
                success_rate_24h=m.success_rate,
                fetches_finished_24h=m.fetches_finished,
                health=[
                    HealthCheckOut(
                        name=c.name,
                        ok=c.ok,
                        value=c.value,
                        threshold=c.threshold,
                        detail=c.detail,
                        checked_at=c.checked_at,
                    )
                    for c in checks
                    if c.source == source_id
                ],
            )
        )
    return SourcesOut(sources=out)
