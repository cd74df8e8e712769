"""Apply the numbered plain-SQL migrations in ``schema/`` in order.

Each ``V<NNN>__<name>.sql`` runs once, inside a transaction, and is recorded in
``schema_migrations`` with its checksum. Concurrent runners serialise on a
PostgreSQL advisory lock, so none applies a migration twice. A migration whose
file changed after it was applied is an error, not something to re-run.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

MIGRATIONS_DIR = Path(__file__).resolve().parent
_FILE_RE = re.compile(r"^V(?P<version>\d{3,})__(?P<name>[a-z0-9_]+)\.sql$")
# Arbitrary constant shared by every runner: the key of the advisory lock.
_LOCK_KEY = 7_310_452_118


class MigrationError(RuntimeError):
    """A migration set that cannot be applied safely."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        """The file's SQL text."""
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        """SHA-256 of the file's bytes."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations in ``directory``, ordered by version.

    Raises:
        MigrationError: on two files with one version number.
    """
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if match is None:
            raise MigrationError(f"migration file name not of the form V001__name.sql: {path.name}")
        version = int(match["version"])
        if version in found:
            raise MigrationError(f"two migrations with version {version}: {path.name}")
        found[version] = Migration(version, match["name"], path)
    return [found[v] for v in sorted(found)]


async def migrate(conn: asyncpg.Connection, *, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply every migration not yet applied; return the ones applied now."""
    migrations = discover(directory)
    applied_now: list[Migration] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version     integer PRIMARY KEY,
                name        text NOT NULL,
                checksum    text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
        applied = {r["version"]: r["checksum"] for r in rows}
        for migration in migrations:
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"migration V{migration.version:03d} ({migration.name}) was changed "
                        "after it was applied; add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            applied_now.append(migration)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now


async def applied_versions(conn: asyncpg.Connection) -> list[int]:
    """Versions recorded in ``schema_migrations`` (empty if the table is missing)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return []
    return [
        r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")
    ]
