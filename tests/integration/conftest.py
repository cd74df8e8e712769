"""Fixtures of the integration tests (the servers are in ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from store.pool import create_pool


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """The project's pool on a fresh, migrated database."""
    pool = await create_pool(database_url)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to the fresh, migrated database, for the test's own queries."""
    conn = await asyncpg.connect(database_url)
    yield conn  # closed after the test, whether it passed or not
    await conn.close()
