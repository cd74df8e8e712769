"""PostgreSQL store: every SQL statement of the project lives here.

Writes are idempotent. Replaying an activity must not create a duplicate
version or job row: versions are only inserted when the content hash differs
from the current advisory (checked under a row lock), and job rows are keyed by
a ``job_key`` derived from workflow and activity ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from advisories.models import Advisory
from advisories.sources import SOURCES

#: A connection, whether borrowed from a pool or opened on its own.
Connection = asyncpg.Connection | PoolConnectionProxy


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(dsn: str, *, max_size: int = 10) -> asyncpg.Pool:
    """The one pool of a process; seeds the ``sources`` table from the registry."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max_size, init=_init_connection)
    assert pool is not None
    await ensure_sources(pool)
    return pool


async def ensure_sources(pool: asyncpg.Pool) -> None:
    """Upsert one row per registered source (the registry is the definition)."""
    await pool.executemany(
        """
        INSERT INTO sources (id, name, priority) VALUES ($1, $2, $3)
        ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, priority = EXCLUDED.priority
        """,
        [(s.id, s.name, s.priority.value) for s in SOURCES.values()],
    )


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What storing a batch of advisories did."""

    seen: int
    versions_created: int
    unchanged: int


class AdvisoryStore:
    """Current advisories and their version history."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def store(self, advisories: Iterable[Advisory], *, fetched_at: datetime) -> StoreResult:
        """Store each advisory; insert a version only where the content changed."""
        seen = created = 0
        async with self._pool.acquire() as conn, conn.transaction():
            for adv in advisories:
                seen += 1
                if await self._store_one(conn, adv, fetched_at=fetched_at):
                    created += 1
        return StoreResult(seen=seen, versions_created=created, unchanged=seen - created)

    async def _store_one(self, conn: Connection, adv: Advisory, *, fetched_at: datetime) -> bool:
        current = await conn.fetchval(
            "SELECT content_hash FROM advisories WHERE source = $1 AND country = $2 FOR UPDATE",
            adv.source,
            adv.country,
        )
        if current == adv.content_hash:
            await conn.execute(
                "UPDATE advisories SET last_checked_at = $3 WHERE source = $1 AND country = $2",
                adv.source,
                adv.country,
                fetched_at,
            )
            return False
        version_id = await conn.fetchval(
            """
            INSERT INTO advisory_versions
                (source, country, country_name, level, regional_level, raw_level, title,
                 summary, url, source_updated_at, mapping_version, content_hash, fetched_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
            RETURNING id
            """,
            *_advisory_values(adv),
            fetched_at,
        )
        await conn.execute(
            """
            INSERT INTO advisories
                (source, country, country_name, level, regional_level, raw_level, title,
                 summary, url, source_updated_at, mapping_version, content_hash,
                 version_id, last_checked_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
            ON CONFLICT (source, country) DO UPDATE SET
                country_name = EXCLUDED.country_name, level = EXCLUDED.level,
                regional_level = EXCLUDED.regional_level, raw_level = EXCLUDED.raw_level,
                title = EXCLUDED.title, summary = EXCLUDED.summary, url = EXCLUDED.url,
                source_updated_at = EXCLUDED.source_updated_at,
                mapping_version = EXCLUDED.mapping_version,
                content_hash = EXCLUDED.content_hash, version_id = EXCLUDED.version_id,
                last_checked_at = EXCLUDED.last_checked_at
            """,
            *_advisory_values(adv),
            version_id,
            fetched_at,
        )
        return True

    async def current(self, *, source: str | None = None) -> list[asyncpg.Record]:
        """Current advisories, optionally of one source, ordered by source and country."""
        return await self._pool.fetch(
            """
            SELECT source, country, country_name, level, regional_level, raw_level, title, url,
                   source_updated_at, last_checked_at, content_hash
            FROM advisories
            WHERE $1::text IS NULL OR source = $1
            ORDER BY source, country
            """,
            source,
        )

    async def version_count(self, *, source: str | None = None) -> int:
        """Number of stored versions."""
        count = await self._pool.fetchval(
            "SELECT count(*) FROM advisory_versions WHERE $1::text IS NULL OR source = $1", source
        )
        return int(count)


def _advisory_values(adv: Advisory) -> Sequence[Any]:
    return (
        adv.source,
        adv.country,
        adv.country_name,
        int(adv.level),
        None if adv.regional_level is None else int(adv.regional_level),
        adv.raw_level,
        adv.title,
        adv.summary,
        adv.url,
        adv.source_updated_at,
        adv.mapping_version,
        adv.content_hash,
    )


class JobStore:
    """Rows of ``scrape_jobs``, keyed by an idempotency key."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def start(
        self,
        *,
        job_key: str,
        source: str,
        kind: str,
        country: str | None = None,
        workflow_id: str | None = None,
        run_id: str | None = None,
        activity_id: str | None = None,
        attempt: int = 1,
    ) -> int:
        """Mark a job started (creating its row on first sight); return its id."""
        job_id = await self._pool.fetchval(
            """
            INSERT INTO scrape_jobs
                (job_key, source, country, kind, status, workflow_id, run_id, activity_id, attempt)
            VALUES ($1, $2, $3, $4, 'started', $5, $6, $7, $8)
            ON CONFLICT (job_key) DO UPDATE SET
                status = 'started', attempt = EXCLUDED.attempt, started_at = now(),
                finished_at = NULL, error = NULL, traceback = NULL
            RETURNING id
            """,
            job_key,
            source,
            country,
            kind,
            workflow_id,
            run_id,
            activity_id,
            attempt,
        )
        return int(job_id)

    async def finish(
        self,
        *,
        job_key: str,
        status: str,
        http_status: int | None = None,
        requests_made: int = 0,
        items_seen: int = 0,
        versions_created: int = 0,
        peak_rss_mb: float | None = None,
        error: str | None = None,
        traceback: str | None = None,
    ) -> None:
        """Record how a job ended (or that it will be retried)."""
        await self._pool.execute(
            """
            UPDATE scrape_jobs SET
                status = $2, finished_at = now(),
                duration_ms = (extract(epoch FROM now() - started_at) * 1000)::integer,
                http_status = $3, requests_made = $4, items_seen = $5, versions_created = $6,
                peak_rss_mb = $7, error = $8, traceback = $9
            WHERE job_key = $1
            """,
            job_key,
            status,
            http_status,
            requests_made,
            items_seen,
            versions_created,
            peak_rss_mb,
            error,
            traceback,
        )

    async def recent(self, *, limit: int = 20, source: str | None = None) -> list[asyncpg.Record]:
        """The newest jobs first."""
        return await self._pool.fetch(
            """
            SELECT id, source, country, kind, status, attempt, started_at, finished_at,
                   duration_ms, http_status, requests_made, items_seen, versions_created,
                   peak_rss_mb, workflow_id, error
            FROM scrape_jobs
            WHERE $2::text IS NULL OR source = $2
            ORDER BY started_at DESC, id DESC
            LIMIT $1
            """,
            limit,
            source,
        )


@dataclass(frozen=True, slots=True)
class DocumentState:
    """Validators of the last good response for a URL."""

    etag: str | None
    last_modified: str | None
    body_sha256: str


class DocumentStore:
    """Conditional-request state per source URL."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, source: str, url: str) -> DocumentState | None:
        """Validators stored for ``url``, if any."""
        row = await self._pool.fetchrow(
            "SELECT etag, last_modified, body_sha256 FROM source_documents"
            " WHERE source = $1 AND url = $2",
            source,
            url,
        )
        if row is None:
            return None
        return DocumentState(row["etag"], row["last_modified"], row["body_sha256"])

    async def put(
        self,
        source: str,
        url: str,
        state: DocumentState,
        *,
        fetched_at: datetime,
    ) -> None:
        """Remember validators of a response whose content was stored."""
        await self._pool.execute(
            """
            INSERT INTO source_documents (source, url, etag, last_modified, body_sha256, fetched_at)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (source, url) DO UPDATE SET
                etag = EXCLUDED.etag, last_modified = EXCLUDED.last_modified,
                body_sha256 = EXCLUDED.body_sha256, fetched_at = EXCLUDED.fetched_at
            """,
            source,
            url,
            state.etag,
            state.last_modified,
            state.body_sha256,
            fetched_at,
        )

    async def touch_source(self, source: str, *, checked_at: datetime) -> int:
        """Mark every current advisory of ``source`` as checked (after a 304)."""
        result = await self._pool.execute(
            "UPDATE advisories SET last_checked_at = $2 WHERE source = $1", source, checked_at
        )
        return int(result.split()[-1])
