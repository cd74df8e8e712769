"""Helpers shared by the integration tests: an in-process worker, the CLI as a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from temporalio.client import Client, WorkflowHandle

from activities.http import SourceHttpClient
from activities.store import create_pool
from advisories.queues import ALL_QUEUES
from advisories.settings import Settings
from worker.main import build_workers

REPO = Path(__file__).resolve().parents[2]


@contextlib.asynccontextmanager
async def running_worker(
    client: Client, settings: Settings, *, queues: Sequence[str] = ALL_QUEUES
) -> AsyncIterator[None]:
    """The project's own workers on ``queues``, in this process, until the block ends."""
    pool = await create_pool(settings.database_url.get_secret_value())
    http = SourceHttpClient(settings)
    try:
        workers = await build_workers(
            client, settings=settings, pool=pool, http=http, queues=queues
        )
        async with contextlib.AsyncExitStack() as stack:
            for worker in workers:
                await stack.enter_async_context(worker)
            yield
    finally:
        await http.aclose()
        await pool.close()


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
