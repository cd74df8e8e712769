"""Reports: the rows a report reads, and the ``reports`` table each report is stored in."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from advisories.health import CheckName
from advisories.report import (
    AdvisoryRow,
    BacklogPoint,
    ChangeRow,
    JobRow,
    Report,
    ReportRows,
    RequestRow,
    choose_bucket,
)
from advisories.sources import SOURCES, RateLimitPolicy, source_ids
from store.pool import Connection
from store.ratelimits import RateLimitStore

__all__ = ["MAX_CHANGES_READ", "ReportStore"]

#: Changes read for one report: enough for every country of every source twice.
MAX_CHANGES_READ = 5000


class ReportStore:
    """What a report reads from the project's tables, and the stored reports."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def period_rows(self, hours: float) -> tuple[datetime, datetime, ReportRows]:
        """The rows of the last ``hours``: ``(start, end, rows)``."""
        async with self._pool.acquire() as conn:
            # The database's clock stamps every row the report reads.
            end: datetime = await conn.fetchval("SELECT clock_timestamp()")
            start = end - timedelta(hours=hours)
            rows = await self._rows(conn, start, end)
        return start, end, rows

    async def _rows(self, conn: Connection, start: datetime, end: datetime) -> ReportRows:
        jobs = await conn.fetch(
            """
            SELECT source, kind, status, started_at, duration_ms FROM scrape_jobs
            WHERE started_at >= $1 AND started_at < $2
            """,
            start,
            end,
        )
        # Requests can be many (every document of every cycle): counted per
        # bucket, status and 304 in SQL, on the same bucket edges as the report.
        bucket = choose_bucket(end - start)
        requests = await conn.fetch(
            """
            SELECT source,
                   date_bin($3::interval, requested_at, TIMESTAMPTZ '1970-01-01 00:00:00+00')
                       AS at,
                   status, not_modified, count(*) AS n
            FROM source_requests
            WHERE requested_at >= $1 AND requested_at < $2
            GROUP BY 1, 2, 3, 4
            """,
            start,
            end,
            bucket,
        )
        advisories = await conn.fetch(
            """
            SELECT source, country, country_name, level, regional_level, withdrawn, title, url
            FROM advisories
            """
        )
        changes = await conn.fetch(
            """
            SELECT c.source, c.country, v.country_name, c.kind, c.level_before, c.level_after,
                   c.regional_before, c.regional_after, c.detected_at, v.title, v.url
            FROM changes c JOIN advisory_versions v ON v.id = c.version_id
            WHERE c.detected_at >= $1 AND c.detected_at < $2
            ORDER BY c.detected_at DESC, c.id DESC
            LIMIT $3
            """,
            start,
            end,
            MAX_CHANGES_READ,
        )
        return ReportRows(
            jobs=[
                JobRow(r["source"], r["kind"], r["status"], r["started_at"], r["duration_ms"])
                for r in jobs
            ],
            requests=[
                # A bucket's first instant may precede the period: clamp it in.
                RequestRow(r["source"], max(r["at"], start), r["status"], r["not_modified"], r["n"])
                for r in requests
            ],
            advisories=[
                AdvisoryRow(
                    r["source"],
                    r["country"],
                    r["country_name"],
                    r["level"],
                    r["regional_level"],
                    r["withdrawn"],
                    r["title"],
                    r["url"],
                )
                for r in advisories
            ],
            changes=[
                ChangeRow(
                    source=r["source"],
                    country=r["country"],
                    country_name=r["country_name"],
                    kind=r["kind"],
                    level_after=r["level_after"],
                    detected_at=r["detected_at"],
                    level_before=r["level_before"],
                    regional_before=r["regional_before"],
                    regional_after=r["regional_after"],
                    title=r["title"],
                    url=r["url"],
                )
                for r in changes
            ],
            backlog=await self._backlog_history(conn, start, end),
            policies=await self._policies(),
            sources=source_ids(),
        )

    async def _backlog_history(
        self, conn: Connection, start: datetime, end: datetime
    ) -> list[BacklogPoint]:
        """The backlog every health run measured (``health_checks``, when it exists)."""
        if not await conn.fetchval("SELECT to_regclass('health_checks') IS NOT NULL"):
            return []
        rows = await conn.fetch(
            """
            SELECT b.queue, b.checked_at, b.value, w.value AS workers
            FROM health_checks b
            LEFT JOIN health_checks w
                   ON w.run_id = b.run_id AND w.queue = b.queue AND w.name = $4
            WHERE b.name = $3 AND b.queue IS NOT NULL AND b.value IS NOT NULL
              AND b.checked_at >= $1 AND b.checked_at < $2
            """,
            start,
            end,
            CheckName.QUEUE_BACKLOG.value,
            CheckName.QUEUE_WORKERS.value,
        )
        return [
            BacklogPoint(
                r["queue"],
                r["checked_at"],
                int(r["value"]),
                None if r["workers"] is None else int(r["workers"]),
            )
            for r in rows
        ]

    async def _policies(self) -> dict[str, RateLimitPolicy]:
        store = RateLimitStore(self._pool)
        policies: dict[str, RateLimitPolicy] = {}
        for source in source_ids():
            try:
                policies[source] = await store.policy(source)
            except LookupError:
                # No worker has seeded the limits yet: the registry's defaults apply.
                policies[source] = SOURCES[source].rate_limit
        return policies

    async def save(
        self,
        report: Report,
        texts: dict[str, str],
        paths: Sequence[str],
        *,
        formats: Sequence[str],
        key: str | None,
    ) -> int:
        """Store ``report`` rendered as ``texts`` (format → text); return its ``reports`` id.

        Args:
            report: The model (its period and generation time).
            texts: The rendered report, one text per format of ``formats``.
            paths: Files the report was also written to.
            formats: The formats ``texts`` holds, in order.
            key: Idempotency key: a second save with the same key replaces that report.
        """
        # jsonb goes in as text cast in SQL: the document is already serialised, and the
        # pool's jsonb codec would serialise it a second time.
        report_id = await self._pool.fetchval(
            """
            INSERT INTO reports
                (report_key, generated_at, period_start, period_end, formats, html, markdown,
                 json, paths)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, $9)
            ON CONFLICT (report_key) DO UPDATE SET
                generated_at = EXCLUDED.generated_at, period_start = EXCLUDED.period_start,
                period_end = EXCLUDED.period_end, formats = EXCLUDED.formats,
                html = EXCLUDED.html, markdown = EXCLUDED.markdown, json = EXCLUDED.json,
                paths = EXCLUDED.paths
            RETURNING id
            """,
            key,
            report.generated_at,
            report.period_start,
            report.period_end,
            list(formats),
            texts["html"],
            texts["markdown"],
            texts["json"],
            list(paths),
        )
        return int(report_id)
