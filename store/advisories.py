"""Advisories and their versions: current rows, version history and classified changes.

Writes are idempotent. Replaying an activity must not create a duplicate version or change
row: versions are only inserted when the content hash differs from the current advisory
(checked under a row lock).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from advisories.changes import LevelState, classify_change
from advisories.models import Advisory
from store.pool import Connection
from worker import telemetry


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
