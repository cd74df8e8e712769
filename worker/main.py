"""The worker: one pool, one HTTP client, one client, one ``Worker`` per task queue.

One client serves every queue's ``Worker`` (their queues differ; only two Workers of one
queue in one process would need a client each). Each client is a connection of its own in
the Temporal core: one instead of six saves memory and server work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.worker import Worker

from activities.cleanup import CleanupActivities
from activities.health import HealthActivities
from activities.http import SourceHttpClient
from activities.quarantine import QuarantineActivities
from activities.reports import ReportActivities, temporal_backlog_probe
from activities.scrape import ScrapeActivities
from advisories.health import HealthSettings
from advisories.queues import ALL_QUEUES
from advisories.settings import Settings
from store.pool import create_pool
from store.ratelimits import RateLimitStore
from worker.client import connect
from worker.heartbeat import WorkerHeartbeat
from worker.telemetry import metrics_bind_address, runtime_with_prometheus
from workflows import ALL_WORKFLOWS

log = logging.getLogger("worker")


@dataclass(frozen=True, slots=True)
class Activities:
    """The activity instances of one worker process, shared by its task queues."""

    scrape: ScrapeActivities
    quarantine: QuarantineActivities
    health: HealthActivities
    reports: ReportActivities
    cleanup: CleanupActivities

    def all(self) -> list[Callable[..., Any]]:
        """Every activity callable, for ``Worker(activities=...)``."""
        return [
            self.scrape.fetch_index,
            self.scrape.scrape_countries,
            self.scrape.scrape_country,
            self.scrape.finish_cycle,
            self.scrape.set_job_status,
            self.scrape.followup_targets,
            self.quarantine.mirror_quarantine,
            self.quarantine.recoverable_dead_letters,
            self.health.collect_metrics,
            self.health.run_health_checks,
            self.health.queue_change_notifications,
            self.health.deliver_webhooks,
            self.reports.generate_report,
            self.cleanup.cleanup,
        ]


async def build_activities(
    *,
    settings: Settings,
    pool: asyncpg.Pool,
    http: SourceHttpClient,
    client: Client | None = None,
    health: HealthSettings | None = None,
) -> Activities:
    """Construct the activity classes (and seed the rate-limit defaults).

    ``client`` lets health checks and reports read Temporal's task-queue stats.
    """
    limiter = RateLimitStore(pool)
    await limiter.ensure_defaults()
    return Activities(
        scrape=ScrapeActivities(settings=settings, pool=pool, http=http, limiter=limiter),
        quarantine=QuarantineActivities(pool),
        health=HealthActivities(
            pool=pool, client=client, settings=settings, health=health or HealthSettings()
        ),
        reports=ReportActivities(
            pool, backlog=temporal_backlog_probe(client) if client is not None else None
        ),
        cleanup=CleanupActivities(pool),
    )


def build_worker(client: Client, queue: str, activities: Activities, settings: Settings) -> Worker:
    """The ``Worker`` of one task queue: every workflow, every activity."""
    return Worker(
        client,
        task_queue=queue,
        workflows=ALL_WORKFLOWS,
        activities=activities.all(),
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        max_concurrent_workflow_task_polls=settings.worker_task_polls,
        max_concurrent_activity_task_polls=settings.worker_task_polls,
    )


async def build_workers(
    client: Client,
    *,
    settings: Settings,
    pool: asyncpg.Pool,
    http: SourceHttpClient,
    queues: Sequence[str] = ALL_QUEUES,
    health: HealthSettings | None = None,
) -> list[Worker]:
    """Workers for ``queues`` sharing one client and one set of activities."""
    activities = await build_activities(
        settings=settings, pool=pool, http=http, client=client, health=health
    )
    return [build_worker(client, queue, activities, settings) for queue in queues]


async def run(
    settings: Settings, *, queues: Sequence[str], health: HealthSettings | None = None
) -> None:
    """Run workers on ``queues`` until SIGINT/SIGTERM, then drain and close."""
    pool = await create_pool(
        settings.database_url.get_secret_value(), max_size=settings.database_pool_size
    )
    http = SourceHttpClient(settings)
    try:
        runtime = runtime_with_prometheus(metrics_bind_address())
        workers = await build_workers(
            await connect(settings, runtime=runtime),
            settings=settings,
            pool=pool,
            http=http,
            queues=queues,
            health=health,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        log.info("worker polling %s on %s", ", ".join(queues), settings.temporal_address)
        # Memory and liveness for `health` and `worker status`, every 30 s.
        heartbeat = asyncio.create_task(WorkerHeartbeat(pool, queues=queues).run())
        try:
            async with contextlib.AsyncExitStack() as stack:
                for worker in workers:
                    await stack.enter_async_context(worker)
                await stop.wait()
                log.info("shutting down: finishing running activities")
        finally:
            # Records the clean stop: health sees this worker gone at once.
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
    finally:
        await http.aclose()
        await pool.close()
