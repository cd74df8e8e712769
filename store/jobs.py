"""Job rows (``scrape_jobs``), keyed by a ``job_key`` derived from workflow ids.

Writes are idempotent: replaying an activity updates its job row instead of adding one.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from worker import telemetry

JOB_COLUMNS = (
    "id, source, country, kind, status, attempt, started_at, finished_at, duration_ms,"
    " http_status, requests_made, items_seen, versions_created, peak_rss_mb, workflow_id,"
    " activity_id, error"
)


@dataclass(frozen=True, slots=True)
class JobFinish:
    """How one job ended, for :meth:`JobStore.finish_many`.

    ``started`` / ``finished`` are ``time.monotonic()`` readings taken when the job really
    started and ended (the jobs of a batch wait their turn; their rows are written together
    at the end); None keeps the row's ``started_at`` / ends the job at the write.
    """

    job_key: str
    status: str
    http_status: int | None = None
    requests_made: int = 0
    items_seen: int = 0
    versions_created: int = 0
    error: str | None = None
    traceback: str | None = None
    started: float | None = None
    finished: float | None = None


class JobStore:
    """Rows of ``scrape_jobs``, keyed by an idempotency key."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def plan(
        self, *, source: str, kind: str, jobs: Sequence[tuple[str, str | None]], workflow_id: str
    ) -> dict[str, int]:
        """Insert ``pending`` rows for ``(job_key, country)`` pairs; return key → id."""
        if not jobs:
            return {}
        rows = await self._pool.fetch(
            """
            INSERT INTO scrape_jobs (job_key, source, country, kind, status, workflow_id)
            SELECT k, $3, c, $4, 'pending', $5 FROM unnest($1::text[], $2::text[]) AS t(k, c)
            ON CONFLICT (job_key) DO UPDATE SET job_key = EXCLUDED.job_key
            RETURNING job_key, id
            """,
            [k for k, _ in jobs],
            [c for _, c in jobs],
            source,
            kind,
            workflow_id,
        )
        return {r["job_key"]: int(r["id"]) for r in rows}

    async def start_many(
        self,
        jobs: Sequence[tuple[str, str | None]],
        *,
        source: str,
        kind: str,
        workflow_id: str | None = None,
        run_id: str | None = None,
        activity_id: str | None = None,
        attempt: int = 1,
        started_at: datetime | None = None,
    ) -> dict[str, int]:
        """Mark ``(job_key, country)`` jobs started in one statement; return key → id."""
        if not jobs:
            return {}
        rows = await self._pool.fetch(
            """
            INSERT INTO scrape_jobs
                (job_key, source, country, kind, status, workflow_id, run_id, activity_id,
                 attempt, started_at)
            SELECT k, $3, c, $4, 'started', $5, $6, $7, $8, coalesce($9, now())
            FROM unnest($1::text[], $2::text[]) AS t(k, c)
            ON CONFLICT (job_key) DO UPDATE SET
                status = 'started', attempt = EXCLUDED.attempt,
                started_at = EXCLUDED.started_at,
                run_id = EXCLUDED.run_id, activity_id = EXCLUDED.activity_id,
                finished_at = NULL, error = NULL, traceback = NULL
            RETURNING job_key, id
            """,
            [k for k, _ in jobs],
            [c for _, c in jobs],
            source,
            kind,
            workflow_id,
            run_id,
            activity_id,
            attempt,
            started_at,
        )
        telemetry.JOBS.add(len(rows), {"source": source, "kind": kind, "status": "started"})
        return {r["job_key"]: int(r["id"]) for r in rows}

    async def finish(self, job: JobFinish, *, peak_rss_mb: float | None = None) -> None:
        """Record how one job ended (or that it will be retried)."""
        await self.finish_many([job], peak_rss_mb=peak_rss_mb)

    async def finish_many(
        self,
        jobs: Sequence[JobFinish],
        *,
        peak_rss_mb: float | None = None,
        now: float | None = None,
    ) -> None:
        """Record how several jobs ended, in one statement.

        ``now`` is the ``time.monotonic()`` reading the jobs' ``started`` / ``finished``
        readings are relative to (default: the current one); the times written are the
        database clock minus those ages, so that every timestamp of ``scrape_jobs`` comes
        from one clock.
        """
        if not jobs:
            return
        if now is None:
            now = time.monotonic()
        rows = await self._pool.fetch(
            """
            UPDATE scrape_jobs j SET
                status = u.status,
                started_at = coalesce(u.started_at, j.started_at),
                finished_at = u.finished_at,
                duration_ms = (extract(epoch FROM
                    u.finished_at - coalesce(u.started_at, j.started_at)) * 1000)::integer,
                http_status = coalesce(u.http_status, j.http_status),
                requests_made = j.requests_made + u.requests_made,
                items_seen = u.items_seen, versions_created = j.versions_created + u.versions,
                peak_rss_mb = greatest(j.peak_rss_mb, $10), error = u.error,
                traceback = u.traceback
            FROM (
                SELECT job_key, status, http_status, requests_made, items_seen, versions, error,
                       traceback,
                       now() - make_interval(secs => started_ago) AS started_at,
                       now() - make_interval(secs => coalesce(finished_ago, 0)) AS finished_at
                FROM unnest($1::text[], $2::text[], $3::integer[], $4::integer[],
                            $5::integer[], $6::integer[], $7::text[], $8::text[],
                            $9::float8[], $11::float8[])
                    AS t(job_key, status, http_status, requests_made, items_seen, versions,
                         error, traceback, started_ago, finished_ago)
            ) AS u
            WHERE j.job_key = u.job_key
            RETURNING j.source, j.kind, u.status
            """,
            [j.job_key for j in jobs],
            [j.status for j in jobs],
            [j.http_status for j in jobs],
            [j.requests_made for j in jobs],
            [j.items_seen for j in jobs],
            [j.versions_created for j in jobs],
            [j.error for j in jobs],
            [j.traceback for j in jobs],
            [None if j.started is None else max(0.0, now - j.started) for j in jobs],
            peak_rss_mb,
            [None if j.finished is None else max(0.0, now - j.finished) for j in jobs],
        )
        counts = Counter((r["source"], r["kind"], r["status"]) for r in rows)
        for (source, kind, status), count in counts.items():
            telemetry.JOBS.add(count, {"source": source, "kind": kind, "status": status})

    async def set_status(self, job_keys: Sequence[str], status: str) -> None:
        """Move jobs to ``status`` without touching their measurements."""
        rows = await self._pool.fetch(
            "UPDATE scrape_jobs SET status = $2 WHERE job_key = ANY($1::text[])"
            " RETURNING source, kind",
            list(job_keys),
            status,
        )
        for row in rows:
            telemetry.JOBS.add(1, {"source": row["source"], "kind": row["kind"], "status": status})

    async def recent(
        self,
        *,
        limit: int = 20,
        source: str | None = None,
        status: str | None = None,
    ) -> list[asyncpg.Record]:
        """The newest jobs first."""
        return await self._pool.fetch(
            f"""
            SELECT {JOB_COLUMNS}
            FROM scrape_jobs
            WHERE ($2::text IS NULL OR source = $2) AND ($3::text IS NULL OR status = $3)
            ORDER BY started_at DESC, id DESC
            LIMIT $1
            """,
            limit,
            source,
            status,
        )
