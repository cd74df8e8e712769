"""The service keeps answering while a real crawl writes, and shows the crawl once it is done."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from replay.server import ReplayServer
from tests.conftest import make_settings
from tests.integration.api.conftest import start_api
from tests.integration.api.helpers import wait_until
from tests.integration.helpers import crawl, running_worker

pytestmark = pytest.mark.integration


async def test_answers_during_a_crawl_and_then_shows_it(
    temporal_env: WorkflowEnvironment,
    database_url: str,
    served: tuple[ReplayServer, Path],
    tmp_path: Path,
) -> None:
    server, _ = served
    settings = make_settings(
        database_url=database_url, replay_base_url=server.base_url, rate_limits_enabled=False
    )
    statuses: collections.Counter[int] = collections.Counter()
    sizes: list[int] = []
    with start_api(database_url, log_dir=tmp_path) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
            done = asyncio.Event()

            async def read_while_crawling() -> None:
                while not done.is_set():
                    for path in ("/v1/advisories", "/v1/countries/FR", "/v1/changes?limit=5"):
                        response = await http.get(path)
                        statuses[response.status_code] += 1
                        if path == "/v1/advisories" and response.status_code == 200:
                            sizes.append(len(response.json()["advisories"]))

            reader = asyncio.create_task(read_while_crawling())
            try:
                async with running_worker(temporal_env.client, settings):
                    await crawl(temporal_env.client, settings, "api-live")
            finally:
                done.set()
                await reader
            conn = await asyncpg.connect(database_url)
            try:
                stored = int(await conn.fetchval("SELECT count(*) FROM advisories"))
            finally:
                await conn.close()

            async def complete() -> int | None:
                response = await http.get("/v1/advisories")
                count = len(response.json()["advisories"])
                return count if count == stored else None

            assert await wait_until(complete, within=10) == stored
    # Every answer during the crawl was a success (FR is a 404 until a source stored it).
    assert set(statuses) <= {200, 404}, statuses
    assert sum(statuses.values()) > 10
    # The list grew as the crawl stored sources, never shrank.
    assert sizes == sorted(sizes) and sizes[0] < stored
