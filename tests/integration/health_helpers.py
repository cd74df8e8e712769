"""Shared by the health and webhook integration tests: a health worker, a crawl, the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.health import HealthActivities
from advisories.health import HealthSettings
from advisories.settings import Settings
from store.pool import create_pool
from tests.integration.helpers import REPO
from worker.heartbeat import WorkerHeartbeat
from workflows.monitoring import HealthWorkflow

# The commands may not be registered in starter.cli yet: register them if missing.
_CLI = (
    "from starter.cli import app, main\n"
    "from starter.monitoring_cli import register\n"
    "if not any(c.name == 'health' for c in app.registered_commands):\n"
    "    register(app)\n"
    "main()\n"
)


def health_settings(**overrides: Any) -> HealthSettings:
    """Health settings for a test: no ``.env`` file."""
    return HealthSettings(_env_file=None, **overrides)  # type: ignore[call-arg]


def run_monitoring_cli(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m starter ARGS`` (with the monitoring commands) in a subprocess."""
    return subprocess.run(
        [sys.executable, "-c", _CLI, *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


async def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """:func:`run_monitoring_cli` off the event loop (the worker keeps polling meanwhile)."""
    return await asyncio.to_thread(run_monitoring_cli, *args, env=env)


@contextlib.asynccontextmanager
async def health_worker(
    client: Client,
    settings: Settings,
    health: HealthSettings,
    *,
    queue: str,
    identity: str,
) -> AsyncIterator[HealthActivities]:
    """A worker polling ``queue`` with the health workflow and activities, and its heartbeat.

    It stops cleanly at the end of the block (its heartbeat records the stop).
    """
    pool = await create_pool(settings.database_url.get_secret_value())
    activities = HealthActivities(pool=pool, client=client, settings=settings, health=health)
    heartbeat = WorkerHeartbeat(pool, queues=[queue], interval_seconds=1.0, identity=identity)
    task = asyncio.create_task(heartbeat.run())
    try:
        worker = Worker(
            client,
            task_queue=queue,
            workflows=[HealthWorkflow],
            activities=[
                activities.collect_metrics,
                activities.run_health_checks,
                activities.queue_change_notifications,
                activities.deliver_webhooks,
            ],
            identity=identity,
        )
        async with worker:
            yield activities
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await pool.close()
