"""End to end on real components: schedule → workflow → activity → HTTP → PostgreSQL.

The real Temporal dev server, a real PostgreSQL and the replay server serving
the real US feed capture; the worker is the project's own ``build_workers``.
"""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from activities.types import ScrapeSourceResult
from replay.server import ReplayServer
from starter.schedules import sync_schedules
from tests.conftest import make_settings
from tests.integration.helpers import run_cli, running_worker

pytestmark = pytest.mark.integration


async def run_scheduled_cycle(
    client: Client, schedule_id: str, seen: set[str]
) -> ScrapeSourceResult:
    """Trigger ``schedule_id`` and wait for the run it starts (one not in ``seen``)."""
    await client.get_schedule_handle(schedule_id).trigger()
    for _ in range(300):
        async for wf in client.list_workflows(f"TemporalScheduledById = '{schedule_id}'"):
            if wf.run_id in seen:
                continue
            seen.add(wf.run_id)
            handle = client.get_workflow_handle(
                wf.id, run_id=wf.run_id, result_type=ScrapeSourceResult
            )
            result = await handle.result()
            desc = await handle.describe()
            assert desc.status == WorkflowExecutionStatus.COMPLETED
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"schedule {schedule_id} started no workflow within 30 s")


async def test_schedule_scrapes_us_feed_into_postgres(
    temporal_env: WorkflowEnvironment,
    database_url: str,
    replay_server: ReplayServer,
    schedules_removed: None,
) -> None:
    client = temporal_env.client
    settings = make_settings(database_url=database_url, replay_base_url=replay_server.base_url)
    conn = await asyncpg.connect(database_url)
    try:
        async with running_worker(client, settings):
            outcomes = await sync_schedules(client, settings)
            assert "scrape-us_state_dept" in {o.schedule_id for o in outcomes}
            desc = await client.get_schedule_handle("scrape-us_state_dept").describe()
            assert desc.schedule.spec.intervals[0].every.total_seconds() == 2 * 3600

            # Runs of this schedule left by earlier tests on the shared dev server are not ours.
            seen = {
                wf.run_id
                async for wf in client.list_workflows(
                    "TemporalScheduledById = 'scrape-us_state_dept'"
                )
            }
            first = await run_scheduled_cycle(client, "scrape-us_state_dept", seen)
            assert not first.not_modified
            # 223 items, 7 countries listed twice: 213 destinations, which are 213 countries.
            assert first.items_seen == 213
            assert first.versions_created == 213
            totals = await conn.fetchrow(
                """
                SELECT (SELECT count(*) FROM advisories WHERE source = 'us_state_dept'),
                       (SELECT count(*) FROM advisory_versions WHERE source = 'us_state_dept'),
                       (SELECT array_agg(DISTINCT level ORDER BY level) FROM advisories)
                """
            )
            assert totals is not None
            count, versions, levels = totals
            assert count == 213
            assert versions == 213
            assert levels == [1, 2, 3, 4]
            sa = await conn.fetchrow(
                "SELECT level, title FROM advisories"
                " WHERE source = 'us_state_dept' AND country = 'SA'"
            )
            assert sa is not None
            assert sa["level"] == 3 and sa["title"].startswith("Saudi Arabia")

            # Same feed again: the replay server answers 304, nothing is stored.
            second = await run_scheduled_cycle(client, "scrape-us_state_dept", seen)
            assert second.not_modified
            assert second.versions_created == 0

            # Without validators the feed is fetched and parsed again: still no new versions.
            await conn.execute("DELETE FROM source_documents")
            third = await run_scheduled_cycle(client, "scrape-us_state_dept", seen)
            assert not third.not_modified
            assert third.items_seen == 213
            assert third.versions_created == 0
            assert await conn.fetchval("SELECT count(*) FROM advisory_versions") == 213

        jobs = await conn.fetch(
            "SELECT status, http_status, items_seen, versions_created FROM scrape_jobs"
            " WHERE kind = 'index' ORDER BY id"
        )
        assert [(j["status"], j["http_status"]) for j in jobs] == [
            ("success", 200),
            ("success", 304),
            ("success", 200),
        ]
        assert [j["versions_created"] for j in jobs] == [213, 0, 0]
    finally:
        await conn.close()


async def test_cli_schedule_wait_then_lists_advisories_and_jobs(
    temporal_env: WorkflowEnvironment, database_url: str, replay_server: ReplayServer
) -> None:
    client = temporal_env.client
    address = client.service_client.config.target_host
    settings = make_settings(database_url=database_url, replay_base_url=replay_server.base_url)
    env = {"DATABASE_URL": database_url, "TEMPORAL_ADDRESS": address}
    async with running_worker(client, settings):
        run = await asyncio.to_thread(
            run_cli, "schedule", "--source", "us_state_dept", "--wait", env=env
        )
    assert run.returncode == 0, run.stderr
    assert "213 countries" in run.stdout

    listed = await asyncio.to_thread(
        run_cli, "advisories", "--source", "us_state_dept", "--json", env=env
    )
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert len(rows) == 213
    assert {"source", "country", "level", "title", "source_updated_at"} <= set(rows[0])
    assert {r["level"] for r in rows} == {1, 2, 3, 4}

    jobs = await asyncio.to_thread(run_cli, "jobs", "--limit", "5", "--json", env=env)
    assert jobs.returncode == 0, jobs.stderr
    listed_jobs = json.loads(jobs.stdout)
    assert sorted((j["kind"], j["status"]) for j in listed_jobs) == [
        ("cycle", "success"),
        ("index", "success"),
    ]

    table = await asyncio.to_thread(run_cli, "advisories", "--source", "us_state_dept", env=env)
    assert table.returncode == 0 and "Saudi Arabia" in table.stdout


@pytest.mark.parametrize("command", [["advisories"], ["jobs"], ["schedule"]])
def test_cli_unknown_source_is_one_line_and_exit_2(command: list[str]) -> None:
    run = run_cli(*command, "--source", "atlantis", env={})
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "atlantis" in lines[0] and "us_state_dept" in lines[0]
    assert run.stdout == ""
