"""Scrape activities: fetch, parse and store — thin over the domain code."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import traceback
from datetime import timedelta

import asyncpg
import psutil
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.http import SourceHttpClient
from activities.store import AdvisoryStore, DocumentState, DocumentStore, JobStore, create_pool
from activities.types import ScrapeIndexInput, ScrapeIndexResult
from advisories.errors import ContractError, FetchError, ParseError
from advisories.parsers import parser_for
from advisories.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["ScrapeActivities", "create_pool"]


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / (1024 * 1024)


class ScrapeActivities:
    """Activities that talk to the sources; constructed once per worker."""

    def __init__(self, *, settings: Settings, pool: asyncpg.Pool, http: SourceHttpClient) -> None:
        self._settings = settings
        self._http = http
        self._advisories = AdvisoryStore(pool)
        self._documents = DocumentStore(pool)
        self._jobs = JobStore(pool)

    @activity.defn
    async def scrape_index(self, inp: ScrapeIndexInput) -> ScrapeIndexResult:
        """Fetch a source's index, parse it and store what changed."""
        info = activity.info()
        source = inp.source
        url = self._settings.index_url(source)
        await self._jobs.start(
            job_key=inp.job_key,
            source=source,
            kind="index",
            workflow_id=info.workflow_id,
            run_id=info.workflow_run_id,
            activity_id=info.activity_id,
            attempt=info.attempt,
        )
        peak = _rss_mb()
        try:
            state = await self._documents.get(source, url)
            fetched = await self._http.fetch(
                source,
                url,
                etag=state.etag if state else None,
                last_modified=state.last_modified if state else None,
            )
            if fetched.not_modified:
                touched = await self._documents.touch_source(source, checked_at=fetched.fetched_at)
                result = ScrapeIndexResult(source, 304, True, touched, 0, fetched.requests_made)
            else:
                advisories = await asyncio.to_thread(
                    parser_for(source).parse_file,
                    fetched.body,
                    url=fetched.url,
                    fetched_at=fetched.fetched_at,
                )
                if not advisories:
                    raise ContractError(source, url, "index lists no countries")
                stored = await self._advisories.store(advisories, fetched_at=fetched.fetched_at)
                await self._documents.put(
                    source,
                    url,
                    DocumentState(
                        fetched.etag,
                        fetched.last_modified,
                        hashlib.sha256(fetched.body).hexdigest(),
                    ),
                    fetched_at=fetched.fetched_at,
                )
                result = ScrapeIndexResult(
                    source,
                    fetched.status,
                    False,
                    stored.seen,
                    stored.versions_created,
                    fetched.requests_made,
                )
        except ParseError as exc:
            await self._fail(inp, "failure", exc)
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from exc
        except FetchError as exc:
            final = not exc.retryable or info.attempt >= inp.is_last_attempt_at
            await self._fail(inp, "failure" if final else "retry", exc, http_status=exc.status)
            delay = timedelta(seconds=exc.retry_after) if exc.retry_after else None
            raise ApplicationError(
                str(exc), type=exc.kind, non_retryable=not exc.retryable, next_retry_delay=delay
            ) from exc
        except Exception as exc:
            final = info.attempt >= inp.is_last_attempt_at
            await self._fail(inp, "failure" if final else "retry", exc)
            raise
        peak = max(peak, _rss_mb())
        await self._jobs.finish(
            job_key=inp.job_key,
            status="success",
            http_status=result.http_status,
            requests_made=result.requests_made,
            items_seen=result.items_seen,
            versions_created=result.versions_created,
            peak_rss_mb=peak,
        )
        log.info(
            "scraped %s index: HTTP %s, %d countries, %d new versions",
            source,
            result.http_status,
            result.items_seen,
            result.versions_created,
        )
        return result

    async def _fail(
        self,
        inp: ScrapeIndexInput,
        status: str,
        exc: BaseException,
        *,
        http_status: int | None = None,
    ) -> None:
        await self._jobs.finish(
            job_key=inp.job_key,
            status=status,
            http_status=http_status,
            requests_made=1,
            error=str(exc),
            traceback="".join(traceback.format_exception(exc)),
            peak_rss_mb=_rss_mb(),
        )
