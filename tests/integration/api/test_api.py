"""The advisory API over HTTP, on a database filled by a real crawl (nothing mocked)."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

pytestmark = pytest.mark.integration


async def test_country_matches_the_stored_rows(api_server: str, crawled_database_url: str) -> None:
    conn = await asyncpg.connect(crawled_database_url)
    try:
        rows = await conn.fetch(
            "SELECT source, level, withdrawn FROM advisories WHERE country = 'FR' ORDER BY source"
        )
    finally:
        await conn.close()
    assert rows
    async with httpx.AsyncClient(base_url=api_server) as client:
        response = await client.get("/v1/countries/fr")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [s["source"] for s in body["sources"]] == [r["source"] for r in rows]
    levels = [r["level"] for r in rows if not r["withdrawn"]]
    assert body["strictest"] == max(levels)
    assert body["spread"] == max(levels) - min(levels)
    assert body["disagreement"] is (max(levels) != min(levels))
