"""``python -m schema``: apply pending migrations to ``DATABASE_URL``."""

from __future__ import annotations

import asyncio
import sys

import asyncpg

from advisories.settings import get_settings, redact_url
from schema.migrate import MigrationError, discover, migrate


async def _main() -> int:
    url = get_settings().database_url.get_secret_value()
    try:
        conn = await asyncpg.connect(url)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"error: cannot connect to {redact_url(url)}: {exc}", file=sys.stderr)
        return 1
    try:
        applied = await migrate(conn)
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        await conn.close()
    total = len(discover())
    if applied:
        for m in applied:
            print(f"applied V{m.version:03d} {m.name}")
    print(f"schema up to date ({total} migrations)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_main()))
