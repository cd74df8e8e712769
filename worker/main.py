"""The worker: one client, one pool, one HTTP client, one ``Worker`` per task queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence

import asyncpg
from temporalio.client import Client
from temporalio.worker import Worker

from activities.http import SourceHttpClient
from activities.scrape import ScrapeActivities
from activities.store import create_pool
from advisories.queues import ALL_QUEUES
from advisories.settings import Settings
from workflows import ALL_WORKFLOWS

log = logging.getLogger("worker")


def build_workers(
    client: Client,
    *,
    settings: Settings,
    pool: asyncpg.Pool,
    http: SourceHttpClient,
    queues: Sequence[str] = ALL_QUEUES,
) -> list[Worker]:
    """One ``Worker`` per task queue, all sharing the activity instances."""
    scrape = ScrapeActivities(settings=settings, pool=pool, http=http)
    activities = [scrape.scrape_index]
    return [
        Worker(
            client,
            task_queue=queue,
            workflows=ALL_WORKFLOWS,
            activities=activities,
            max_concurrent_activities=settings.worker_max_concurrent_activities,
        )
        for queue in queues
    ]


async def run(settings: Settings, *, queues: Sequence[str], client: Client) -> None:
    """Run workers on ``queues`` until SIGINT/SIGTERM, then drain and close."""
    pool = await create_pool(
        settings.database_url.get_secret_value(), max_size=settings.database_pool_size
    )
    http = SourceHttpClient(settings)
    workers = build_workers(client, settings=settings, pool=pool, http=http, queues=queues)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    log.info("worker polling %s on %s", ", ".join(queues), settings.temporal_address)
    try:
        async with contextlib.AsyncExitStack() as stack:
            for worker in workers:
                await stack.enter_async_context(worker)
            await stop.wait()
            log.info("shutting down: finishing running activities")
    finally:
        await http.aclose()
        await pool.close()
