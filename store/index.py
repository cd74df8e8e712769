"""Index state: what each source's index last said about each country."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from advisories.parsers.base import IndexEntry


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

    async def knows(self, source: str, country: str) -> tuple[bool, bool]:
        """Whether anything is known of ``source`` yet, and whether ``country`` is among it.

        Known means listed by its last index or stored as an advisory; before a first crawl
        nothing is known, and no country can be called unknown.
        """
        row = await self._pool.fetchrow(
            """
            SELECT (SELECT count(*) FROM index_entries WHERE source = $1)
                 + (SELECT count(*) FROM advisories WHERE source = $1) > 0 AS known,
                   EXISTS (SELECT 1 FROM index_entries WHERE source = $1 AND country = $2)
                OR EXISTS (SELECT 1 FROM advisories WHERE source = $1 AND country = $2) AS found
            """,
            source,
            country,
        )
        assert row is not None
        return bool(row["known"]), bool(row["found"])
