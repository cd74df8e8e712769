"""Helpers shared by the integration tests: an in-process worker, the CLI as a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.plugin import SimplePlugin
from temporalio.worker import Worker, WorkerConfig

from activities.http import SourceHttpClient
from activities.types import ScrapeSourceResult
from advisories.queues import ALL_QUEUES
from advisories.settings import Settings
from advisories.sources import SOURCES, get_source
from replay.server import ReplayServer
from starter.schedules import scrape_input
from store.pool import create_pool
from tests.conftest import make_settings
from worker.main import build_workers
from workflows import ScrapeSourceWorkflow

REPO = Path(__file__).resolve().parents[2]


def unique(prefix: str) -> str:
    """``prefix`` and 8 random hex digits: a task queue, worker identity or id of one test."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def replay_settings(database_url: str, server: ReplayServer, **overrides: Any) -> Settings:
    """:func:`~tests.conftest.make_settings` for crawling ``server`` into ``database_url``."""
    return make_settings(database_url=database_url, replay_base_url=server.base_url, **overrides)


def cli_env(client: Client, database_url: str) -> dict[str, str]:
    """The CLI's environment: this test's database and the dev server ``client`` talks to."""
    return {
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
    }


class _WorkflowCacheSize(SimplePlugin):
    """Sets ``max_cached_workflows`` of every ``Worker`` built on a client carrying it."""

    def __init__(self, size: int) -> None:
        super().__init__(f"advisory-tests.max-cached-workflows-{size}")
        self._size = size

    def configure_worker(self, config: WorkerConfig) -> WorkerConfig:
        config = super().configure_worker(config)
        config["max_cached_workflows"] = self._size
        return config


@contextlib.asynccontextmanager
async def running_worker(
    client: Client,
    settings: Settings,
    *,
    queues: Sequence[str] = ALL_QUEUES,
    max_cached_workflows: int | None = None,
) -> AsyncIterator[list[Worker]]:
    """The project's own workers on ``queues``, in this process, until the block ends.

    They are ``worker.main.build_workers``'s, on ``client`` (its interceptors and runtime
    are theirs: tracing, a metrics endpoint), with the worker process's pool and HTTP
    client. ``max_cached_workflows=0`` keeps no workflow in their cache, so every
    workflow task replays its run's history from the start.
    """
    if max_cached_workflows is not None:
        # build_workers has no cache option: a client plugin sets it on the workers built
        # on this client (the same connection, interceptors and runtime).
        config = client.config()
        config["plugins"] = [*config["plugins"], _WorkflowCacheSize(max_cached_workflows)]
        client = Client(**config)
    pool = await create_pool(settings.database_url.get_secret_value())
    http = SourceHttpClient(settings)
    try:
        workers = await build_workers(
            client, settings=settings, pool=pool, http=http, queues=queues
        )
        async with contextlib.AsyncExitStack() as stack:
            for worker in workers:
                await stack.enter_async_context(worker)
            yield workers
    finally:
        await http.aclose()
        await pool.close()


async def crawl(client: Client, settings: Settings, tag: str) -> dict[str, ScrapeSourceResult]:
    """One cycle of every source, at once, as the schedules would start them."""

    async def one(source: str) -> ScrapeSourceResult:
        spec = get_source(source)
        return await client.execute_workflow(
            ScrapeSourceWorkflow.run,
            scrape_input(spec, settings),
            id=f"test-{tag}-{source}-{uuid.uuid4().hex[:8]}",
            task_queue=spec.priority.task_queue,
        )

    results = await asyncio.gather(*(one(s) for s in SOURCES))
    return {r.source: r for r in results}


def run_cli(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m starter ARGS`` with ``env`` added to the environment."""
    return subprocess.run(
        [sys.executable, "-m", "starter", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


async def wait_for_workflow(client: Client, query: str, *, within: float = 60.0) -> WorkflowHandle:
    """The first workflow matching a visibility ``query`` (polls until one appears)."""
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        async for wf in client.list_workflows(query):
            return client.get_workflow_handle(wf.id, run_id=wf.run_id)
        await asyncio.sleep(0.2)
    raise AssertionError(f"no workflow matches {query!r} within {within} s")
