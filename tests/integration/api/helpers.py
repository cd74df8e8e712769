"""Helpers of the API tests: writing through the scheduler's own store, waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg

from advisories.models import Advisory, Level
from store.advisories import AdvisoryStore
from store.pool import create_pool

T = TypeVar("T")


async def store_new_version(
    database_url: str, *, source: str, country: str, title: str, level: int | None = None
) -> int:
    """Store a changed version of a current advisory the way a scrape does; its change id.

    The advisory is the stored one with ``title`` (and ``level``) replaced, written by
    :class:`store.advisories.AdvisoryStore` (version, current row and classified change).
    """
    pool = await create_pool(database_url, max_size=2)
    try:
        row = await pool.fetchrow(
            "SELECT * FROM advisories WHERE source = $1 AND country = $2", source, country
        )
        assert row is not None, (source, country)
        advisory = Advisory(
            source=source,
            country=country,
            country_name=row["country_name"],
            level=Level(level if level is not None else row["level"]),
            regional_level=None if row["regional_level"] is None else Level(row["regional_level"]),
            raw_level=row["raw_level"],
            title=title,
            summary=row["summary"],
            url=row["url"],
            source_updated_at=datetime.now(UTC),
            mapping_version=row["mapping_version"],
            withdrawn=row["withdrawn"],
        )
        await AdvisoryStore(pool).store([advisory], fetched_at=datetime.now(UTC))
        change_id = await pool.fetchval(
            "SELECT max(id) FROM changes WHERE source = $1 AND country = $2", source, country
        )
    finally:
        await pool.close()
    return int(change_id)


async def wait_until(probe: Callable[[], Awaitable[T | None]], *, within: float) -> T:
    """The first result of ``probe`` that is not None, polling every 50 ms."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await probe()
        if result is not None:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {within} s")
        await asyncio.sleep(0.05)


async def count(database_url: str, sql: str) -> int:
    """A single count from ``database_url``."""
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()
