"""Every registered source end to end against a generated full-structure catalogue.

The catalogue is SYNTHETIC (``replay.synthetic``: real documents' structure,
generated countries; the US feed and the Smartraveller export are the real
captures), served by the replay server in directory mode. Workers, dev server
and PostgreSQL are real.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import datetime
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.types import QuarantineState
from advisories.ratelimit import violations
from advisories.sources import SOURCES, RateLimitPolicy, get_source
from chaos.catalogue import expected as catalogue_expected
from replay import FaultRule
from replay.server import ReplayServer
from replay.synthetic import CatalogueSummary, set_level
from starter.schedules import scrape_input
from tests.conftest import make_settings
from tests.integration.helpers import crawl, run_cli, running_worker, wait_for_workflow
from workflows import ScrapeSourceWorkflow

pytestmark = pytest.mark.integration


async def counts(conn: asyncpg.Connection, sql: str) -> dict[str, int]:
    return {r[0]: r[1] for r in await conn.fetch(sql)}


async def test_crawl_all_sources_then_nothing_changed_then_one_level_raised(
    temporal_env: WorkflowEnvironment,
    database_url: str,
    served: tuple[ReplayServer, Path],
    catalogue: CatalogueSummary,
) -> None:
    server, root = served
    client = temporal_env.client
    settings = make_settings(
        database_url=database_url, replay_base_url=server.base_url, rate_limits_enabled=False
    )
    conn = await asyncpg.connect(database_url)
    try:
        async with running_worker(client, settings):
            first = await crawl(client, settings, "first")
            stored = await counts(conn, "SELECT source, count(*) FROM advisories GROUP BY 1")
            # One advisory per country each index lists (the US feed: 223 items, 213 countries).
            expected = {source: len(e.hashes) for source, e in catalogue_expected(root).items()}
            assert expected["us_state_dept"] == 213 and expected["au_smartraveller"] == 179
            assert stored == expected
            assert {s: r.versions_created for s, r in first.items()} == expected
            assert all(not r.countries_quarantined for r in first.values())
            documents = await counts(
                conn,
                "SELECT source, count(*) FROM source_requests WHERE kind = 'document' GROUP BY 1",
            )
            # Every country of a source with per-country documents, once.
            assert documents == {s: n for s, n in expected.items() if SOURCES[s].document_path}
            # Nothing changed: one conditional index request per source, all 304.
            await conn.execute("DELETE FROM source_requests")
            second = await crawl(client, settings, "second")
            assert {s: r.not_modified for s, r in second.items()} == dict.fromkeys(SOURCES, True)
            assert sum(r.versions_created for r in second.values()) == 0
            requests = await conn.fetch("SELECT source, kind, status FROM source_requests")
            assert sorted((r["kind"], r["status"]) for r in requests) == [("index", 304)] * len(
                SOURCES
            )

            # One UK country raised to 4 at the source: exactly its document is fetched.
            country = await conn.fetchval(
                "SELECT country FROM advisories WHERE source = 'uk_foreign_office' AND level = 1"
                " ORDER BY country LIMIT 1"
            )
            set_level(root, "uk_foreign_office", country, 4)
            await conn.execute("DELETE FROM source_requests")
            third = await crawl(client, settings, "third")
            assert third["uk_foreign_office"].countries_planned == 1
            assert third["uk_foreign_office"].versions_created == 1
            assert third["canada_travel"].not_modified and third["us_state_dept"].not_modified
            fetched = await conn.fetch("SELECT url FROM source_requests WHERE kind = 'document'")
            assert len(fetched) == 1
        env = {"DATABASE_URL": database_url}
        listed = await asyncio.to_thread(
            run_cli, "changes", "--source", "uk_foreign_office", "--country", country, "--json",
            env=env,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        changes = json.loads(listed.stdout)
        assert [(c["kind"], c["level_before"], c["level_after"]) for c in changes] == [
            ("raised", 1, 4),
            ("new", None, 1),
        ]
    finally:
        await conn.close()


async def test_failing_country_is_retried_then_quarantined_then_requeued_nothing_lost(
    temporal_env: WorkflowEnvironment, database_url: str, served: tuple[ReplayServer, Path]
) -> None:
    server, _ = served
    client = temporal_env.client
    settings = make_settings(
        database_url=database_url,
        replay_base_url=server.base_url,
        rate_limits_enabled=False,
        retry_initial_seconds=1.0,
        retry_maximum_seconds=2.0,
        retry_maximum_attempts=3,
    )
    conn = await asyncpg.connect(database_url)
    try:
        async with running_worker(client, settings):
            # Learn the catalogue, then make one country's document fail.
            await crawl(client, settings, "learn")
            row = await conn.fetchrow(
                "SELECT country, document_path FROM index_entries"
                " WHERE source = 'uk_foreign_office' ORDER BY country LIMIT 1"
            )
            assert row is not None
            await conn.execute(
                "UPDATE index_entries SET stored_hash = NULL WHERE source = 'uk_foreign_office'"
            )
            server.set_faults(
                FaultRule(
                    source="uk_foreign_office",
                    path_prefix=row["document_path"],
                    kind="status",
                    status=502,
                )
            )
            result = await client.execute_workflow(
                ScrapeSourceWorkflow.run,
                scrape_input(get_source("uk_foreign_office"), settings),
                id="test-uk-one-failing",
                task_queue=get_source("uk_foreign_office").priority.task_queue,
            )
            assert result.countries_quarantined == [row["country"]]
            assert result.countries_stored == 19
            quarantine = await wait_for_workflow(
                client,
                "WorkflowType = 'QuarantineWorkflow' AND ExecutionStatus = 'Running'"
                f" AND AdvisoryCountry = '{row['country']}'",
            )
            state = await quarantine.query("state")
            assert state["failure"]["kind"] == "http_5xx" and state["failure"]["attempts"] == 3
            statuses = await conn.fetch(
                "SELECT status FROM scrape_jobs WHERE kind = 'country' AND country = $1"
                " AND workflow_id = 'test-uk-one-failing'",
                row["country"],
            )
            assert [r["status"] for r in statuses] == ["dead_letter"]

            server.clear_faults()
            env = {
                "DATABASE_URL": database_url,
                "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            }
            sent = await asyncio.to_thread(run_cli, "requeue", quarantine.id, env=env)
            assert sent.returncode == 0, sent.stderr
            final = await client.get_workflow_handle(
                quarantine.id, result_type=QuarantineState
            ).result()
            assert final.status == "recovered"
        unstored = await conn.fetchval(
            "SELECT count(*) FROM index_entries WHERE stored_hash IS DISTINCT FROM entry_hash"
            " AND document_path IS NOT NULL"
        )
        assert unstored == 0
        duplicates = await conn.fetchval(
            "SELECT count(*) FROM (SELECT source, country, content_hash FROM advisory_versions"
            " GROUP BY 1, 2, 3 HAVING count(*) > 1) d"
        )
        assert duplicates == 0
    finally:
        await conn.close()


async def test_two_workers_share_the_rate_limit_without_violations(
    temporal_env: WorkflowEnvironment, database_url: str, served: tuple[ReplayServer, Path]
) -> None:
    server, _ = served
    client = temporal_env.client
    other = await Client.connect(
        client.service_client.config.target_host, namespace=client.namespace
    )
    settings = make_settings(database_url=database_url, replay_base_url=server.base_url)
    policy = RateLimitPolicy(
        requests_per_hour=10_000,
        burst_limit=4,
        burst_window_seconds=2.0,
        min_delay_seconds=0.15,
        timezone="Europe/London",
        respectful_factor=1.0,
    )
    conn = await asyncpg.connect(database_url)
    try:
        async with running_worker(client, settings), running_worker(other, settings):
            await conn.execute(
                "UPDATE rate_limits SET requests_per_hour = $1, burst_limit = $2,"
                " burst_window_seconds = $3, min_delay_seconds = $4, respectful_factor = 1"
                " WHERE source = 'uk_foreign_office'",
                policy.requests_per_hour,
                policy.burst_limit,
                policy.burst_window_seconds,
                policy.min_delay_seconds,
            )
            spec = get_source("uk_foreign_office")
            result = await client.execute_workflow(
                ScrapeSourceWorkflow.run,
                scrape_input(spec, settings),
                id="test-uk-polite",
                task_queue=spec.priority.task_queue,
            )
            assert result.countries_stored == 20
        times: list[datetime] = [
            r["requested_at"]
            for r in await conn.fetch(
                "SELECT requested_at FROM source_requests WHERE source = 'uk_foreign_office'"
                " ORDER BY requested_at"
            )
        ]
    finally:
        await conn.close()
    assert len(times) == 22  # robots.txt, index, 20 documents
    found = violations(policy, times)
    assert (found.min_delay, found.burst, found.hourly) == (0, 0, 0)
    # Budget use: the burst rule allows 4 per 2 s; a backlog of 22 needs ≥ 10 s at best.
    elapsed = (times[-1] - times[0]).total_seconds()
    ideal = (len(times) - policy.burst_limit) / policy.burst_limit * policy.burst_window_seconds
    assert elapsed <= ideal * 1.25 + 1.0, (elapsed, ideal)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert min(gaps) >= policy.min_delay_seconds - 0.001
