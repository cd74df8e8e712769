"""High-priority sources are not held up by a regular source's backlog (real dev server).

The worker gets ONE activity slot per task queue and the regular source (Canada) answers
slowly, one document at a time: one of its four batches holds the ``scraping`` queue's slot
for 15 s and the other three wait in Temporal's queue behind it (45 s more at least). A
high-priority cycle (UK) started then must finish while that backlog is still waiting;
only then are Canada's documents made fast again and its cycle is let finish.

What gives UK precedence is its own task queue, whose ``Worker`` has a slot of its own. With
both sources on ``scraping`` this test fails: with one priority key UK's index waits behind
the whole backlog; with keys 1 and 3 the index goes first, but between two of UK's
activities the freed slot is taken by a Canada batch, which UK then waits 15 s for.

The catalogue is the SYNTHETIC one of ``tests/conftest.py`` (20 UK, 20 Canada countries).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.types import ScrapeSourceInput, ScrapeSourceResult
from advisories.sources import CANADA_TRAVEL, UK_FOREIGN_OFFICE, Priority, SourceSpec
from replay import FaultRule
from replay.server import ReplayServer
from starter.schedules import scrape_input
from tests.conftest import make_settings
from tests.integration.helpers import running_worker
from workflows import ScrapeSourceWorkflow

pytestmark = pytest.mark.integration

#: Added to every Canada document request (not its index): with one document at a time
#: a batch of 5 countries holds the slot >= 15 s, and the 3 batches behind it >= 45 s more.
SLOW_DOCUMENT_MS = 3000
#: The high-priority cycle takes a few seconds; this is far below the backlog's 45 s.
HIGH_CYCLE_WITHIN = 30.0


async def country_jobs(conn: asyncpg.Connection, source: str) -> dict[str, int]:
    """The source's country jobs by status."""
    rows = await conn.fetch(
        "SELECT status, count(*) FROM scrape_jobs WHERE source = $1 AND kind = 'country'"
        " GROUP BY 1",
        source,
    )
    return {r[0]: r[1] for r in rows}


async def batch_started(conn: asyncpg.Connection, source: str, *, within: float) -> dict[str, int]:
    """The source's country jobs by status, once one of its batches has started."""
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        jobs = await country_jobs(conn, source)
        if jobs.get("started", 0):
            return jobs
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {source} batch started within {within} s")


async def stored(conn: asyncpg.Connection, source: str) -> int:
    """How many of the source's advisories are stored."""
    return int(await conn.fetchval("SELECT count(*) FROM advisories WHERE source = $1", source))


async def started_cycle(
    env: WorkflowEnvironment, spec: SourceSpec, inp: ScrapeSourceInput
) -> WorkflowHandle[ScrapeSourceWorkflow, ScrapeSourceResult]:
    """Start one cycle of ``spec`` on its priority's task queue, as its schedule does."""
    return await env.client.start_workflow(
        ScrapeSourceWorkflow.run,
        inp,
        id=f"test-priority-{spec.id}-{uuid.uuid4().hex[:8]}",
        task_queue=spec.priority.task_queue,
    )


async def test_high_priority_cycle_completes_while_the_regular_backlog_waits(
    temporal_env: WorkflowEnvironment, database_url: str, served: tuple[ReplayServer, Path]
) -> None:
    assert UK_FOREIGN_OFFICE.priority is Priority.HIGH
    assert CANADA_TRAVEL.priority is Priority.REGULAR
    server, _ = served
    settings = make_settings(
        database_url=database_url,
        replay_base_url=server.base_url,
        rate_limits_enabled=False,
        http_timeout_seconds=30.0,
        worker_max_concurrent_activities=1,
    )
    server.set_faults(
        FaultRule(
            source=CANADA_TRAVEL.id,
            path_prefix="/travel-voyage/cta-cap-",
            latency_ms=SLOW_DOCUMENT_MS,
        )
    )
    handles: list[WorkflowHandle[ScrapeSourceWorkflow, ScrapeSourceResult]] = []
    conn = await asyncpg.connect(database_url)
    try:
        async with running_worker(temporal_env.client, settings):
            regular = await started_cycle(
                temporal_env,
                CANADA_TRAVEL,
                replace(scrape_input(CANADA_TRAVEL, settings), batch_concurrency=1),
            )
            handles.append(regular)
            # The backlog: Canada's first batch has the slot, the others wait for it.
            before = await batch_started(conn, CANADA_TRAVEL.id, within=30.0)
            assert before.get("pending", 0) > 0, before

            high = await started_cycle(
                temporal_env, UK_FOREIGN_OFFICE, scrape_input(UK_FOREIGN_OFFICE, settings)
            )
            handles.append(high)
            loop = asyncio.get_running_loop()
            began = loop.time()
            try:
                async with asyncio.timeout(HIGH_CYCLE_WITHIN):
                    result = await high.result()
            except TimeoutError:
                pytest.fail(
                    f"the high-priority cycle did not finish within {HIGH_CYCLE_WITHIN} s"
                    f" behind the regular backlog; Canada's jobs then:"
                    f" {await country_jobs(conn, CANADA_TRAVEL.id)}"
                )
            took = loop.time() - began
            # The moment the high-priority cycle is done, the regular one is still queued.
            regular_jobs = await country_jobs(conn, CANADA_TRAVEL.id)
            regular_stored = await stored(conn, CANADA_TRAVEL.id)
            regular_status = (await regular.describe()).status

            assert result.countries_planned == result.countries_stored == 20
            assert await stored(conn, UK_FOREIGN_OFFICE.id) == 20
            assert regular_status == WorkflowExecutionStatus.RUNNING, (took, regular_jobs)
            # Countries whose batch never got the slot: their activity still waits in Temporal.
            assert regular_jobs.get("pending", 0) > 0, (took, regular_jobs)
            assert regular_stored < 20, (took, regular_jobs)

            # Healed, the regular cycle finishes too: it was held back, never lost.
            server.clear_faults()
            done = await regular.result()
            assert done.countries_planned == done.countries_stored == 20
            assert await stored(conn, CANADA_TRAVEL.id) == 20
    finally:
        for handle in handles:
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("test over")
        await conn.close()
