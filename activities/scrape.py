"""Scrape activities: fetch, parse and store — thin over the domain code.

Three shapes, chosen for cost (see DESIGN §10):

* ``fetch_index`` — the source's index: stores advisories the index carries and
  plans the countries whose documents are new or changed;
* ``scrape_countries`` — a batch of countries, fetched with bounded concurrency,
  heartbeating progress and returning one outcome per country (a failure of one
  country never fails the batch);
* ``scrape_country`` — one country under the retry policy (retries of a batch's
  failures, requeues from the dead-letter queue).

Every request to a source first takes budget from the shared rate limiter. When
the budget is not there within a short wait, the activity returns "deferred"
with the wait, giving its slot back; the workflow sleeps on a durable timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import asyncpg
import psutil
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.http import FetchResult, SourceHttpClient
from activities.types import (
    BatchInput,
    BatchResult,
    CountryInput,
    CountryOutcome,
    CountryResult,
    CountryTask,
    CycleSummary,
    FollowUpTargets,
    FollowUpTargetsInput,
    IndexInput,
    IndexResult,
    JobStatusInput,
    RaisedCountry,
)
from advisories.errors import ContractError, FetchError
from advisories.followup import raised_countries
from advisories.models import RetryConfig
from advisories.retry import backoff_seconds, classify_failure
from advisories.settings import Settings
from advisories.sources import IndexEntry, IndexPage, IndexPager, SourceSpec, get_source, page_url
from store.advisories import AdvisoryStore, StoredChange
from store.documents import DocumentState, DocumentStore
from store.index import IndexStore
from store.jobs import JobFinish, JobStore
from store.ratelimits import RateLimitStore, RequestRecord

log = logging.getLogger(__name__)


#: A batch activity heartbeats this often while it runs, whatever its countries are doing ...
BATCH_HEARTBEAT_SECONDS = 5.0
#: ... so the server can declare its worker lost after this long without one.
BATCH_HEARTBEAT_TIMEOUT_SECONDS = 30.0
#: Progress heartbeats (``done/total``) at most this often.
PROGRESS_HEARTBEAT_SECONDS = 1.0
#: A batch writes its job and request rows at least this often (and at its end).
LEDGER_FLUSH_SECONDS = 5.0


class Deferred(Exception):
    """No rate-limit budget within the short wait; try again after ``wait_seconds``."""

    def __init__(self, wait_seconds: float) -> None:
        super().__init__(f"rate limit: next request in {wait_seconds:.1f} s")
        self.wait_seconds = wait_seconds


@dataclass(frozen=True, slots=True)
class _Stored:
    versions_created: int
    requests_made: int
    not_modified: bool
    http_status: int
    raised: list[RaisedCountry] = field(default_factory=list)


@dataclass(slots=True)
class _Ledger:
    """Rows an activity writes together instead of one statement per document.

    ``requests``: requests made with rate limits off (nothing to decide before them);
    ``finished``: country jobs that ended well. Written when the activity ends and every
    few seconds while it runs. A lost worker loses at most those few seconds of bookkeeping
    and never an advisory (stored as each document arrives); the retried batch writes the
    rows again (its documents then answer 304).
    """

    requests: list[RequestRecord] = field(default_factory=list)
    finished: list[JobFinish] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _IndexPage:
    """One page of a paged index.

    Attributes:
        result: Its response (200, or 304 to its own conditional request).
        body: What it says: the 200's body, or for a 304 the body stored before.
        page: What the source's pager read off it.
        stored: Its validators and body hash as kept before this request.
    """

    result: FetchResult
    body: bytes
    page: IndexPage
    stored: DocumentState | None

    @property
    def unchanged(self) -> bool:
        """A 304, or a 200 with the body already stored for this page."""
        if self.result.not_modified:
            return True
        return (
            self.stored is not None
            and self.stored.body_sha256 == hashlib.sha256(self.body).hexdigest()
        )


async def _beat_every(seconds: float, details: str) -> None:
    """Heartbeat every ``seconds`` until cancelled (the activity is alive, whatever it waits on)."""
    while True:
        await asyncio.sleep(seconds)
        activity.heartbeat(details)


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / (1024 * 1024)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


class ScrapeActivities:
    """Activities that talk to the sources; constructed once per worker."""

    def __init__(
        self,
        *,
        settings: Settings,
        pool: asyncpg.Pool,
        http: SourceHttpClient,
        limiter: RateLimitStore,
    ) -> None:
        self._settings = settings
        self._http = http
        self._limiter = limiter
        self._advisories = AdvisoryStore(pool)
        self._documents = DocumentStore(pool)
        self._index = IndexStore(pool)
        self._jobs = JobStore(pool)
        # Every batch of every source shares the worker's memory: without a cap a full
        # crawl of six sources had 6 x 4 batches x 8 documents at once.
        self._document_slots = asyncio.Semaphore(settings.scrape_worker_max_documents)

    # ------------------------------------------------------------------ requests

    async def _get(
        self,
        source: str,
        url: str,
        *,
        kind: str,
        conditional: bool,
        ledger: _Ledger,
        hold: contextlib.AsyncExitStack | None = None,
    ) -> FetchResult:
        """One polite request: robots.txt, rate-limit budget, conditional GET.

        With ``hold``, a document slot (``SCRAPE_WORKER_MAX_DOCUMENTS``) is taken once the
        budget is granted and kept until ``hold`` closes: a source waiting for budget holds
        no slot another source could use.
        """
        if self._settings.robots_txt_enabled:
            await self._http.check_robots(
                source, url, take_budget=self._budget, record=self._record_status
            )
        # Limits off: nothing to ask before the request; it is recorded afterwards (ledger).
        limits_on = self._settings.rate_limits_enabled
        grant = await self._budget(source, kind=kind, url=url) if limits_on else None
        if hold is not None:
            await hold.enter_async_context(self._document_slots)
        sent = time.monotonic()
        state = await self._documents.get(source, url) if conditional else None
        try:
            result = await self._http.fetch(
                source,
                url,
                etag=state.etag if state else None,
                last_modified=state.last_modified if state else None,
            )
        except FetchError as exc:
            request = RequestRecord(source, kind, url, sent, exc.status, None)
            await self._record(ledger, grant, request, limits_on=limits_on)
            raise
        request = RequestRecord(
            source, kind, url, sent, result.status, len(result.body), result.not_modified
        )
        await self._record(ledger, grant, request, limits_on=limits_on)
        return result

    async def _record(
        self, ledger: _Ledger, grant: int | None, request: RequestRecord, *, limits_on: bool
    ) -> None:
        """How a request ended: on its granted row, or (limits off) kept for the ledger."""
        if grant is not None:
            await self._limiter.record_response(
                grant, status=request.status, bytes=request.bytes, not_modified=request.not_modified
            )
        elif not limits_on:
            ledger.requests.append(request)

    async def _start_jobs(
        self,
        jobs: Sequence[tuple[str, str | None]],
        *,
        source: str,
        kind: str,
        attempt: int | None = None,
        started_at: datetime | None = None,
    ) -> None:
        """Mark ``(job_key, country)`` jobs started by this activity (attempt: its own)."""
        info = activity.info()
        await self._jobs.start_many(
            jobs,
            source=source,
            kind=kind,
            workflow_id=info.workflow_id,
            run_id=info.workflow_run_id,
            activity_id=info.activity_id,
            attempt=info.attempt if attempt is None else attempt,
            started_at=started_at,
        )

    async def _flush(self, ledger: _Ledger) -> None:
        """Write what ``ledger`` holds (and empty it)."""
        requests, ledger.requests = ledger.requests, []
        finished, ledger.finished = ledger.finished, []
        now = time.monotonic()
        if requests:
            await self._limiter.record_requests(requests, now=now)
        if finished:
            await self._jobs.finish_many(finished, peak_rss_mb=_rss_mb(), now=now)

    async def _record_status(self, request_id: int | None, status: int | None) -> None:
        if request_id is not None:
            await self._limiter.record_response(
                request_id, status=status, bytes=None, not_modified=False
            )

    async def _budget(self, source: str, *, kind: str, url: str) -> int | None:
        grant = await self._limiter.acquire(
            source,
            kind=kind,
            url=url,
            max_wait_seconds=self._settings.rate_limit_max_wait_seconds,
            enabled_globally=self._settings.rate_limits_enabled,
        )
        if not grant.granted:
            raise Deferred(grant.wait_seconds)
        return grant.request_id

    async def _remember(self, source: str, result: FetchResult, sha: str) -> None:
        """Keep a response's validators, once what it carried is stored.

        Not before: a worker lost in between must not leave an ETag that makes the next
        cycle's conditional GET skip content that was never stored.
        """
        await self._documents.put(
            source,
            result.url,
            DocumentState(result.etag, result.last_modified, sha),
            fetched_at=result.fetched_at,
        )

    async def _raised(self, source: str, written: Sequence[StoredChange]) -> list[RaisedCountry]:
        """The stored changes that trigger follow-ups (none when follow-ups are off)."""
        if not self._settings.followup_enabled or not written:
            return []
        level = self._settings.followup_min_level
        # Ask the index store only when a ``new`` change could count (it rarely can).
        hopeful = raised_countries(
            written, min_level=level, newly_listed={c.country for c in written}
        )
        if not hopeful:
            return []
        new = [r.country for r in hopeful if r.kind == "new"]
        listed = await self._index.newly_listed(source, new) if new else set()
        return raised_countries(written, min_level=level, newly_listed=listed)

    # ------------------------------------------------------------------ index

    @activity.defn
    async def fetch_index(self, inp: IndexInput) -> IndexResult:
        """Fetch a source's index; store what it carries; plan changed countries."""
        info = activity.info()
        spec = get_source(inp.source)
        source = spec.id
        url = self._settings.index_url(spec)
        await self._start_jobs([(inp.job_key, None)], source=source, kind="index")
        ledger = _Ledger()
        # A killed worker's index must be retried after the heartbeat timeout, not after the
        # start-to-close timeout: beat on a clock while fetching, parsing and storing.
        ticker = asyncio.create_task(_beat_every(BATCH_HEARTBEAT_SECONDS, "index"))
        try:
            try:
                # A forced run asks unconditionally; a follow-up's request stays conditional.
                conditional = not inp.countries or inp.followup
                result = await self._get(
                    source, url, kind="index", conditional=conditional, ledger=ledger
                )
                pages = await self._index_pages(
                    spec, url, result, conditional=conditional, ledger=ledger
                )
                if pages:
                    result = _pages_summary(pages)
            except Deferred as wait:
                await self._jobs.set_status([inp.job_key], "pending")
                return IndexResult(source, deferred_seconds=wait.wait_seconds)
            except Exception as exc:
                await self._raise_failure(
                    inp.job_key, exc, info.attempt, inp.retry, attempts_before=0
                )
            try:
                index = await self._apply_index(spec, inp, result, pages)
            except Exception as exc:
                await self._raise_failure(
                    inp.job_key, exc, info.attempt, inp.retry, attempts_before=0
                )
        finally:
            ticker.cancel()
            await self._flush(ledger)
        await self._jobs.finish(
            JobFinish(
                job_key=inp.job_key,
                status="success",
                http_status=result.status,
                requests_made=result.requests_made,
                items_seen=index.items_seen,
                versions_created=index.versions_created,
            ),
            peak_rss_mb=_rss_mb(),
        )
        log.info(
            "%s index: HTTP %s, %d countries, %d new versions, %d documents to fetch",
            source,
            result.status,
            index.items_seen,
            index.versions_created,
            len(index.tasks),
        )
        return index

    async def _index_pages(
        self,
        spec: SourceSpec,
        url: str,
        first: FetchResult,
        *,
        conditional: bool,
        ledger: _Ledger,
    ) -> list[_IndexPage]:
        """Every page of a paged index, from its first page's response.

        Empty for a source whose index is one document. Each page is a request of its
        own (rate limit, conditional GET with its own validators); the pages are read
        here, inside the activity, so only counts reach the workflow.

        Raises:
            ContractError: if the index takes more than the source's ``index_max_pages``.
        """
        if spec.index_pager is None:
            return []
        source = spec.id
        pages = [await self._index_page(spec, first, spec.index_pager, ledger)]
        while (query := pages[-1].page.next_query) is not None:
            if len(pages) >= spec.index_max_pages:
                raise ContractError(
                    source, url, f"the index has more than {spec.index_max_pages} pages"
                )
            result = await self._get(
                source, page_url(url, query), kind="index", conditional=conditional, ledger=ledger
            )
            pages.append(await self._index_page(spec, result, spec.index_pager, ledger))
        return pages

    async def _index_page(
        self, spec: SourceSpec, result: FetchResult, pager: IndexPager, ledger: _Ledger
    ) -> _IndexPage:
        """One page read: a 304's body is the one stored (the next page depends on it)."""
        source = spec.id
        stored = await self._documents.get(source, result.url)
        body = result.body
        if result.not_modified:
            kept = await self._documents.raw(stored.body_sha256) if stored else None
            if kept is None:
                # Validators outlived their body: ask for the page itself.
                result = await self._get(
                    source, result.url, kind="index", conditional=False, ledger=ledger
                )
                stored, kept = None, result.body
            body = kept
        return _IndexPage(result, body, pager(body, url=result.url), stored)

    async def _apply_index(
        self,
        spec: SourceSpec,
        inp: IndexInput,
        result: FetchResult,
        pages: Sequence[_IndexPage] = (),
    ) -> IndexResult:
        """Store and plan from the index: ``result``, or (a paged index) its ``pages``."""
        source = spec.id
        parser = spec.parser
        versions = seen = 0
        written: Sequence[StoredChange] = ()
        forced = set(inp.countries or [])
        unchanged = result.not_modified
        if pages:
            # Unchanged only when every page is; a forced run reads its countries whatever.
            unchanged = all(p.unchanged for p in pages) and (not forced or inp.followup)
        if unchanged:
            for same in pages:
                if not same.result.not_modified and same.stored is not None:
                    # The same body under new validators: keep them for the next request.
                    await self._remember(source, same.result, same.stored.body_sha256)
            seen = await self._documents.touch_source(source, checked_at=result.fetched_at)
            pending = [
                (p.country, p.document_path, p.entry_hash)
                for p in await self._index.pending(source)
            ]
            if forced and inp.followup:
                # Unchanged index: the follow-up's countries as last listed (an index that
                # carries the advisories has nothing newer to give).
                pending = []
                for country in sorted(forced):
                    row = await self._index.entry(source, country)
                    if row is not None and row["document_path"] is not None:
                        pending.append((country, row["document_path"], row["entry_hash"]))
        else:
            # The index's documents: the one, or every page (a 304's: its stored body and
            # hash), with whether it is parsed (not an empty page past the last).
            parts = [
                (p.result, p.body, i == 0 or p.page.records > 0, p.stored, p.result.not_modified)
                for i, p in enumerate(pages)
            ] or [(result, result.body, True, None, False)]
            shas: list[str] = []
            entries: list[IndexEntry] = []
            page_of: dict[str, int] = {}
            for number, (response, body, parse, before, not_modified) in enumerate(parts):
                if not_modified and before is not None:
                    sha = before.body_sha256
                else:
                    sha = await self._documents.save_raw(
                        source, response.url, body, fetched_at=response.fetched_at
                    )
                shas.append(sha)
                if not parse:
                    continue
                # Parsed on the event loop, not on a thread: parsing holds the GIL, so a
                # thread buys no parallelism, only contention. On the full bench crawl,
                # indexes parsed on threads cost the worker about 1 s more CPU (1.23-1.36x
                # the bare loop against 1.13x inline). The longest parse, the US feed
                # (0.1-0.3 s once per cycle), holds the loop far less long than any
                # heartbeat or query deadline.
                listed = parser.parse_index(body, url=response.url, fetched_at=response.fetched_at)
                for entry in listed:
                    if page_of.setdefault(entry.country, number) != number:
                        # Records moved between two pages' requests: ask again (a retry).
                        raise ContractError(
                            source, response.url, f"{entry.country} is listed on two pages"
                        )
                entries += listed
            if not entries:
                raise ContractError(source, result.url, "the index lists no countries")
            seen = len(entries)
            missing = forced - {e.country for e in entries}
            if missing and not inp.followup:  # a follow-up's list may be older than the index
                raise ContractError(
                    source, result.url, f"the index does not list {', '.join(sorted(missing))}"
                )
            carries = [e for e in entries if e.advisory is not None]
            kept = [e for e in carries if not forced or e.country in forced]
            written = []
            for number, sha in enumerate(shas):
                carried = [
                    e.advisory
                    for e in kept
                    if e.advisory is not None and page_of[e.country] == number
                ]
                if carried:
                    stored = await self._advisories.store(
                        carried, fetched_at=parts[number][0].fetched_at, document_sha256=sha
                    )
                    versions += stored.versions_created
                    written += stored.written
            planned = await self._index.record(source, entries, seen_at=result.fetched_at)
            await self._index.mark_stored(source, {e.country: e.entry_hash for e in kept})
            # A forced run that stored only its countries of an index carrying every advisory
            # keeps the old validators: the next cycle's conditional GET must not answer 304
            # past the advisories it left unstored.
            if len(kept) == len(carries):
                for (response, _, _, _, not_modified), sha in zip(parts, shas, strict=True):
                    if not not_modified:  # a 304 page keeps the validators it has
                        await self._remember(source, response, sha)
            pending = [(p.country, p.document_path, p.entry_hash) for p in planned]
            if forced:
                pending = [
                    (e.country, e.document_path, e.entry_hash)
                    for e in entries
                    if e.country in forced and e.document_path is not None
                ]
        tasks = await self._plan_jobs(inp, pending)
        return IndexResult(
            source=source,
            http_status=result.status,
            not_modified=unchanged,
            items_seen=seen,
            versions_created=versions,
            requests_made=result.requests_made,
            tasks=tasks,
            # After ``record``: whether a new country is newly listed needs its entry.
            raised=await self._raised(source, written),
        )

    async def _plan_jobs(
        self, inp: IndexInput, pending: Sequence[tuple[str, str | None, str]]
    ) -> list[CountryTask]:
        keys = [(f"{inp.job_prefix}/country/{country}", country) for country, _, _ in pending]
        ids = await self._jobs.plan(
            source=inp.source,
            kind="country",
            jobs=keys,
            workflow_id=activity.info().workflow_id or "",
        )
        return [
            CountryTask(
                country=country,
                document_path=path,
                job_key=key,
                job_id=ids.get(key, 0),
                entry_hash=entry_hash,
            )
            for (key, _), (country, path, entry_hash) in zip(keys, pending, strict=True)
        ]

    # ------------------------------------------------------------------ countries

    async def _scrape_one(self, spec: SourceSpec, task: CountryTask, ledger: _Ledger) -> _Stored:
        # The document's slot: from its request until what it carried is stored.
        async with contextlib.AsyncExitStack() as hold:
            if task.document_path is None:
                return await self._scrape_from_index(spec, task, ledger, hold)
            return await self._scrape_document(spec, task, task.document_path, ledger, hold)

    async def _scrape_document(
        self,
        spec: SourceSpec,
        task: CountryTask,
        path: str,
        ledger: _Ledger,
        hold: contextlib.AsyncExitStack,
    ) -> _Stored:
        source = spec.id
        url = self._settings.base_url(spec) + path
        result = await self._get(
            source, url, kind="document", conditional=True, ledger=ledger, hold=hold
        )
        versions = 0
        raised: list[RaisedCountry] = []
        if not result.not_modified:
            sha = await self._documents.save_raw(
                source, result.url, result.body, fetched_at=result.fetched_at
            )
            # On the loop, like the index (about a millisecond).
            advisory = spec.parser.parse_document(
                result.body, url=result.url, fetched_at=result.fetched_at
            )
            if advisory.country != task.country:
                raise ContractError(
                    source,
                    result.url,
                    f"document is about {advisory.country}, the index said {task.country}",
                )
            stored = await self._advisories.store(
                [advisory], fetched_at=result.fetched_at, document_sha256=sha
            )
            versions = stored.versions_created
            raised = await self._raised(source, stored.written)
            await self._remember(source, result, sha)
        if task.entry_hash:
            await self._index.mark_stored(source, {task.country: task.entry_hash})
        return _Stored(versions, result.requests_made, result.not_modified, result.status, raised)

    async def _scrape_from_index(
        self, spec: SourceSpec, task: CountryTask, ledger: _Ledger, hold: contextlib.AsyncExitStack
    ) -> _Stored:
        """Sources whose index carries the advisory: one country out of the index."""
        source = spec.id
        url = self._settings.index_url(spec)
        result = await self._get(
            source, url, kind="index", conditional=False, ledger=ledger, hold=hold
        )
        sha = await self._documents.save_raw(
            source, result.url, result.body, fetched_at=result.fetched_at
        )
        advisories = spec.parser.parse_file(
            result.body, url=result.url, fetched_at=result.fetched_at
        )
        mine = [a for a in advisories if a.country == task.country]
        if not mine:
            raise ContractError(source, result.url, f"the index does not list {task.country}")
        stored = await self._advisories.store(
            mine, fetched_at=result.fetched_at, document_sha256=sha
        )
        raised = await self._raised(source, stored.written)
        return _Stored(stored.versions_created, result.requests_made, False, result.status, raised)

    @activity.defn
    async def scrape_countries(self, inp: BatchInput) -> BatchResult:
        """Fetch a batch of countries; one outcome per country, never a batch failure."""
        spec = get_source(inp.source)
        # A batch is each country's first attempt (the per-country retries count on from it).
        await self._start_jobs(
            [(task.job_key, task.country) for task in inp.tasks],
            source=inp.source,
            kind="country",
            attempt=1,
        )
        ledger = _Ledger()
        semaphore = asyncio.Semaphore(inp.concurrency)
        total = len(inp.tasks)
        done = 0
        last_beat = last_flush = time.monotonic()

        async def one(task: CountryTask) -> CountryOutcome:
            nonlocal done, last_beat, last_flush
            async with semaphore:
                outcome = await self._batch_one(spec, task, ledger)
            done += 1
            now = time.monotonic()
            if now - last_beat >= PROGRESS_HEARTBEAT_SECONDS:
                last_beat = now
                activity.heartbeat(f"{done}/{total}")
            if now - last_flush >= LEDGER_FLUSH_SECONDS:
                last_flush = now
                await self._flush(ledger)
            return outcome

        async def keep_beating() -> None:
            # One slow country (rate-limit wait + HTTP timeout) must not look like a lost
            # worker: beat on a clock, not only on progress.
            while True:
                await asyncio.sleep(BATCH_HEARTBEAT_SECONDS)
                activity.heartbeat(f"{done}/{total}")

        ticker = asyncio.create_task(keep_beating())
        try:
            outcomes = await asyncio.gather(*(one(t) for t in inp.tasks))
        finally:
            ticker.cancel()
            await self._flush(ledger)
        return BatchResult(list(outcomes))

    async def _batch_one(
        self, spec: SourceSpec, task: CountryTask, ledger: _Ledger
    ) -> CountryOutcome:
        started = time.monotonic()
        try:
            stored = await self._scrape_one(spec, task, ledger)
        except Deferred as wait:
            await self._jobs.set_status([task.job_key], "pending")
            return CountryOutcome(task.country, "deferred", wait_seconds=wait.wait_seconds)
        except Exception as exc:
            kind = classify_failure(exc)
            status = exc.status if isinstance(exc, FetchError) else None
            await self._record_failure(task.job_key, exc, "retry" if kind.retryable else "failure")
            return CountryOutcome(
                task.country,
                "failed",
                failure_kind=kind.value,
                message=str(exc),
                http_status=status,
                traceback=_traceback(exc),
                retryable=kind.retryable,
                requests_made=1,
                failed_at=_now_iso(),
            )
        ledger.finished.append(_job_done(task, stored, started))
        return CountryOutcome(
            task.country,
            "ok",
            versions_created=stored.versions_created,
            requests_made=stored.requests_made,
            raised=stored.raised,
        )

    @activity.defn
    async def scrape_country(self, inp: CountryInput) -> CountryResult:
        """One country under the retry policy (with jittered backoff)."""
        info = activity.info()
        spec = get_source(inp.source)
        task = inp.task
        await self._start_jobs(
            [(task.job_key, task.country)],
            source=inp.source,
            kind="country",
            attempt=inp.attempts_before + info.attempt,
        )
        ledger = _Ledger()
        started = time.monotonic()
        try:
            try:
                stored = await self._scrape_one(spec, task, ledger)
            except Deferred as wait:
                await self._jobs.set_status([task.job_key], "pending")
                return CountryResult(task.country, deferred_seconds=wait.wait_seconds)
            except Exception as exc:
                await self._raise_failure(
                    task.job_key, exc, info.attempt, inp.retry, attempts_before=inp.attempts_before
                )
            ledger.finished.append(_job_done(task, stored, started))
        finally:
            await self._flush(ledger)
        return CountryResult(
            task.country,
            versions_created=stored.versions_created,
            requests_made=stored.requests_made,
            not_modified=stored.not_modified,
            raised=stored.raised,
        )

    # ------------------------------------------------------------------ failures

    async def _record_failure(self, job_key: str, exc: BaseException, status: str) -> None:
        await self._jobs.finish(
            JobFinish(
                job_key=job_key,
                status=status,
                http_status=exc.status if isinstance(exc, FetchError) else None,
                requests_made=1,
                error=str(exc),
                traceback=_traceback(exc),
            ),
            peak_rss_mb=_rss_mb(),
        )

    async def _raise_failure(
        self,
        job_key: str,
        exc: BaseException,
        attempt: int,
        retry: RetryConfig,
        *,
        attempts_before: int,
    ) -> None:
        """Record the failure and raise the ApplicationError Temporal retries (or not)."""
        kind = classify_failure(exc)
        total_attempt = attempts_before + attempt
        final = not kind.retryable or total_attempt >= retry.maximum_attempts
        await self._record_failure(job_key, exc, "failure" if final else "retry")
        retry_after = exc.retry_after if isinstance(exc, FetchError) else None
        delay = backoff_seconds(
            total_attempt,
            initial=retry.initial_seconds,
            maximum=retry.maximum_seconds,
            rand=random.random(),
            retry_after=retry_after,
        )
        raise ApplicationError(
            str(exc),
            {
                "kind": kind.value,
                "http_status": exc.status if isinstance(exc, FetchError) else None,
                "traceback": _traceback(exc),
                "attempt": total_attempt,
                "failed_at": _now_iso(),
            },
            type=kind.value,
            non_retryable=not kind.retryable,
            next_retry_delay=timedelta(seconds=delay),
            # Failures are expected and counted; the worker log stays quiet.
            category=ApplicationErrorCategory.BENIGN,
        ) from exc

    # ------------------------------------------------------------------ bookkeeping

    @activity.defn
    async def finish_cycle(self, inp: CycleSummary) -> None:
        """Record the cycle's own job row."""
        await self._start_jobs(
            [(inp.job_key, None)],
            source=inp.source,
            kind="cycle",
            attempt=1,
            started_at=datetime.fromisoformat(inp.started_at) if inp.started_at else None,
        )
        await self._jobs.finish(
            JobFinish(
                job_key=inp.job_key,
                status=inp.status,
                requests_made=inp.requests_made,
                items_seen=inp.items_seen,
                versions_created=inp.versions_created,
                error=inp.error,
            ),
            peak_rss_mb=_rss_mb(),
        )

    @activity.defn
    async def set_job_status(self, inp: JobStatusInput) -> None:
        """Move job rows to a status (e.g. ``dead_letter`` once quarantined)."""
        await self._jobs.set_status(inp.job_keys, inp.status)

    @activity.defn
    async def followup_targets(self, inp: FollowUpTargetsInput) -> FollowUpTargets:
        """Which other sources' indexes list the countries ``inp.source`` just raised."""
        return FollowUpTargets(await self._index.listing(inp.countries, exclude=inp.source))


def _pages_summary(pages: Sequence[_IndexPage]) -> FetchResult:
    """A paged index's response as the job and the log report it.

    The first page that answered with a body (else the first page), with every page's
    requests counted.
    """
    answered = [p.result for p in pages if not p.result.not_modified] or [pages[0].result]
    return replace(answered[0], requests_made=sum(p.result.requests_made for p in pages))


def _job_done(task: CountryTask, stored: _Stored, started: float) -> JobFinish:
    return JobFinish(
        job_key=task.job_key,
        status="success",
        http_status=stored.http_status,
        requests_made=stored.requests_made,
        items_seen=1,
        versions_created=stored.versions_created,
        started=started,
        finished=time.monotonic(),
    )


def _traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))[-8000:]
