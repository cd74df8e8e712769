"""Politeness: two worker processes, rate limits on, a backlog of every country of every source.

The limits are shrunk (set at run time with ``RateLimitStore.update``, as ``python -m starter
rate-limits --set`` does) so that the backlog takes minutes, not hours, and business hours are
switched off (``respectful_factor = 1``) so that a run does not depend on the time of day. From
``source_requests`` (stamped by the database clock when each request was granted):

* violations of the minimum delay, the burst budget and the hourly budget, by
  ``advisories.ratelimit.violations`` with the policy read back from the database — must be 0;
* the share of the allowed budget used: requests made / requests a greedy client would have been
  allowed between the same first and last request (``bench.budget.utilisation_of``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import asyncpg
from temporalio.client import Client

from advisories.ratelimit import violations
from advisories.settings import Settings
from advisories.sources import SOURCES
from bench.budget import utilisation_of
from bench.crawl import check_crawl, project_crawl, worker_env
from bench.stack import BenchError, BenchStack, CpuMeter, wait_worker_polling
from store.pool import create_pool
from store.ratelimits import RateLimitStore

WORKERS = ("worker-1", "worker-2")


async def politeness(
    stack: BenchStack,
    client: Client,
    settings: Settings,
    *,
    limits: Mapping[str, object],
    expected: Mapping[str, int],
    within: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """A full backlog through two workers under ``limits`` (the same for every source)."""
    await asyncio.to_thread(stack.stop_service, "worker")
    dsn = await stack.fresh_database()
    pool = await create_pool(dsn, max_size=2)
    try:
        store = RateLimitStore(pool)
        for source in SOURCES:
            await store.update(source, **limits)
        policies = {source: await store.policy(source) for source in SOURCES}
    finally:
        await pool.close()
    polite = settings.model_copy(update={"rate_limits_enabled": True})
    pids = {}
    try:
        for name in WORKERS:
            pids[name] = await asyncio.to_thread(stack.start_worker, name, worker_env(polite))
        for pid in pids.values():
            await wait_worker_polling(client, pid)
        meter = CpuMeter(dict(pids))
        meter.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        results = await project_crawl(client, polite, "polite", within=within)
        seconds = loop.time() - started
        cpu = meter.stop()
    finally:
        for name in WORKERS:
            await asyncio.to_thread(stack.stop_service, name)
    stored, _, problems = await check_crawl(dsn, expected)
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT source, requested_at, kind FROM source_requests ORDER BY requested_at"
        )
    finally:
        await conn.close()
    sources: dict[str, Any] = {}
    total_violations = 0
    for source, policy in policies.items():
        times = [r["requested_at"] for r in rows if r["source"] == source]
        found = violations(policy, times)
        total_violations += found.total
        documents = sum(1 for r in rows if r["source"] == source and r["kind"] == "document")
        entry: dict[str, Any] = {
            "violations": {
                "min_delay": found.min_delay,
                "burst": found.burst,
                "hourly": found.hourly,
            },
            "documents": documents,
            "countries_stored": stored.get(source, 0),
            "quarantined": len(results[source].countries_quarantined),
        }
        # A budget is "used" only where there was a backlog: a source whose index carries
        # every advisory (US) makes two requests and has none.
        usage = utilisation_of(policy, times)
        usage["backlog"] = documents > 0
        entry.update(usage)
        sources[source] = entry
    if problems:
        raise BenchError(f"politeness crawl: {'; '.join(problems)}")
    log(
        f"politeness: {len(rows)} requests in {seconds:.0f} s, {total_violations} violations, "
        + ", ".join(f"{s} {v['used_percent']}%" for s, v in sources.items() if v.get("backlog"))
    )
    return {
        "workers": len(WORKERS),
        "seconds": round(seconds, 1),
        "policy": {k: (v if not isinstance(v, float) else round(v, 3)) for k, v in limits.items()},
        "worker_cpu_seconds": cpu,
        "violations": total_violations,
        "sources": sources,
    }
