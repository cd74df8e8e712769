"""``python -m chaos.race``: store the first version of one advisory from two activities at once.

Two activities can store the same never-seen country at the same moment: a batch attempt on a
worker cut off from Temporal (a zombie) and its retry elsewhere, two overlapping cycles of a
source (the schedule and a manual ``schedule``), a requeue next to a cycle. ``AdvisoryStore``
serialises writers with ``SELECT ... FOR UPDATE`` on the ``advisories`` row, which only works
once the row exists. This check runs that race on a throw-away PostgreSQL cluster for a few
countries and counts the versions written; exit status 1 when any country got more than one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from chaos import catalogue
from schema.migrate import migrate
from starter import devstack
from store.advisories import AdvisoryStore
from store.pool import create_pool


async def _race(database_url: str, root: Path, *, countries: int, writers: int) -> dict[str, int]:
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    catalogue.build(root / "catalogue", uk_countries=1, canada_destinations=1)
    entries = catalogue.index_entries(root / "catalogue", "us_state_dept")
    advisories = [e.advisory for e in entries if e.advisory is not None][:countries]
    pool = await create_pool(database_url, max_size=writers + 1)
    try:
        store = AdvisoryStore(pool)
        for advisory in advisories:
            now = datetime.now(UTC)
            await asyncio.gather(*(store.store([advisory], fetched_at=now) for _ in range(writers)))
        rows = await pool.fetch(
            "SELECT country, count(*) AS n FROM advisory_versions GROUP BY country ORDER BY 1"
        )
        return {r["country"]: int(r["n"]) for r in rows}
    finally:
        await pool.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.race", description=__doc__)
    parser.add_argument("--countries", type=int, default=10, help="default %(default)s")
    parser.add_argument("--writers", type=int, default=2, help="default %(default)s")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="chaos-race-"))
    data = root / "postgres" / "data"
    try:
        url = devstack.start_postgres(
            data,
            port=devstack.find_free_port(),
            log_file=root / "postgres.log",
            database="advisories",
            fast=True,
        )
        versions = asyncio.run(_race(url, root, countries=args.countries, writers=args.writers))
    finally:
        devstack.remove_postgres_data(data)
        shutil.rmtree(root, ignore_errors=True)
    duplicated = {c: n for c, n in versions.items() if n > 1}
    print(
        f"{len(versions)} countries stored by {args.writers} concurrent writers each: "
        f"{sum(versions.values())} versions, {len(duplicated)} countries with duplicates"
        + (f" ({', '.join(f'{c}×{n}' for c, n in duplicated.items())})" if duplicated else "")
    )
    return 1 if duplicated else 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
