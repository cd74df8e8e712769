"""The one way the project opens PostgreSQL: ``create_pool`` (jsonb codec, SQL spans)."""

from __future__ import annotations

import json
from typing import Final

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from advisories.sources import SOURCES
from worker import telemetry

#: A connection, whether borrowed from a pool or opened on its own.
Connection = asyncpg.Connection | PoolConnectionProxy

#: Errors that mean "PostgreSQL is not there for us" (down, refusing, wrong database or
#: credentials, shutting down), as opposed to a bug in a query, which is raised.
DATABASE_ERRORS: Final = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.TooManyConnectionsError,
)


async def init_connection(conn: asyncpg.Connection) -> None:
    """Codecs every connection of the project has: jsonb ↔ Python objects."""
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset hook: nothing to reset.

    asyncpg's default reset runs ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``
    on every release, one more round trip per borrowed connection. The project never leaves
    session state behind: its advisory locks are transaction-scoped, it opens no cursors
    outside transactions, never LISTENs on a pooled connection and never SETs a session
    variable.
    """


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    connect_timeout: float = 60.0,
    seed_sources: bool = True,
) -> asyncpg.Pool:
    """The one pool of a process.

    Args:
        dsn: PostgreSQL URL.
        min_size: Connections opened at once; ``0`` connects lazily, so a database that is
            down is found by the first query instead of raising here (health checks).
        max_size: At most this many connections.
        connect_timeout: Seconds to wait for one connection.
        seed_sources: Upsert one ``sources`` row per registered source (the registry is the
            definition). Needs a connection, so it is skipped by lazy pools.
    """
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=connect_timeout,
        init=telemetry.traced_pool_init(init_connection),
        reset=_keep_session,
    )
    assert pool is not None
    if seed_sources:
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
