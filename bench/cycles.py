"""Cycles after the first crawl: one in which nothing changed, and freshness under schedules.

* :func:`unchanged_cycle` — a project crawl from a fresh database, then a second one with nothing
  changed at the source: the requests each source was sent (from ``source_requests``: index,
  304, documents, robots.txt) and the versions created, which must be none.
* :func:`freshness` — the project's own schedules (``starter.schedules.sync_schedules``) with
  short intervals and no jitter, a change of one country's level in the catalogue
  (``replay.synthetic.set_level``) at an arbitrary moment, and the time until the ``changes`` row
  is stored (``detected_at``), reported next to the poll interval.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client

from advisories.models import Level
from advisories.schedule_spec import parse_timing
from advisories.settings import Settings
from advisories.sources import SOURCES
from bench.crawl import check_crawl, project_crawl
from bench.stack import BenchError, BenchStack
from replay.synthetic import set_level
from starter.schedules import all_schedules, sync_schedules


async def unchanged_cycle(
    stack: BenchStack,
    client: Client,
    settings: Settings,
    *,
    expected: Mapping[str, int],
    within: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """First crawl from empty, then a second with nothing changed; requests and versions."""
    dsn = await stack.fresh_database()
    first = await project_crawl(client, settings, "unchanged-first", within=within)
    _, _, problems = await check_crawl(dsn, expected)
    if problems:
        raise BenchError(f"first crawl before the unchanged cycle: {'; '.join(problems)}")
    conn = await asyncpg.connect(dsn)
    try:
        mark = int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM source_requests"))
        versions_before = int(await conn.fetchval("SELECT count(*) FROM advisory_versions"))
        second = await project_crawl(client, settings, "unchanged-second", within=within)
        rows = await conn.fetch(
            "SELECT source, kind, status, not_modified FROM source_requests WHERE id > $1", mark
        )
        by_source = {
            r["source"]: int(r["n"])
            for r in await conn.fetch(
                "SELECT source, count(*) AS n FROM advisory_versions GROUP BY 1"
            )
        }
        versions_after = int(await conn.fetchval("SELECT count(*) FROM advisory_versions"))
    finally:
        await conn.close()
    sources: dict[str, Any] = {}
    for source in SOURCES:
        mine = [r for r in rows if r["source"] == source]
        sources[source] = {
            "requests": len(mine),
            "index": sum(1 for r in mine if r["kind"] == "index"),
            "not_modified_304": sum(1 for r in mine if r["not_modified"] or r["status"] == 304),
            "documents": sum(1 for r in mine if r["kind"] == "document"),
            "robots": sum(1 for r in mine if r["kind"] == "robots"),
            "versions_created": second[source].versions_created,
            "first_crawl_requests": first[source].requests_made,
            "versions_stored": by_source.get(source, 0),
        }
    created = versions_after - versions_before
    log(f"unchanged cycle: {len(rows)} requests, {created} versions created")
    return {"sources": sources, "versions_created": created, "requests": len(rows)}


async def _pick_country(conn: asyncpg.Connection, source: str, *, not_level: int) -> str:
    country = await conn.fetchval(
        "SELECT country FROM advisories WHERE source = $1 AND level <> $2 AND NOT withdrawn"
        " ORDER BY country LIMIT 1",
        source,
        not_level,
    )
    if country is None:
        raise BenchError(f"no {source} country to change")
    return str(country)


async def _drain_scrapes(client: Client, *, within: float) -> int:
    """Wait for running scrape cycles to end (terminate what is still running after
    ``within`` seconds); return how many there were."""
    handles = [
        client.get_workflow_handle(wf.id, run_id=wf.run_id)
        async for wf in client.list_workflows(
            "WorkflowType = 'ScrapeSourceWorkflow' AND ExecutionStatus = 'Running'"
        )
    ]
    for handle in handles:
        try:
            await asyncio.wait_for(handle.result(), timeout=within)
        except TimeoutError:
            await handle.terminate("bench: freshness measurement over")
        except Exception:  # a failed cycle is reported by the caller's checks, not here
            pass
    return len(handles)


async def freshness(
    client: Client,
    settings: Settings,
    *,
    dsn: str,
    catalogue: Path,
    interval: str,
    within: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Detection lag of a level change while the schedules run every ``interval``.

    One UK and one Canada country change level at the same moment; each lag is measured from
    that moment (and from the publication time the source states) to the ``changes`` row.

    Args:
        dsn: The database the worker uses, holding a complete crawl.
        catalogue: The catalogue the replay server serves (edited here).
        interval: Poll interval of every scrape schedule (at least a minute).
        within: Longest wait for the changes to be detected, seconds.
    """
    every = parse_timing(interval).every
    if every is None:
        raise BenchError(f"freshness needs an interval, not {interval!r}")
    scheduled = settings.model_copy(
        update={
            "schedule_overrides": {spec.schedule_id: interval for spec in SOURCES.values()},
            "schedule_jitter_seconds": 0.0,
        }
    )
    conn = await asyncpg.connect(dsn)
    changes: list[dict[str, Any]] = []
    try:
        # Every source whose catalogue can change (not one served as a real capture).
        targets = {
            spec.id: await _pick_country(conn, spec.id, not_level=Level.DO_NOT_TRAVEL)
            for spec in SOURCES.values()
            if spec.synthetic.set_level is not None
        }
        await sync_schedules(client, scheduled)
        try:
            for source, country in targets.items():
                published = await asyncio.to_thread(
                    set_level, catalogue, source, country, Level.DO_NOT_TRAVEL
                )
                changes.append(
                    {
                        "source": source,
                        "country": country,
                        "level_after": int(Level.DO_NOT_TRAVEL),
                        "changed_at": datetime.now(UTC),
                        "source_published_at": published,
                    }
                )
            log(
                "freshness: changed "
                + ", ".join(f"{c['source']} {c['country']}" for c in changes)
                + f"; schedules every {interval}"
            )
            loop = asyncio.get_running_loop()
            deadline = loop.time() + within
            while loop.time() < deadline and any("detected_at" not in c for c in changes):
                for change in changes:
                    if "detected_at" in change:
                        continue
                    row = await conn.fetchrow(
                        "SELECT kind, detected_at FROM changes WHERE source = $1"
                        " AND country = $2 AND detected_at >= $3 ORDER BY id LIMIT 1",
                        change["source"],
                        change["country"],
                        change["changed_at"],
                    )
                    if row is not None:
                        change["detected_at"] = row["detected_at"]
                        change["kind"] = row["kind"]
                await asyncio.sleep(0.5)
        finally:
            for schedule_id in all_schedules(scheduled):
                try:
                    await client.get_schedule_handle(schedule_id).delete()
                except Exception:  # absent is fine
                    pass
            drained = await _drain_scrapes(client, within=60)
        cycles = int(
            await conn.fetchval(
                "SELECT count(*) FROM scrape_jobs WHERE kind = 'cycle'"
                " AND workflow_id LIKE 'scrape-%'"
            )
        )
    finally:
        await conn.close()
    out = []
    for change in changes:
        detected = change.get("detected_at")
        out.append(
            {
                "source": change["source"],
                "country": change["country"],
                "kind": change.get("kind"),
                "poll_interval_seconds": every.total_seconds(),
                "changed_at": change["changed_at"].isoformat(),
                "source_published_at": change["source_published_at"].isoformat(),
                "detected_at": detected.isoformat() if detected else None,
                "lag_seconds": (
                    round((detected - change["changed_at"]).total_seconds(), 1)
                    if detected
                    else None
                ),
                "lag_from_source_time_seconds": (
                    round((detected - change["source_published_at"]).total_seconds(), 1)
                    if detected
                    else None
                ),
            }
        )
    log(
        "freshness: "
        + ", ".join(f"{c['source']} {c['country']} lag {c['lag_seconds']} s" for c in out)
    )
    return {
        "poll_interval_seconds": every.total_seconds(),
        "scheduled_cycles": cycles,
        "cycles_running_at_end": drained,
        "changes": out,
    }
