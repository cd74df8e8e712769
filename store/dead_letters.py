"""Dead letters: the PostgreSQL mirror of the quarantine workflows (``dead_letter_jobs``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from worker import telemetry


class DeadLetterStore:
    """The PostgreSQL mirror of the quarantine workflows."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def upsert(self, row: dict[str, Any]) -> None:
        """Insert or update the mirror of one quarantine workflow."""
        inserted = await self._pool.fetchval(
            """
            INSERT INTO dead_letter_jobs
                (workflow_id, source, country, job_key, failure_kind, message, traceback,
                 attempts, http_status, first_failure_at, last_failure_at, requeue_count,
                 status, note, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, now())
            ON CONFLICT (workflow_id) DO UPDATE SET
                failure_kind = EXCLUDED.failure_kind, message = EXCLUDED.message,
                traceback = EXCLUDED.traceback, attempts = EXCLUDED.attempts,
                http_status = EXCLUDED.http_status, last_failure_at = EXCLUDED.last_failure_at,
                requeue_count = EXCLUDED.requeue_count, status = EXCLUDED.status,
                note = EXCLUDED.note, updated_at = now()
            RETURNING xmax = 0
            """,
            row["workflow_id"],
            row["source"],
            row["country"],
            row["job_key"],
            row["failure_kind"],
            row["message"],
            row["traceback"],
            row["attempts"],
            row["http_status"],
            row["first_failure_at"],
            row["last_failure_at"],
            row["requeue_count"],
            row["status"],
            row["note"],
        )
        if inserted:
            telemetry.DEAD_LETTERS.add(1, {"source": row["source"], "kind": row["failure_kind"]})

    async def list(
        self,
        *,
        status: str | None = "open",
        source: str | None = None,
        kinds: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[asyncpg.Record]:
        """Dead letters, oldest first."""
        return await self._pool.fetch(
            """
            SELECT workflow_id, source, country, failure_kind, message, attempts, http_status,
                   first_failure_at, last_failure_at, requeue_count, status, note
            FROM dead_letter_jobs
            WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR source = $2)
              AND ($3::text[] IS NULL OR failure_kind = ANY($3::text[]))
            ORDER BY first_failure_at, workflow_id
            LIMIT $4
            """,
            status,
            source,
            list(kinds) if kinds is not None else None,
            limit,
        )

    async def superseded(self, *, limit: int = 500) -> Sequence[asyncpg.Record]:
        """Open dead letters (any kind) whose job a later cycle did anyway.

        A country whose current index entry was stored after the failure, or an index whose
        source answered a later index fetch: requeueing them costs one conditional request
        and closes them as recovered, instead of leaving them open for a person.
        """
        return await self._pool.fetch(
            """
            SELECT d.workflow_id, d.source, d.country, d.failure_kind
            FROM dead_letter_jobs d
            WHERE d.status = 'open' AND (
                EXISTS (
                    SELECT 1 FROM index_entries i
                    JOIN advisories a ON a.source = i.source AND a.country = i.country
                    WHERE i.source = d.source AND i.country = d.country
                      AND i.stored_hash = i.entry_hash AND a.last_checked_at > d.last_failure_at
                )
                OR (d.country = '*' AND EXISTS (
                    SELECT 1 FROM scrape_jobs j
                    WHERE j.source = d.source AND j.kind = 'index' AND j.status = 'success'
                      AND j.finished_at > d.last_failure_at
                ))
            )
            ORDER BY d.first_failure_at, d.workflow_id
            LIMIT $1
            """,
            limit,
        )

    async def open_for(self, source: str, country: str) -> str | None:
        """Workflow id of an open quarantine of this country, if any."""
        value = await self._pool.fetchval(
            "SELECT workflow_id FROM dead_letter_jobs"
            " WHERE source = $1 AND country = $2 AND status IN ('open', 'requeued')"
            " ORDER BY created_at DESC LIMIT 1",
            source,
            country,
        )
        return None if value is None else str(value)

    async def source_healthy(self, source: str) -> bool:
        """True when the source's latest index job succeeded (the source answers again)."""
        status = await self._pool.fetchval(
            "SELECT status FROM scrape_jobs WHERE source = $1 AND kind = 'index'"
            " AND status IN ('success', 'failure', 'dead_letter')"
            " ORDER BY started_at DESC, id DESC LIMIT 1",
            source,
        )
        return status in (None, "success")
