"""Durable scheduling on the real dev server: schedules, retries with jitter, the quarantine.

Faults come from the replay server (real HTTP 500s, a real malformed document);
requeue and resolve go through the real ``temporal`` CLI and the project's CLI.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.types import QuarantineState, ScrapeSourceResult
from advisories.schedule_spec import PROCESS_DLQ_SCHEDULE
from advisories.settings import Settings
from advisories.sources import US_STATE_DEPT
from replay import FaultRule
from replay.server import ReplayServer
from starter.schedules import all_schedules, scrape_input, sync_schedules
from tests.conftest import make_settings, temporal_cli
from tests.integration.helpers import (
    cli_env,
    replay_settings,
    run_cli,
    running_worker,
    unique,
    wait_for_workflow,
)
from workflows import ScrapeSourceWorkflow

pytestmark = pytest.mark.integration
FEED_PATH = "/_res/rss/TAsTWs.xml"


@pytest.fixture
def healed(replay_server: ReplayServer) -> Iterator[ReplayServer]:
    """The replay server, with faults and overrides cleared after the test."""
    yield replay_server
    replay_server.clear_faults()
    replay_server.clear_overrides()


def feed_answers(replay: ReplayServer, status: int) -> None:
    """From now on the US feed answers ``status``."""
    replay.set_faults(
        FaultRule(source="us_state_dept", path_prefix=FEED_PATH, kind="status", status=status)
    )


@pytest.fixture
def settings(database_url: str, healed: ReplayServer) -> Settings:
    """Fast retries (from 1 s, doubling, at most 4 s; three attempts) from the replay server."""
    return replay_settings(
        database_url,
        healed,
        retry_initial_seconds=1.0,
        retry_maximum_seconds=4.0,
        retry_maximum_attempts=3,
    )


@pytest.fixture
async def worker(
    temporal_env: WorkflowEnvironment, settings: Settings, conn: asyncpg.Connection
) -> AsyncIterator[None]:
    """The project's workers, running for the whole test, with rate limits open."""
    async with running_worker(temporal_env.client, settings):
        await open_limits(conn)
        yield


async def open_limits(conn: asyncpg.Connection) -> None:
    """Rate limits on (so every request is logged with its time) but never binding."""
    await conn.execute(
        "UPDATE rate_limits SET requests_per_hour = 1000000, burst_limit = 1000000,"
        " min_delay_seconds = 0, respectful_factor = 1, enabled = true"
    )


async def start_cycle(
    client: Client, settings: Settings, suffix: str
) -> WorkflowHandle[Any, ScrapeSourceResult]:
    return await client.start_workflow(
        ScrapeSourceWorkflow.run,
        scrape_input(US_STATE_DEPT, settings),
        id=f"test-scrape-us-{suffix}",
        task_queue=US_STATE_DEPT.priority.task_queue,
    )


def index_quarantine_id(cycle: WorkflowHandle) -> str:
    """The id of the quarantine a cycle's failed index starts: named by the cycle's run."""
    return f"quarantine-us_state_dept-index-{cycle.first_execution_run_id}"


async def quarantine_of(client: Client, cycle: WorkflowHandle, kind: str) -> WorkflowHandle:
    """The running quarantine of ``cycle``'s index (never another test's)."""
    return await wait_for_workflow(
        client,
        f"WorkflowId = '{index_quarantine_id(cycle)}' AND ExecutionStatus = 'Running'"
        f" AND AdvisorySource = 'us_state_dept' AND FailureKind = '{kind}'",
    )


async def test_schedules_sync_is_idempotent_follows_config_and_keeps_pause(
    temporal_env: WorkflowEnvironment, schedules_removed: None
) -> None:
    client = temporal_env.client
    settings = make_settings()
    await sync_schedules(client, settings)
    again = await sync_schedules(client, settings)
    assert (
        {o.schedule_id for o in again}
        == set(all_schedules(settings))
        >= {
            "scrape-us_state_dept",
            "scrape-uk_foreign_office",
            "scrape-canada_travel",
            PROCESS_DLQ_SCHEDULE,
        }
    )
    assert {o.action for o in again} == {"updated"}
    canada = await client.get_schedule_handle("scrape-canada_travel").describe()
    assert canada.schedule.spec.intervals[0].every == timedelta(hours=12)
    assert canada.schedule.policy.overlap.name == "SKIP"

    await client.get_schedule_handle("scrape-canada_travel").pause(note="by the test")
    changed = make_settings(
        schedule_overrides={"scrape-us_state_dept": "30m", PROCESS_DLQ_SCHEDULE: "15 * * * *"}
    )
    await sync_schedules(client, changed)
    us = await client.get_schedule_handle("scrape-us_state_dept").describe()
    assert us.schedule.spec.intervals[0].every == timedelta(minutes=30)
    dlq = await client.get_schedule_handle(PROCESS_DLQ_SCHEDULE).describe()
    assert dlq.schedule.spec.intervals == [] and dlq.schedule.spec.calendars
    canada = await client.get_schedule_handle("scrape-canada_travel").describe()
    assert canada.schedule.state.paused


async def test_server_errors_retry_with_growing_jittered_delays_then_quarantine_and_requeue(
    temporal_env: WorkflowEnvironment,
    settings: Settings,
    healed: ReplayServer,
    conn: asyncpg.Connection,
    worker: None,
) -> None:
    client = temporal_env.client
    feed_answers(healed, 500)
    cycle = await start_cycle(client, settings, "500")
    with pytest.raises(WorkflowFailureError):
        await cycle.result()
    quarantine = await quarantine_of(client, cycle, "http_5xx")
    state = await quarantine.query("state")
    assert state["status"] == "open"
    assert state["failure"]["attempts"] == 3
    assert state["failure"]["http_status"] == 500

    times = [
        r["requested_at"]
        for r in await conn.fetch(
            "SELECT requested_at FROM source_requests"
            " WHERE source = 'us_state_dept' AND kind = 'index' ORDER BY requested_at"
        )
    ]
    assert len(times) == 3
    first, second = ((b - a).total_seconds() for a, b in itertools.pairwise(times))
    # 1 s then 2 s, each ±20 % jitter (plus scheduling overhead).
    assert 0.75 <= first <= 1.9, first
    assert 1.55 <= second <= 3.2, second
    assert second > first
    mirrored = await conn.fetchrow(
        "SELECT status, failure_kind, attempts FROM dead_letter_jobs WHERE workflow_id = $1",
        quarantine.id,
    )
    assert mirrored is not None and tuple(mirrored) == ("open", "http_5xx", 3)

    # Healthy again: the plain temporal CLI requeues it, the rerun succeeds.
    healed.clear_faults()
    address = client.service_client.config.target_host
    signal = await asyncio.to_thread(
        subprocess.run,
        [temporal_cli(), "workflow", "signal", "--address", address,
         "--workflow-id", quarantine.id, "--name", "requeue"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert signal.returncode == 0, signal.stderr
    final = await client.get_workflow_handle(quarantine.id, result_type=QuarantineState).result()
    assert final.status == "recovered" and final.requeue_count == 1
    assert await conn.fetchval("SELECT count(*) FROM advisories") == 213
    assert (
        await conn.fetchval(
            "SELECT status FROM dead_letter_jobs WHERE workflow_id = $1", quarantine.id
        )
        == "recovered"
    )


async def test_parse_error_goes_straight_to_quarantine_and_resolves_with_a_note(
    temporal_env: WorkflowEnvironment,
    database_url: str,
    settings: Settings,
    healed: ReplayServer,
    conn: asyncpg.Connection,
    worker: None,
) -> None:
    client = temporal_env.client
    healed.put("us_state_dept", FEED_PATH, b"<html><body>Maintenance</body></html>")
    cycle = await start_cycle(client, settings, "parse")
    with pytest.raises(WorkflowFailureError):
        await cycle.result()
    quarantine = await quarantine_of(client, cycle, "parse")
    state = await quarantine.query("state")
    assert state["failure"]["attempts"] == 1
    assert "rss" in state["failure"]["message"].lower()
    requests = await conn.fetchval("SELECT count(*) FROM source_requests WHERE kind = 'index'")
    assert requests == 1  # no retry of a malformed document

    env = cli_env(client, database_url)
    listed = await asyncio.to_thread(run_cli, "dead-letters", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert quarantine.id in listed.stdout
    bad = await asyncio.to_thread(run_cli, "resolve", "quarantine-x", "--note", "n", env=env)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    done = await asyncio.to_thread(
        run_cli, "resolve", quarantine.id, "--note", "feed restored upstream", env=env
    )
    assert done.returncode == 0, done.stderr
    final = await client.get_workflow_handle(quarantine.id, result_type=QuarantineState).result()
    assert final.status == "resolved" and final.note == "feed restored upstream"
    row = await conn.fetchrow(
        "SELECT status, note FROM dead_letter_jobs WHERE workflow_id = $1", quarantine.id
    )
    assert row is not None and tuple(row) == ("resolved", "feed restored upstream")
    assert await conn.fetchval("SELECT count(*) FROM advisories") == 0


async def test_process_dlq_requeues_recoverable_quarantines_once_the_source_is_healthy(
    temporal_env: WorkflowEnvironment,
    database_url: str,
    settings: Settings,
    healed: ReplayServer,
    worker: None,
) -> None:
    client = temporal_env.client
    env = cli_env(client, database_url)
    feed_answers(healed, 503)
    cycle = await start_cycle(client, settings, "dlq-1")
    with pytest.raises(WorkflowFailureError):
        await cycle.result()
    quarantine = await quarantine_of(client, cycle, "http_5xx")

    # Still failing: the source is not healthy, nothing is requeued.
    skipped = await asyncio.to_thread(run_cli, "process-dlq", env=env)
    assert skipped.returncode == 0, skipped.stderr
    assert "requeued 0" in skipped.stdout

    healed.clear_faults()
    ok = await (await start_cycle(client, settings, "dlq-2")).result()
    assert ok.items_seen == 213
    done = await asyncio.to_thread(run_cli, "process-dlq", env=env)
    assert done.returncode == 0, done.stderr
    assert "requeued 1" in done.stdout and quarantine.id in done.stdout
    final = await client.get_workflow_handle(quarantine.id, result_type=QuarantineState).result()
    assert final.status == "recovered"


async def test_every_failed_index_gets_a_quarantine_of_its_own(
    temporal_env: WorkflowEnvironment,
    settings: Settings,
    healed: ReplayServer,
    conn: asyncpg.Connection,
    worker: None,
) -> None:
    """Two cycles of one source whose index fails a few seconds apart: two quarantines.

    Run ids are UUIDv7, a timestamp first: quarantine ids that took the first 8 digits of
    the run id were the same for every run started within ~65 s, and the second
    quarantine was never started (nor mirrored, nor counted).
    """
    client = temporal_env.client
    feed_answers(healed, 404)
    try:
        cycles = []
        for n in range(2):
            cycle = await start_cycle(client, settings, unique(f"twice-{n}"))
            with pytest.raises(WorkflowFailureError):
                await cycle.result()
            cycles.append(cycle)
        # Each quarantine mirrors itself first thing, in this test's own database.
        for _ in range(300):
            rows = await conn.fetch("SELECT workflow_id, status FROM dead_letter_jobs")
            if len(rows) >= 2:
                break
            await asyncio.sleep(0.2)
        assert {(r["workflow_id"], r["status"]) for r in rows} == {
            (index_quarantine_id(c), "open") for c in cycles
        }
    finally:
        # They wait for a person: end them so no later test lists them.
        for row in await conn.fetch("SELECT workflow_id FROM dead_letter_jobs"):
            await client.get_workflow_handle(row["workflow_id"]).terminate("test over")
