"""Cleanup: the statements that count and delete old operational rows, one batch each.

What goes and what stays is decided in ``activities.cleanup`` (its module docstring); this
module holds the SQL. Every batch is its own short transaction, so a large table is never
locked for long.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import asyncpg

__all__ = ["CleanupStore"]

# Time column of each table deleted by age alone. Identifiers come from this
# fixed map, never from input; values are always parameters.
_TIME_COLUMN: Final = {
    "scrape_jobs": "started_at",
    "source_requests": "requested_at",
    "health_checks": "checked_at",
    "reports": "generated_at",
    "webhook_deliveries": "created_at",
    "alerts": "resolved_at",
    "dead_letter_jobs": "updated_at",
}
# What else an old row must be to go: the rest stays however old it is.
_DELETABLE: Final = {
    # Not the job of an open dead letter: ``dead-letters`` and ``requeue`` still show it.
    "scrape_jobs": """
        AND NOT EXISTS (SELECT 1 FROM dead_letter_jobs d
                        WHERE d.job_key = t.job_key AND d.status IN ('open', 'requeued'))
    """,
    # Finished, and its last attempt old too (``abandoned`` ones may have none).
    "webhook_deliveries": """
        AND t.status IN ('delivered', 'failed', 'abandoned')
        AND coalesce(t.last_attempt_at, t.created_at) < $1
    """,
    "alerts": "AND t.state = 'resolved'",
    "dead_letter_jobs": "AND t.status IN ('recovered', 'resolved')",
}

# Raw documents no current advisory needs (see ``activities.cleanup``).
_DOCUMENT_CANDIDATES: Final = """
    FROM documents d
    WHERE d.created_at < $1
      AND NOT EXISTS (SELECT 1 FROM advisories a
                      JOIN advisory_versions v ON v.id = a.version_id
                      WHERE v.document_sha256 = d.sha256)
      AND NOT EXISTS (SELECT 1 FROM (SELECT DISTINCT ON (source, country) document_sha256
                                     FROM advisory_versions
                                     ORDER BY source, country, id DESC) latest
                      WHERE latest.document_sha256 = d.sha256)
      AND NOT EXISTS (SELECT 1 FROM source_documents s WHERE s.body_sha256 = d.sha256)
"""


class CleanupStore:
    """Counts and deletes old rows of the operational tables."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def clock(self) -> datetime:
        """The database's clock, which every cutoff is measured from."""
        now: datetime = await self._pool.fetchval("SELECT clock_timestamp()")
        return now

    async def changes_cursor_moved_at(self) -> datetime | None:
        """When the change notifications' cursor last moved (None before the first one)."""
        updated_at: datetime | None = await self._pool.fetchval(
            "SELECT updated_at FROM notification_cursors WHERE name = 'changes'"
        )
        return updated_at

    async def exists(self, table: str) -> bool:
        """Whether ``table`` exists in this database."""
        return bool(await self._pool.fetchval("SELECT to_regclass($1) IS NOT NULL", table))

    async def count_old(self, table: str, cutoff: datetime) -> int:
        """Rows of ``table`` (one deleted by age) that would go before ``cutoff``."""
        column = _TIME_COLUMN[table]
        deletable = _DELETABLE.get(table, "")
        count = await self._pool.fetchval(
            f"SELECT count(*) FROM {table} t WHERE t.{column} < $1 {deletable}", cutoff
        )
        return int(count)

    async def delete_old(self, table: str, cutoff: datetime, limit: int) -> int:
        """Delete at most ``limit`` of the oldest such rows; return how many went."""
        column = _TIME_COLUMN[table]
        deletable = _DELETABLE.get(table, "")
        # ctid: the physical row, so one statement works for every table; the
        # inner query walks the time index oldest first and stops at a batch.
        status = await self._pool.execute(
            f"""
            DELETE FROM {table} WHERE ctid = ANY(ARRAY(
                SELECT t.ctid FROM {table} t WHERE t.{column} < $1 {deletable}
                ORDER BY t.{column} LIMIT $2))
            """,
            cutoff,
            limit,
        )
        return int(status.split()[-1])

    async def count_old_documents(self, cutoff: datetime) -> tuple[int, int]:
        """Raw documents that would go before ``cutoff``: (documents, versions detached)."""
        count = await self._pool.fetchval(f"SELECT count(*) {_DOCUMENT_CANDIDATES}", cutoff)
        detached = await self._pool.fetchval(
            f"""
            SELECT count(*) FROM advisory_versions
            WHERE document_sha256 IN (SELECT d.sha256 {_DOCUMENT_CANDIDATES})
            """,
            cutoff,
        )
        return int(count), int(detached)

    async def delete_old_documents(self, cutoff: datetime, limit: int) -> tuple[int, int, int]:
        """Delete one batch of unneeded raw documents, in one transaction.

        The versions that referenced them have ``document_sha256`` set to NULL first.

        Returns:
            ``(candidates, deleted, detached)``: documents locked for the batch (fewer than
            ``limit`` means none are left), documents deleted, versions detached.
        """
        deleted = detached = 0
        async with self._pool.acquire() as conn, conn.transaction():
            # Lock the candidates first: from then on no scrape can make a new
            # version reference them (its foreign-key check waits for us).
            # SKIP LOCKED leaves documents a scrape is using right now.
            locked = await conn.fetch(
                f"""
                SELECT d.sha256 {_DOCUMENT_CANDIDATES}
                ORDER BY d.created_at LIMIT $2
                FOR UPDATE OF d SKIP LOCKED
                """,
                cutoff,
                limit,
            )
            candidates = [r["sha256"] for r in locked]
            # Check again on a fresh snapshot: a version committed between this
            # transaction's start and the lock now counts.
            doomed = [
                r["sha256"]
                for r in await conn.fetch(
                    f"""
                    SELECT d.sha256 {_DOCUMENT_CANDIDATES}
                      AND d.sha256 = ANY($2::text[])
                    """,
                    cutoff,
                    candidates,
                )
            ]
            if doomed:
                status = await conn.execute(
                    "UPDATE advisory_versions SET document_sha256 = NULL"
                    " WHERE document_sha256 = ANY($1::text[])",
                    doomed,
                )
                detached = int(status.split()[-1])
                status = await conn.execute(
                    "DELETE FROM documents WHERE sha256 = ANY($1::text[])", doomed
                )
                deleted = int(status.split()[-1])
        return len(candidates), deleted, detached
