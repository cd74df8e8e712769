"""Job rows written in bulk (a batch's jobs) on a real PostgreSQL."""

from __future__ import annotations

import time

import asyncpg
import pytest

from store.jobs import JobFinish, JobStore

pytestmark = pytest.mark.integration

UK = "uk_foreign_office"


async def test_a_batch_starts_and_finishes_its_jobs_together_with_their_own_times(
    pool: asyncpg.Pool,
) -> None:
    jobs = JobStore(pool)
    ids = await jobs.start_many(
        [("c/FR", "FR"), ("c/DE", "DE"), ("c/IT", "IT")],
        source=UK,
        kind="country",
        workflow_id="wf",
        run_id="run",
        activity_id="7",
        attempt=2,
    )
    assert sorted(ids) == ["c/DE", "c/FR", "c/IT"] and len(set(ids.values())) == 3
    now = time.monotonic()
    await jobs.finish_many(
        [
            # FR waited its turn: started 8 s ago, took 3 s.
            JobFinish("c/FR", "success", 200, 1, 1, 1, started=now - 8.0, finished=now - 5.0),
            JobFinish("c/DE", "success", 304, 1, 1, 0, started=now - 2.0, finished=now - 1.5),
        ],
        peak_rss_mb=99.5,
        now=now,
    )
    rows = {
        r["country"]: r
        for r in await pool.fetch(
            "SELECT country, status, attempt, http_status, versions_created, duration_ms,"
            " peak_rss_mb, clock_timestamp() - finished_at AS finished_ago, run_id"
            " FROM scrape_jobs"
        )
    }
    assert {c: r["status"] for c, r in rows.items()} == {
        "FR": "success",
        "DE": "success",
        "IT": "started",
    }
    assert rows["FR"]["attempt"] == 2 and rows["FR"]["run_id"] == "run"
    assert (rows["FR"]["http_status"], rows["FR"]["versions_created"]) == (200, 1)
    assert 2950 <= rows["FR"]["duration_ms"] <= 3050
    assert 450 <= rows["DE"]["duration_ms"] <= 550
    assert 5.0 <= rows["FR"]["finished_ago"].total_seconds() < 8.0
    assert rows["DE"]["peak_rss_mb"] == pytest.approx(99.5)
    assert rows["IT"]["duration_ms"] is None


async def test_starting_again_resets_a_finished_job_and_counts_add_up(pool: asyncpg.Pool) -> None:
    jobs = JobStore(pool)
    await jobs.start_many([("c/FR", "FR")], source=UK, kind="country")
    await jobs.finish(JobFinish("c/FR", "retry", requests_made=1, error="HTTP 503"))
    await jobs.start_many([("c/FR", "FR")], source=UK, kind="country", attempt=2)
    row = await pool.fetchrow("SELECT status, error, finished_at, attempt FROM scrape_jobs")
    assert row is not None and tuple(row) == ("started", None, None, 2)
    await jobs.finish_many([JobFinish("c/FR", "success", 200, requests_made=1)])
    row = await pool.fetchrow("SELECT status, requests_made, duration_ms FROM scrape_jobs")
    assert row is not None
    assert (row["status"], row["requests_made"]) == ("success", 2)
    assert row["duration_ms"] is not None and row["duration_ms"] >= 0
    await jobs.finish_many([])  # nothing to write
    assert await pool.fetchval("SELECT count(*) FROM scrape_jobs") == 1
