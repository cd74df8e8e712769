"""The full crawl, two ways: the project (A) and a bare asyncio loop (B), alternating.

**A, project**: the three ``ScrapeSourceWorkflow`` cycles started at once, as the schedules start
them, run by a ``python -m worker`` process; timed from the first start to the last result.

**B, baseline**: the same fetch + parse + store in this process, with the project's own pieces
and nothing else: ``SourceHttpClient`` (same User-Agent, timeouts, size cap, robots.txt), the
project's parsers called inline, and the project's store — ``DocumentStore.get/save_raw/put``,
``AdvisoryStore.store``, ``IndexStore.record/mark_stored`` — so that it leaves the same
advisories, versions, changes, raw documents, validators and index state. Per source it fetches
the index, stores what the index carries, then every planned document with the same number in
flight as the project (``batch concurrency × parallel batches``, 8 × 4 = 32 per source), the three
sources at once. What it leaves out is exactly what the project adds: Temporal, job rows
(``scrape_jobs``), the rate limiter's grant and response rows (``source_requests``, written even
with limits off), heartbeats, retries and quarantine.

Both arms start from a fresh database (dropped, created, migrated) and are checked afterwards:
every country of the catalogue stored, no planned document left unstored.

On a shared machine other people's work is the largest error of a wall-clock ratio. Each run
first waits (bounded) for the rest of the machine to be quiet, records how busy it was during the
run ("other load"), and every pair also gets a ratio of the CPU seconds of the whole stack
(worker or bench, dev server, PostgreSQL, replay server), which such noise moves much less.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client

from activities.http import FetchResult, SourceHttpClient
from activities.types import ScrapeSourceResult
from advisories.parsers import parser_for
from advisories.settings import Settings
from advisories.sources import SOURCES, IndexPage, get_source, page_url
from bench.stack import (
    BenchError,
    BenchStack,
    CpuMeter,
    RssSampler,
    machine_busy_seconds,
    start_py_spy,
    stop_py_spy,
    wait_for_quiet,
    wait_worker_polling,
)
from chaos.catalogue import index_entries
from replay import DIRECTORY_SUFFIXES
from starter.schedules import scrape_input
from store.advisories import AdvisoryStore
from store.documents import DocumentState, DocumentStore
from store.index import IndexStore, PlannedCountry
from store.pool import create_pool
from workflows import ScrapeSourceWorkflow

PROJECT = "project"
BASELINE = "baseline"
#: Processes whose CPU and memory a crawl run reports.
MEASURED = ("worker", "bench", "temporal", "postgres", "replay")


def bench_settings(
    *,
    database_url: str,
    temporal_address: str,
    replay_url: str,
    rate_limits: bool,
    **overrides: Any,
) -> Settings:
    """The settings the worker gets through its environment (see :func:`worker_env`)."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "temporal_address": temporal_address,
        "replay_base_url": replay_url,
        "source_base_urls": {},
        "rate_limits_enabled": rate_limits,
        "robots_txt_enabled": True,
        "schedule_overrides": {},
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def worker_env(settings: Settings) -> dict[str, str]:
    """Environment of a ``python -m worker`` that runs with ``settings``."""
    return {
        "DATABASE_URL": settings.database_url.get_secret_value(),
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "REPLAY_BASE_URL": settings.replay_base_url or "",
        "RATE_LIMITS_ENABLED": str(settings.rate_limits_enabled).lower(),
        "ROBOTS_TXT_ENABLED": str(settings.robots_txt_enabled).lower(),
    }


def catalogue_file(root: Path, source: str, path: str) -> Path:
    """The file the replay server's directory mode serves for ``/<source><path>``."""
    base = root / source / path.lstrip("/")
    if base.is_file():
        return base
    for suffix in DIRECTORY_SUFFIXES:
        candidate = base.with_name(base.name + suffix)
        if candidate.is_file():
            return candidate
    raise BenchError(f"catalogue {root} has no file for /{source}{path}")


def expected_countries(root: Path) -> dict[str, int]:
    """Countries per source that a complete crawl of the catalogue at ``root`` stores (a paged
    index counted over every page)."""
    return {
        spec.id: len({e.country for e in index_entries(root, spec.id)}) for spec in SOURCES.values()
    }


# --------------------------------------------------------------------------------------------
# The two arms
# --------------------------------------------------------------------------------------------


async def project_crawl(
    client: Client, settings: Settings, tag: str, *, within: float
) -> dict[str, ScrapeSourceResult]:
    """One cycle of every source, started at once; the results by source."""

    async def start(source: str) -> Any:
        spec = get_source(source)
        return await client.start_workflow(
            ScrapeSourceWorkflow.run,
            scrape_input(spec, settings),
            id=f"bench-{tag}-{source}",
            task_queue=spec.priority.task_queue,
        )

    handles = await asyncio.gather(*(start(s) for s in SOURCES))
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(h.result() for h in handles)), timeout=within
        )
    except TimeoutError:
        raise BenchError(f"project crawl {tag} did not finish within {within:.0f} s") from None
    return {r.source: r for r in results}


async def _no_budget(source: str, *, kind: str, url: str) -> int | None:
    return None  # the baseline has no rate limiter (limits are off in both arms)


async def _no_record(request_id: int | None, status: int | None) -> None:
    return None


class Baseline:
    """The bare asyncio loop: fetch, parse, store with the project's own pieces."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool, http: SourceHttpClient) -> None:
        self._settings = settings
        self._http = http
        self._advisories = AdvisoryStore(pool)
        self._documents = DocumentStore(pool)
        self._index = IndexStore(pool)
        self._in_flight = settings.scrape_batch_concurrency * settings.scrape_max_parallel_batches
        self.documents_fetched = 0

    async def _get(self, source: str, url: str) -> FetchResult:
        if self._settings.robots_txt_enabled:
            await self._http.check_robots(source, url, take_budget=_no_budget, record=_no_record)
        state = await self._documents.get(source, url)
        result = await self._http.fetch(
            source,
            url,
            etag=state.etag if state else None,
            last_modified=state.last_modified if state else None,
        )
        self.documents_fetched += 1
        return result

    async def _remember(self, source: str, result: FetchResult, sha: str) -> None:
        await self._documents.put(
            source,
            result.url,
            DocumentState(result.etag, result.last_modified, sha),
            fetched_at=result.fetched_at,
        )

    async def source(self, source: str) -> None:
        """Index, what the index carries, then every planned document."""
        parser = parser_for(source)
        spec = get_source(source)
        url = self._settings.index_url(source)
        result = await self._get(source, url)
        if result.not_modified:
            return
        # A paged index (a fresh crawl: every page answers 200): its pages in turn, and
        # what the pager read off each (None: one document).
        pages = [result]
        read: list[IndexPage | None] = [None]
        while spec.index_pager is not None:
            info = spec.index_pager(pages[-1].body, url=pages[-1].url)
            read[-1] = info
            query = info.next_query
            if query is None:
                break
            if len(pages) >= spec.index_max_pages:
                raise BenchError(f"{source}: the index has more than {spec.index_max_pages} pages")
            pages.append(await self._get(source, page_url(url, query)))
            read.append(None)
        entries = []
        shas = []
        for number, (page, kind) in enumerate(zip(pages, read, strict=True)):
            sha = await self._documents.save_raw(
                source, page.url, page.body, fetched_at=page.fetched_at
            )
            shas.append(sha)
            if number and kind is not None and kind.records == 0:
                continue  # the empty page past the last
            listed = parser.parse_index(page.body, url=page.url, fetched_at=page.fetched_at)
            carried = [e.advisory for e in listed if e.advisory is not None]
            if carried:
                await self._advisories.store(
                    carried, fetched_at=page.fetched_at, document_sha256=sha
                )
            entries += listed
        planned = await self._index.record(source, entries, seen_at=result.fetched_at)
        await self._index.mark_stored(
            source, {e.country: e.entry_hash for e in entries if e.advisory is not None}
        )
        for page, sha in zip(pages, shas, strict=True):
            await self._remember(source, page, sha)
        limit = asyncio.Semaphore(self._in_flight)

        async def one(country: PlannedCountry) -> None:
            async with limit:
                await self._country(source, country)

        await asyncio.gather(*(one(p) for p in planned))

    async def _country(self, source: str, planned: PlannedCountry) -> None:
        url = self._settings.base_url(source) + planned.document_path
        result = await self._get(source, url)
        if not result.not_modified:
            sha = await self._documents.save_raw(
                source, result.url, result.body, fetched_at=result.fetched_at
            )
            advisory = parser_for(source).parse_document(
                result.body, url=result.url, fetched_at=result.fetched_at
            )
            if advisory.country != planned.country:
                raise BenchError(f"{url} is about {advisory.country}, not {planned.country}")
            await self._advisories.store(
                [advisory], fetched_at=result.fetched_at, document_sha256=sha
            )
            await self._remember(source, result, sha)
        await self._index.mark_stored(source, {planned.country: planned.entry_hash})


async def baseline_crawl(settings: Settings, *, within: float) -> int:
    """One cycle of every source by the bare loop; the number of documents fetched."""
    pool = await create_pool(
        settings.database_url.get_secret_value(), max_size=settings.database_pool_size
    )
    http = SourceHttpClient(settings)
    try:
        baseline = Baseline(settings, pool, http)
        try:
            await asyncio.wait_for(
                asyncio.gather(*(baseline.source(s) for s in SOURCES)), timeout=within
            )
        except TimeoutError:
            raise BenchError(f"baseline crawl did not finish within {within:.0f} s") from None
        return baseline.documents_fetched
    finally:
        await http.aclose()
        await pool.close()


# --------------------------------------------------------------------------------------------
# Measured runs
# --------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """One measured crawl.

    Attributes:
        arm: ``project`` or ``baseline``.
        latency_ms: Latency the replay server added to every request.
        round: 0 for the warm-up, then 1, 2, ...
        seconds: Wall time from the start of the crawl to its last completion.
        documents: HTTP documents stored (indexes and per-country documents).
        countries: Advisories stored per source.
        cpu_seconds: CPU seconds per process tree during the run.
        peak_rss_mb: Peak resident memory per process tree during the run (sampled every 50 ms).
        rss_before_mb: Resident memory per process tree just before the run.
        quiet_wait_seconds: How long the run waited for the rest of the machine to calm down.
        load_before_cores: CPU the rest of the machine used just before the run, in cores.
        problems: What was wrong with the result (empty: complete).
    """

    arm: str
    latency_ms: float
    round: int
    seconds: float = 0.0
    documents: int = 0
    countries: dict[str, int] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    rss_before_mb: dict[str, float] = field(default_factory=dict)
    quiet_wait_seconds: float = 0.0
    load_before_cores: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def documents_per_second(self) -> float:
        return self.documents / self.seconds if self.seconds else 0.0

    @property
    def own_cpu_seconds(self) -> float:
        """CPU of every process of the bench's stack (all but the rest of the machine)."""
        return round(sum(v for k, v in self.cpu_seconds.items() if k in MEASURED), 3)

    @property
    def other_load_cores(self) -> float:
        """CPU the rest of the machine used during the run, in cores (noise)."""
        return round(self.cpu_seconds.get("other", 0.0) / self.seconds, 2) if self.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["documents_per_second"] = round(self.documents_per_second, 1)
        data["own_cpu_seconds"] = self.own_cpu_seconds
        data["other_load_cores"] = self.other_load_cores
        return data


async def check_crawl(dsn: str, expected: Mapping[str, int]) -> tuple[dict[str, int], int, list]:
    """Advisories per source, documents stored, and what is missing."""
    conn = await asyncpg.connect(dsn)
    try:
        stored = {
            r["source"]: int(r["n"])
            for r in await conn.fetch("SELECT source, count(*) AS n FROM advisories GROUP BY 1")
        }
        documents = int(await conn.fetchval("SELECT count(*) FROM source_documents"))
        unstored = int(
            await conn.fetchval(
                "SELECT count(*) FROM index_entries WHERE document_path IS NOT NULL"
                " AND stored_hash IS DISTINCT FROM entry_hash"
            )
        )
    finally:
        await conn.close()
    problems = [
        f"{source}: stored {stored.get(source, 0)} of {count} countries"
        for source, count in expected.items()
        if stored.get(source, 0) < count
    ]
    if unstored:
        problems.append(f"{unstored} planned documents not stored")
    return stored, documents, problems


async def measured_run(
    stack: BenchStack,
    arm: str,
    crawl: Awaitable[object],
    *,
    latency_ms: float,
    round_: int,
    dsn: str,
    expected: Mapping[str, int],
    profile: Path | None = None,
    quiet: tuple[float, float] = (0.0, 0.0),
) -> RunResult:
    """Run ``crawl`` with CPU and memory measured, then check what it stored.

    With ``profile``, py-spy samples the process doing the work (the worker for the project, this
    process for the baseline) into ``<profile>/<arm>-<latency>ms-<round>.txt`` (collapsed stacks).
    ``quiet``: ``(threshold in cores, longest wait in s)`` for :func:`wait_for_quiet` first.
    """
    pids = {name: stack.pid(name) for name in MEASURED if name != "bench"}
    pids["bench"] = os.getpid()
    result = RunResult(arm=arm, latency_ms=latency_ms, round=round_)
    threshold, longest = quiet
    if longest > 0:
        result.quiet_wait_seconds, result.load_before_cores = await wait_for_quiet(
            pids, threshold_cores=threshold, within=longest
        )
    sampled = {n: pids[n] for n in ("worker", "temporal", "bench")}
    result.rss_before_mb = RssSampler(sampled).sample_once()
    meter = CpuMeter(pids)
    meter.start()
    busy_before = machine_busy_seconds()
    spy = None
    if profile is not None:
        target = pids["worker"] if arm == PROJECT else os.getpid()
        spy = await asyncio.to_thread(
            start_py_spy, target, profile / f"{arm}-{latency_ms:g}ms-{round_}.txt"
        )
    try:
        with RssSampler(sampled) as sampler:
            started = time.perf_counter()
            await crawl
            result.seconds = round(time.perf_counter() - started, 3)
    finally:
        if spy is not None:
            await asyncio.to_thread(stop_py_spy, spy)
    result.cpu_seconds = meter.stop()
    # CPU the machine spent on anything else meanwhile (other people's tests): noise.
    busy = machine_busy_seconds() - busy_before
    measured = sum(result.cpu_seconds.values())
    result.cpu_seconds["machine"] = round(busy, 3)
    result.cpu_seconds["other"] = round(max(0.0, busy - measured), 3)
    result.peak_rss_mb = sampler.peaks_mb
    result.countries, result.documents, result.problems = await check_crawl(dsn, expected)
    return result


def summarise(runs: list[RunResult]) -> dict[str, Any]:
    """Medians, ranges and per-pair ratios of the counted (non-warm-up) runs of one latency."""
    counted = [r for r in runs if r.round > 0]
    summary: dict[str, Any] = {}
    for arm in (PROJECT, BASELINE):
        mine = [r for r in counted if r.arm == arm]
        if not mine:
            continue
        seconds = [r.seconds for r in mine]
        cpu_names = sorted({n for r in mine for n in r.cpu_seconds})
        rss_names = sorted({n for r in mine for n in r.peak_rss_mb})
        summary[arm] = {
            "runs": len(mine),
            "median_seconds": round(statistics.median(seconds), 3),
            "min_seconds": min(seconds),
            "max_seconds": max(seconds),
            "median_documents_per_second": round(
                statistics.median(r.documents_per_second for r in mine), 1
            ),
            "median_cpu_seconds": {
                n: round(statistics.median(r.cpu_seconds.get(n, 0.0) for r in mine), 3)
                for n in cpu_names
            },
            "max_peak_rss_mb": {n: max(r.peak_rss_mb.get(n, 0.0) for r in mine) for n in rss_names},
            "median_own_cpu_seconds": round(statistics.median(r.own_cpu_seconds for r in mine), 3),
            "median_other_load_cores": round(
                statistics.median(r.other_load_cores for r in mine), 2
            ),
        }
    pairs = []
    by_round: dict[int, dict[str, RunResult]] = {}
    for r in counted:
        by_round.setdefault(r.round, {})[r.arm] = r
    for round_, arms in sorted(by_round.items()):
        if PROJECT in arms and BASELINE in arms and arms[BASELINE].seconds > 0:
            project, baseline = arms[PROJECT], arms[BASELINE]
            pairs.append(
                {
                    "round": round_,
                    "ratio": round(project.seconds / baseline.seconds, 3),
                    "cpu_ratio": round(project.own_cpu_seconds / baseline.own_cpu_seconds, 3),
                }
            )
    summary["ratios"] = pairs
    if pairs:
        summary["median_ratio"] = round(statistics.median(p["ratio"] for p in pairs), 3)
        summary["median_cpu_ratio"] = round(statistics.median(p["cpu_ratio"] for p in pairs), 3)
        if PROJECT in summary and BASELINE in summary:
            summary["ratio_of_medians"] = round(
                summary[PROJECT]["median_seconds"] / summary[BASELINE]["median_seconds"], 3
            )
    return summary


@dataclass
class CrawlConfig:
    """How the A/B comparison runs (``profile``: py-spy output directory, or None)."""

    latencies_ms: tuple[float, ...]
    rounds: int
    warmup: bool
    timeout: float
    profile: Path | None = None
    #: Before each run, wait up to ``quiet_wait`` s for the rest of the machine to use less than
    #: ``quiet_cores`` CPUs (0: do not wait).
    quiet_cores: float = 0.3
    quiet_wait: float = 0.0


async def crawl_ab(
    stack: BenchStack,
    client: Client,
    *,
    catalogue: Path,
    fixtures: Path,
    expected: Mapping[str, int],
    config: CrawlConfig,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Alternating A/B runs at each latency; one worker process per latency (warm after the
    warm-up), a fresh database for every run."""
    out: dict[str, Any] = {}
    for latency in config.latencies_ms:
        replay_url = await asyncio.to_thread(
            stack.start_replay, catalogue, fixtures, latency_ms=latency
        )
        dsn = await stack.fresh_database()
        settings = bench_settings(
            database_url=dsn,
            temporal_address=stack.temporal_address,
            replay_url=replay_url,
            rate_limits=False,
        )
        pid = await asyncio.to_thread(stack.start_worker, "worker", worker_env(settings))
        await wait_worker_polling(client, pid)
        plan: list[tuple[int, str]] = []
        if config.warmup:
            plan += [(0, PROJECT), (0, BASELINE)]
        for round_ in range(1, config.rounds + 1):
            # ABBA...: each arm goes first in every other pair, so drift cancels out.
            arms = (PROJECT, BASELINE) if round_ % 2 else (BASELINE, PROJECT)
            plan += [(round_, arm) for arm in arms]
        runs: list[RunResult] = []
        for round_, arm in plan:
            dsn = await stack.fresh_database()
            tag = f"{int(latency)}ms-{round_}-{time.time_ns()}"
            crawl: Awaitable[object] = (
                project_crawl(client, settings, tag, within=config.timeout)
                if arm == PROJECT
                else baseline_crawl(settings, within=config.timeout)
            )
            result = await measured_run(
                stack,
                arm,
                crawl,
                latency_ms=latency,
                round_=round_,
                dsn=dsn,
                expected=expected,
                profile=config.profile if round_ > 0 else None,
                quiet=(config.quiet_cores, config.quiet_wait),
            )
            runs.append(result)
            label = "warm-up" if round_ == 0 else f"round {round_}"
            log(
                f"crawl {latency:g} ms {label} {arm}: {result.seconds:.2f} s, "
                f"{result.documents} documents, CPU {result.own_cpu_seconds:.1f} s, "
                f"other load {result.other_load_cores:.2f} cores"
                + (f" — {'; '.join(result.problems)}" if result.problems else "")
            )
        out[f"{latency:g}ms"] = {
            "latency_ms": latency,
            "runs": [r.to_json() for r in runs],
            **summarise(runs),
        }
    return out
