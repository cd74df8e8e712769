"""PostgreSQL store: the project's SQL, one class per aggregate.

Writes are idempotent. Replaying an activity must not create a duplicate
version, change or job row: versions are only inserted when the content hash
differs from the current advisory (checked under a row lock), raw documents are
keyed by their SHA-256, and job rows by a ``job_key`` derived from workflow ids.
"""

from __future__ import annotations

import gzip
import hashlib
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from advisories.changes import LevelState, classify_change
from advisories.models import Advisory
from advisories.parsers.base import IndexEntry
from store.pool import Connection
from worker import telemetry

# --------------------------------------------------------------------------- advisories


@dataclass(frozen=True, slots=True)
class StoredChange:
    """One ``changes`` row a store wrote (what the follow-up rule reads)."""

    country: str
    change_id: int
    kind: str
    level_before: int | None
    level_after: int
    regional_before: int | None
    regional_after: int | None


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What storing a batch of advisories did.

    Attributes:
        written: The ``changes`` rows written, one per new version.
    """

    seen: int
    versions_created: int
    changes: dict[str, int] = field(default_factory=dict)
    written: tuple[StoredChange, ...] = ()

    @property
    def unchanged(self) -> int:
        """Advisories whose content was already stored."""
        return self.seen - self.versions_created


_ADVISORY_COLUMNS = (
    "source, country, country_name, level, regional_level, raw_level, title, summary, url,"
    " source_updated_at, mapping_version, content_hash, withdrawn"
)


class AdvisoryStore:
    """Current advisories, their version history and classified changes."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def store(
        self,
        advisories: Iterable[Advisory],
        *,
        fetched_at: datetime,
        document_sha256: str | None = None,
        conn: Connection | None = None,
    ) -> StoreResult:
        """Store each advisory in one transaction; a version only where content changed."""
        if conn is None:
            async with self._pool.acquire() as own:
                return await self.store(
                    advisories, fetched_at=fetched_at, document_sha256=document_sha256, conn=own
                )
        seen = 0
        kinds: Counter[str] = Counter()
        changed: Counter[tuple[str, str]] = Counter()
        written: list[StoredChange] = []
        async with conn.transaction():
            for adv in advisories:
                seen += 1
                change = await self._store_one(conn, adv, fetched_at, document_sha256)
                if change is not None:
                    kinds[change.kind] += 1
                    changed[adv.source, change.kind] += 1
                    written.append(change)
        for (source, kind_name), count in changed.items():
            telemetry.CHANGES.add(count, {"source": source, "kind": kind_name})
        return StoreResult(
            seen=seen,
            versions_created=sum(kinds.values()),
            changes=dict(kinds),
            written=tuple(written),
        )

    async def _store_one(
        self, conn: Connection, adv: Advisory, fetched_at: datetime, document_sha256: str | None
    ) -> StoredChange | None:
        # The row lock below cannot serialise the first store of an advisory (there is no row
        # yet): two activities storing it at once would both insert a version. Serialise on
        # (source, country) for the rest of the transaction.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))",
            adv.source,
            adv.country,
        )
        current = await conn.fetchrow(
            """
            SELECT content_hash, level, regional_level, withdrawn, version_id
            FROM advisories WHERE source = $1 AND country = $2 FOR UPDATE
            """,
            adv.source,
            adv.country,
        )
        if current is not None and current["content_hash"] == adv.content_hash:
            await conn.execute(
                "UPDATE advisories SET last_checked_at = $3 WHERE source = $1 AND country = $2",
                adv.source,
                adv.country,
                fetched_at,
            )
            return None
        before = (
            None
            if current is None
            else LevelState(current["level"], current["regional_level"], current["withdrawn"])
        )
        kind = classify_change(
            before, LevelState(int(adv.level), _int_or_none(adv.regional_level), adv.withdrawn)
        )
        version_id = await conn.fetchval(
            f"""
            INSERT INTO advisory_versions ({_ADVISORY_COLUMNS}, fetched_at, document_sha256)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
            RETURNING id
            """,
            *_advisory_values(adv),
            fetched_at,
            document_sha256,
        )
        await conn.execute(
            f"""
            INSERT INTO advisories ({_ADVISORY_COLUMNS}, version_id, last_checked_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
            ON CONFLICT (source, country) DO UPDATE SET
                country_name = EXCLUDED.country_name, level = EXCLUDED.level,
                regional_level = EXCLUDED.regional_level, raw_level = EXCLUDED.raw_level,
                title = EXCLUDED.title, summary = EXCLUDED.summary, url = EXCLUDED.url,
                source_updated_at = EXCLUDED.source_updated_at,
                mapping_version = EXCLUDED.mapping_version,
                content_hash = EXCLUDED.content_hash, withdrawn = EXCLUDED.withdrawn,
                version_id = EXCLUDED.version_id, last_checked_at = EXCLUDED.last_checked_at
            """,
            *_advisory_values(adv),
            version_id,
            fetched_at,
        )
        change_id = await conn.fetchval(
            """
            INSERT INTO changes
                (source, country, kind, version_id, previous_version_id, level_before,
                 level_after, regional_before, regional_after, source_updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            RETURNING id
            """,
            adv.source,
            adv.country,
            kind.value,
            version_id,
            None if current is None else current["version_id"],
            None if before is None else before.level,
            int(adv.level),
            None if before is None else before.regional_level,
            _int_or_none(adv.regional_level),
            adv.source_updated_at,
        )
        return StoredChange(
            country=adv.country,
            change_id=int(change_id),
            kind=kind.value,
            level_before=None if before is None else before.level,
            level_after=int(adv.level),
            regional_before=None if before is None else before.regional_level,
            regional_after=_int_or_none(adv.regional_level),
        )

    async def current(
        self, *, source: str | None = None, country: str | None = None
    ) -> list[asyncpg.Record]:
        """Current advisories, optionally of one source / country, by source and country."""
        return await self._pool.fetch(
            """
            SELECT source, country, country_name, level, regional_level, raw_level, title, url,
                   source_updated_at, last_checked_at, withdrawn, content_hash
            FROM advisories
            WHERE ($1::text IS NULL OR source = $1) AND ($2::text IS NULL OR country = $2)
            ORDER BY source, country
            """,
            source,
            country,
        )

    async def changes(
        self,
        *,
        source: str | None = None,
        country: str | None = None,
        since: datetime | None = None,
        limit: int = 1000,
    ) -> list[asyncpg.Record]:
        """Classified changes, newest first."""
        return await self._pool.fetch(
            """
            SELECT c.id, c.source, c.country, v.country_name, c.kind, c.level_before,
                   c.level_after, c.regional_before, c.regional_after, c.source_updated_at,
                   c.detected_at, v.title
            FROM changes c JOIN advisory_versions v ON v.id = c.version_id
            WHERE ($1::text IS NULL OR c.source = $1) AND ($2::text IS NULL OR c.country = $2)
              AND ($3::timestamptz IS NULL OR c.detected_at >= $3)
            ORDER BY c.id DESC
            LIMIT $4
            """,
            source,
            country,
            since,
            limit,
        )

    async def version_count(self, *, source: str | None = None) -> int:
        """Number of stored versions."""
        count = await self._pool.fetchval(
            "SELECT count(*) FROM advisory_versions WHERE $1::text IS NULL OR source = $1", source
        )
        return int(count)

    async def versions_with_documents(self, *, source: str | None = None) -> list[asyncpg.Record]:
        """The current version of each advisory with its stored raw document (for reparse)."""
        return await self._pool.fetch(
            """
            SELECT a.source, a.country, d.sha256, d.url, d.body_gzip, d.fetched_at
            FROM advisories a
            JOIN advisory_versions v ON v.id = a.version_id
            JOIN documents d ON d.sha256 = v.document_sha256
            WHERE $1::text IS NULL OR a.source = $1
            ORDER BY a.source, a.country
            """,
            source,
        )


def _int_or_none(value: int | None) -> int | None:
    return None if value is None else int(value)


def _advisory_values(adv: Advisory) -> Sequence[Any]:
    return (
        adv.source,
        adv.country,
        adv.country_name,
        int(adv.level),
        _int_or_none(adv.regional_level),
        adv.raw_level,
        adv.title,
        adv.summary,
        adv.url,
        adv.source_updated_at,
        adv.mapping_version,
        adv.content_hash,
        adv.withdrawn,
    )


# --------------------------------------------------------------------------- documents


@dataclass(frozen=True, slots=True)
class DocumentState:
    """Validators of the last good response for a URL."""

    etag: str | None
    last_modified: str | None
    body_sha256: str


class DocumentStore:
    """Raw document bytes and conditional-request state per source URL."""

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

    async def save_raw(self, source: str, url: str, body: bytes, *, fetched_at: datetime) -> str:
        """Keep ``body`` (gzip) once per distinct content; return its SHA-256."""
        sha = hashlib.sha256(body).hexdigest()
        await self._pool.execute(
            """
            INSERT INTO documents (sha256, source, url, size_bytes, body_gzip, fetched_at)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (sha256) DO NOTHING
            """,
            sha,
            source,
            url,
            len(body),
            gzip.compress(body, compresslevel=6),
            fetched_at,
        )
        return sha

    async def raw(self, sha256: str) -> bytes | None:
        """The body :meth:`save_raw` kept as ``sha256``, if it is still kept."""
        body_gzip = await self._pool.fetchval(
            "SELECT body_gzip FROM documents WHERE sha256 = $1", sha256
        )
        return None if body_gzip is None else gunzip(body_gzip)

    async def touch_source(self, source: str, *, checked_at: datetime) -> int:
        """Mark every current advisory of ``source`` as checked (after a 304)."""
        result = await self._pool.execute(
            "UPDATE advisories SET last_checked_at = $2 WHERE source = $1", source, checked_at
        )
        return int(result.split()[-1])


def gunzip(body_gzip: bytes) -> bytes:
    """Inverse of what :meth:`DocumentStore.save_raw` stores."""
    return gzip.decompress(body_gzip)


# --------------------------------------------------------------------------- index state


@dataclass(frozen=True, slots=True)
class PlannedCountry:
    """A country whose per-country document must be fetched this cycle."""

    country: str
    document_path: str
    entry_hash: str


class IndexStore:
    """What each source's index last said about each country."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(
        self, source: str, entries: Sequence[IndexEntry], *, seen_at: datetime
    ) -> list[PlannedCountry]:
        """Upsert ``entries``; return the ones whose document is new or changed."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                """
                INSERT INTO index_entries
                    (source, country, country_name, published_at, entry_hash, document_path,
                     withdrawn, last_seen_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                ON CONFLICT (source, country) DO UPDATE SET
                    country_name = EXCLUDED.country_name, published_at = EXCLUDED.published_at,
                    entry_hash = EXCLUDED.entry_hash, document_path = EXCLUDED.document_path,
                    withdrawn = EXCLUDED.withdrawn, last_seen_at = EXCLUDED.last_seen_at
                """,
                [
                    (
                        source,
                        e.country,
                        e.country_name,
                        e.published_at,
                        e.entry_hash,
                        e.document_path,
                        e.withdrawn,
                        seen_at,
                    )
                    for e in entries
                ],
            )
            rows = await conn.fetch(
                """
                SELECT country, document_path, entry_hash FROM index_entries
                WHERE source = $1 AND document_path IS NOT NULL
                  AND stored_hash IS DISTINCT FROM entry_hash
                  AND country = ANY($2::text[])
                ORDER BY country
                """,
                source,
                [e.country for e in entries],
            )
        return [PlannedCountry(r["country"], r["document_path"], r["entry_hash"]) for r in rows]

    async def pending(self, source: str) -> list[PlannedCountry]:
        """Every country whose current document has not been stored yet (any cycle)."""
        rows = await self._pool.fetch(
            """
            SELECT country, document_path, entry_hash FROM index_entries
            WHERE source = $1 AND document_path IS NOT NULL
              AND stored_hash IS DISTINCT FROM entry_hash
            ORDER BY country
            """,
            source,
        )
        return [PlannedCountry(r["country"], r["document_path"], r["entry_hash"]) for r in rows]

    async def mark_stored(self, source: str, countries: dict[str, str]) -> None:
        """Record that these countries' documents (``country → entry_hash``) were stored.

        Only where the index still says ``entry_hash``: a late task of an older cycle (a batch
        retried after its worker was lost, a requeue) must not move ``stored_hash`` back.
        """
        await self._pool.executemany(
            "UPDATE index_entries SET stored_hash = $3"
            " WHERE source = $1 AND country = $2 AND entry_hash = $3",
            [(source, country, entry_hash) for country, entry_hash in countries.items()],
        )

    async def listing(
        self, countries: Sequence[str], *, exclude: str | None = None
    ) -> dict[str, list[str]]:
        """Source → which of ``countries`` its index lists now (``exclude``: not that source)."""
        rows = await self._pool.fetch(
            """
            SELECT source, country FROM index_entries
            WHERE country = ANY($1::text[]) AND NOT withdrawn
              AND ($2::text IS NULL OR source <> $2)
            ORDER BY source, country
            """,
            list(countries),
            exclude,
        )
        listed: dict[str, list[str]] = {}
        for row in rows:
            listed.setdefault(row["source"], []).append(row["country"])
        return listed

    async def newly_listed(self, source: str, countries: Sequence[str]) -> set[str]:
        """Which of ``countries`` ``source`` began listing after its first index was recorded.

        A first crawl records every entry in one transaction (one ``first_seen_at``), so on
        it no country is newly listed.
        """
        rows = await self._pool.fetch(
            """
            SELECT country FROM index_entries
            WHERE source = $1 AND country = ANY($2::text[])
              AND first_seen_at > (SELECT min(first_seen_at) FROM index_entries WHERE source = $1)
            """,
            source,
            list(countries),
        )
        return {row["country"] for row in rows}

    async def entry(self, source: str, country: str) -> asyncpg.Record | None:
        """The index entry of one country."""
        return await self._pool.fetchrow(
            "SELECT country, document_path, entry_hash FROM index_entries"
            " WHERE source = $1 AND country = $2",
            source,
            country,
        )


# --------------------------------------------------------------------------- jobs

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


# --------------------------------------------------------------------------- dead letters


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
