"""The read layer of the advisory service: read-only SQL over the scheduler's tables.

Every query runs in a read-only transaction: the service never writes advisories. The
current advisories are small (a few thousand rows at most) and change a few times a day,
so :meth:`ReadStore.snapshot` loads all of them at once together with the
:class:`DataVersion` they belong to; the service keeps that snapshot in memory and
reloads it only when the version moves. Histories and changes are read per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from advisories.health import SourceMetrics
from store.health import MetricsStore
from store.pool import Connection
from store.ratelimits import RateLimitStore, UsageRow

__all__ = [
    "CURRENT_SQL",
    "AdvisoryRow",
    "ChangeRow",
    "DataVersion",
    "HealthRow",
    "ReadStore",
    "Snapshot",
    "VersionRow",
]

#: How long a query may take before the request fails (seconds).
QUERY_TIMEOUT = 10.0
#: How long a request waits for a pooled connection (seconds).
ACQUIRE_TIMEOUT = 5.0

# Everything that changes what the advisory endpoints show: a new version or change, a
# country appearing or going, a source confirming its advisories (last_checked_at).
_VERSION_SQL = """
SELECT (SELECT coalesce(max(id), 0) FROM advisory_versions) AS max_version,
       (SELECT coalesce(max(id), 0) FROM changes) AS max_change,
       (SELECT count(*) FROM advisories) AS advisories,
       (SELECT max(last_checked_at) FROM advisories) AS last_checked_at
"""

#: Every current advisory with when its version was stored (the snapshot's query; the bench's
#: baseline handler runs it per request).
CURRENT_SQL = """
SELECT a.source, a.country, a.country_name, a.level, a.regional_level, a.raw_level, a.title,
       a.summary, a.url, a.source_updated_at, a.mapping_version, a.withdrawn, a.version_id,
       v.content_hash, v.created_at AS changed_at, a.last_checked_at
FROM advisories a JOIN advisory_versions v ON v.id = a.version_id
ORDER BY a.country, a.source
"""

_HISTORY_SQL = """
SELECT v.source, v.id AS version_id, c.id AS change_id, c.kind, c.level_before, v.level,
       v.regional_level, v.raw_level, v.title, v.summary, v.url, v.source_updated_at,
       v.mapping_version, v.withdrawn, v.content_hash, v.fetched_at, v.created_at AS stored_at
FROM advisory_versions v LEFT JOIN changes c ON c.version_id = v.id
WHERE v.country = $1
ORDER BY v.source, v.id
"""

# Keyset pagination on changes.id, newest first: rows inserted while a client pages have
# higher ids than its cursor and never shift the pages it has not read yet.
_CHANGES_SQL = """
SELECT c.id, c.source, c.country, v.country_name, c.kind, c.level_before, c.level_after,
       c.regional_before, c.regional_after, v.title, v.url, c.source_updated_at,
       c.detected_at, c.version_id, c.previous_version_id
FROM changes c JOIN advisory_versions v ON v.id = c.version_id
WHERE ($1::bigint IS NULL OR c.id < $1)
  AND ($2::timestamptz IS NULL OR c.detected_at >= $2)
  AND ($3::text[] IS NULL OR c.kind = ANY($3::text[]))
  AND ($4::text[] IS NULL OR c.source = ANY($4::text[]))
  AND ($5::text IS NULL OR c.country = $5)
ORDER BY c.id DESC
LIMIT $6
"""

_HEALTH_SQL = """
SELECT DISTINCT ON (source, name) source, name, ok, value, threshold, detail, checked_at
FROM health_checks
WHERE source IS NOT NULL AND checked_at >= $1
ORDER BY source, name, checked_at DESC, id DESC
"""


@dataclass(frozen=True, slots=True)
class DataVersion:
    """Where the advisory data stands; equal versions mean equal advisory responses."""

    max_version: int
    max_change: int
    advisories: int
    last_checked_at: datetime | None

    @classmethod
    def of(cls, record: asyncpg.Record) -> DataVersion:
        """From a row of the version query."""
        return cls(
            int(record["max_version"]),
            int(record["max_change"]),
            int(record["advisories"]),
            record["last_checked_at"],
        )

    def key(self) -> tuple[Any, ...]:
        """A hashable form (the response cache's version)."""
        return (self.max_version, self.max_change, self.advisories, self.last_checked_at)


@dataclass(frozen=True, slots=True)
class AdvisoryRow:
    """A current advisory as stored, plus when its version was stored."""

    source: str
    country: str
    country_name: str
    level: int
    regional_level: int | None
    raw_level: str
    title: str
    summary: str
    url: str
    source_updated_at: datetime
    mapping_version: str
    withdrawn: bool
    version_id: int
    content_hash: str
    changed_at: datetime
    last_checked_at: datetime


@dataclass(frozen=True, slots=True)
class VersionRow:
    """A stored version with the change that introduced it (None for versions before V002)."""

    source: str
    version_id: int
    change_id: int | None
    kind: str | None
    level_before: int | None
    level: int
    regional_level: int | None
    raw_level: str
    title: str
    summary: str
    url: str
    source_updated_at: datetime
    mapping_version: str
    withdrawn: bool
    content_hash: str
    fetched_at: datetime
    stored_at: datetime


@dataclass(frozen=True, slots=True)
class ChangeRow:
    """A classified change with its version's name, title and link."""

    id: int
    source: str
    country: str
    country_name: str
    kind: str
    level_before: int | None
    level_after: int
    regional_before: int | None
    regional_after: int | None
    title: str
    url: str
    source_updated_at: datetime
    detected_at: datetime
    version_id: int
    previous_version_id: int | None


@dataclass(frozen=True, slots=True)
class HealthRow:
    """The latest result of one health check about one source."""

    source: str
    name: str
    ok: bool
    value: float | None
    threshold: float | None
    detail: str
    checked_at: datetime


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every current advisory at one data version, by country (sources in id order)."""

    version: DataVersion
    advisories: tuple[AdvisoryRow, ...]

    def by_country(self) -> dict[str, list[AdvisoryRow]]:
        """The advisories grouped by country code."""
        out: dict[str, list[AdvisoryRow]] = {}
        for row in self.advisories:
            out.setdefault(row.country, []).append(row)
        return out


class ReadStore:
    """Read-only queries of the service, on the process's one pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def ping(self, *, seconds: float) -> None:
        """One round trip to PostgreSQL; raises what the pool or the connection raises.

        Args:
            seconds: How long to wait for a connection, and then for the answer.
        """
        async with self._pool.acquire(timeout=seconds) as conn:
            await conn.fetchval("SELECT 1", timeout=seconds)

    async def version(self) -> DataVersion:
        """The current data version (a handful of index lookups)."""
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            record = await conn.fetchrow(_VERSION_SQL, timeout=QUERY_TIMEOUT)
        assert record is not None
        return DataVersion.of(record)

    async def snapshot(self) -> Snapshot:
        """Every current advisory and the version they are at, read consistently."""
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            async with _read_only(conn):
                version = await conn.fetchrow(_VERSION_SQL, timeout=QUERY_TIMEOUT)
                rows = await conn.fetch(CURRENT_SQL, timeout=QUERY_TIMEOUT)
        assert version is not None
        return Snapshot(DataVersion.of(version), tuple(AdvisoryRow(**dict(r)) for r in rows))

    async def history(self, country: str) -> list[VersionRow]:
        """Every stored version for ``country``, by source, oldest first."""
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            async with _read_only(conn):
                rows = await conn.fetch(_HISTORY_SQL, country, timeout=QUERY_TIMEOUT)
        return [VersionRow(**dict(r)) for r in rows]

    async def changes(
        self,
        *,
        before_id: int | None,
        since: datetime | None,
        kinds: Sequence[str] | None,
        sources: Sequence[str] | None,
        country: str | None,
        limit: int,
    ) -> list[ChangeRow]:
        """One page of changes, newest first, with ``id < before_id`` when given."""
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            async with _read_only(conn):
                rows = await conn.fetch(
                    _CHANGES_SQL,
                    before_id,
                    since,
                    None if kinds is None else list(kinds),
                    None if sources is None else list(sources),
                    country,
                    limit,
                    timeout=QUERY_TIMEOUT,
                )
        return [ChangeRow(**dict(r)) for r in rows]

    async def source_metrics(
        self, *, window: timedelta, intervals: dict[str, float]
    ) -> tuple[datetime, dict[str, SourceMetrics], list[HealthRow]]:
        """The health check's figures per source over ``window``, and latest checks.

        The figures are :class:`store.health.MetricsStore`'s (the same queries the
        health check and ``metrics`` command use), so success rates and freshness agree.

        Returns:
            The database's clock, the metrics by source, the latest health rows.
        """
        metrics = MetricsStore(self._pool)
        now = await metrics.ping(within_seconds=ACQUIRE_TIMEOUT)
        raw = await metrics.sources(
            since=now - window, recent_since=now - timedelta(hours=1), intervals=intervals
        )
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            rows = await conn.fetch(_HEALTH_SQL, now - window, timeout=QUERY_TIMEOUT)
        health = [HealthRow(**dict(r)) for r in rows]
        return now, {s: SourceMetrics(**values) for s, values in raw.items()}, health

    async def rate_limit_usage(self) -> list[UsageRow]:
        """Each source's rate limit in force and its use in the last hour.

        The ``rate-limits`` command's figures (:meth:`store.ratelimits.RateLimitStore.usage`,
        a read), for the dashboard's budget use.
        """
        return await RateLimitStore(self._pool).usage()


def _read_only(conn: Connection) -> Any:
    """A read-only, repeatable-read transaction: one consistent view, no writes possible."""
    return conn.transaction(isolation="repeatable_read", readonly=True)
