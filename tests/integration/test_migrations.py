"""Migrations against a real PostgreSQL: ordered, recorded, idempotent, race-free."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from schema.migrate import MIGRATIONS_DIR, MigrationError, applied_versions, discover, migrate

pytestmark = pytest.mark.integration


@pytest.fixture
async def empty_database(postgres_server: str) -> AsyncIterator[str]:
    name = f"m_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    yield postgres_server.rsplit("/", 1)[0] + f"/{name}"
    admin = await asyncpg.connect(postgres_server)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


def test_discover_orders_by_version_and_rejects_bad_names(tmp_path: Path) -> None:
    versions = [m.version for m in discover()]
    assert versions == sorted(versions) and versions[0] == 1
    (tmp_path / "V002__b.sql").write_text("SELECT 1;")
    (tmp_path / "V010__c.sql").write_text("SELECT 1;")
    (tmp_path / "V001__a.sql").write_text("SELECT 1;")
    assert [m.version for m in discover(tmp_path)] == [1, 2, 10]
    (tmp_path / "notes.sql").write_text("")
    with pytest.raises(MigrationError, match=r"notes\.sql"):
        discover(tmp_path)


async def test_migrate_applies_once_and_creates_the_tables(empty_database: str) -> None:
    conn = await asyncpg.connect(empty_database)
    try:
        first = await migrate(conn)
        assert [m.version for m in first] == [m.version for m in discover()]
        assert await migrate(conn) == []
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        assert {
            "sources",
            "advisories",
            "advisory_versions",
            "scrape_jobs",
            "schema_migrations",
        } <= tables
        assert await applied_versions(conn) == [m.version for m in discover()]
    finally:
        await conn.close()


async def test_concurrent_runners_do_not_double_apply(empty_database: str) -> None:
    conns = [await asyncpg.connect(empty_database) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        applied = [m.version for r in results for m in r]
        assert sorted(applied) == [m.version for m in discover()]
        assert await conns[0].fetchval("SELECT count(*) FROM schema_migrations") == len(discover())
    finally:
        for c in conns:
            await c.close()


async def test_changed_applied_migration_is_refused(empty_database: str, tmp_path: Path) -> None:
    for path in MIGRATIONS_DIR.glob("*.sql"):
        shutil.copy(path, tmp_path / path.name)
    conn = await asyncpg.connect(empty_database)
    try:
        await migrate(conn, directory=tmp_path)
        first = sorted(tmp_path.glob("V*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited\n")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate(conn, directory=tmp_path)
    finally:
        await conn.close()


async def test_failing_migration_rolls_back_and_is_not_recorded(
    empty_database: str, tmp_path: Path
) -> None:
    (tmp_path / "V001__ok.sql").write_text("CREATE TABLE a (x int);")
    (tmp_path / "V002__broken.sql").write_text("CREATE TABLE b (x int); SELECT no_such_function();")
    conn = await asyncpg.connect(empty_database)
    try:
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await migrate(conn, directory=tmp_path)
        assert await applied_versions(conn) == [1]
        assert await conn.fetchval("SELECT to_regclass('b')") is None
    finally:
        await conn.close()
