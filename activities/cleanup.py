"""Cleanup of old operational data, in small batches, never touching current advisories.

What goes once older than the retention (``days``, and never less than
``MIN_RETENTION``):

* ``scrape_jobs`` rows (except the job of an open dead letter, which
  ``dead-letters`` and ``requeue`` still show);
* ``source_requests`` rows, but never those the rate limiter still reads (the
  last hour, or longer when a policy's look-back is longer);
* ``health_checks`` rows, when that table exists;
* ``reports``;
* ``webhook_deliveries`` that are finished: ``delivered``, ``failed`` (out of
  attempts) or ``abandoned`` (target no longer configured), by their last
  attempt; never a ``pending`` one, nor one a change notification still needs
  (below);
* ``alerts`` that are ``resolved``, by when they resolved; never a ``firing``
  one. A check that fails again fires exactly as it would have with the
  resolved row in place (``advisories.health.reconcile`` treats "no alert" and
  "resolved" alike);
* ``dead_letter_jobs`` whose quarantine is closed (``recovered`` or
  ``resolved``), by their last update; never an ``open`` or ``requeued`` one;
* raw ``documents`` no current advisory needs.

What stays, whatever its age: ``advisories`` (the current advisory of every
country), every ``advisory_versions`` row (the history, with its level, title,
summary and hash), ``changes``, ``index_entries``, open dead letters, firing
alerts, pending webhook deliveries, and these raw documents: the one of each
current advisory (``advisories.version_id → advisory_versions.document_sha256``),
the one of the latest version of each source and country (the same one unless
something is inconsistent), and the last good response of each URL
(``source_documents.body_sha256``), which ``reparse`` and debugging of the
source's current format need.

Change notifications re-scan the changes detected shortly before their cursor
last moved (``store.health.CURSOR_OVERLAP``) and rely on the unique
``(target_key, delivery_id)`` of ``webhook_deliveries`` to drop the ones already
queued. So deliveries created after that point stay whatever the retention,
or a stalled health schedule would re-send them once it runs again.

A raw document only older versions reference is deleted after those versions'
``document_sha256`` is set to NULL, in the same transaction. The version keeps
everything that was derived from the document; only the bytes go. The other
choice, keeping every document any version references, would keep every raw
body ever seen (every edition of the US feed is one), which is the growth a
retention exists to stop.

Every batch is its own short transaction, so a large table is never locked for
long and other work (scrapes, the rate limiter) goes on in between.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from advisories.ratelimit import lookback
from advisories.sources import SOURCES, source_ids
from store.cleanup import CleanupStore
from store.health import CURSOR_OVERLAP
from store.ratelimits import RateLimitStore

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "MIN_RETENTION",
    "TABLES",
    "Cleaner",
    "CleanupActivities",
    "CleanupInput",
    "CleanupResult",
    "Progress",
]

log = logging.getLogger(__name__)

#: Retention of the daily schedule and the ``cleanup`` command unless told otherwise.
DEFAULT_RETENTION_DAYS: Final = 30.0

#: Nothing younger than this is ever deleted: running jobs keep their rows and
#: the rate limiter its last hour of requests, whatever ``days`` says.
MIN_RETENTION: Final = timedelta(hours=1)

#: Tables cleaned, in order.
TABLES: Final = (
    "scrape_jobs",
    "source_requests",
    "health_checks",
    "reports",
    "webhook_deliveries",
    "alerts",
    "dead_letter_jobs",
    "documents",
)

#: ``(table, deleted so far, finished)`` after each batch.
Progress = Callable[[str, int, bool], None]

# Tables of later migrations than this module's first: looked up before use.
_OPTIONAL: Final = frozenset({"health_checks", "webhook_deliveries", "alerts"})


@dataclass(frozen=True)
class CleanupInput:
    """Input of ``cleanup`` and of ``CleanupWorkflow``.

    Attributes:
        days: Retention: rows older than this many days go (at least ``MIN_RETENTION``
            is always kept; 0 means "everything older than that").
        dry_run: Count what would go; delete nothing.
        batch_size: Rows deleted per transaction.
    """

    days: float = DEFAULT_RETENTION_DAYS
    dry_run: bool = False
    batch_size: int = 2000


@dataclass(frozen=True)
class CleanupResult:
    """What a cleanup deleted (or, dry run, would delete).

    Attributes:
        counts: Rows per table, every table of ``TABLES`` that exists.
        versions_detached: ``advisory_versions`` rows whose reference to a
            deleted raw document was cleared (the rows themselves stay).
        cutoffs: Per table, the ISO 8601 instant before which rows went.
        skipped: Tables not present in this database.
        dry_run: Nothing was deleted.
    """

    counts: dict[str, int] = field(default_factory=dict)
    versions_detached: int = 0
    cutoffs: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    dry_run: bool = False


def validate(inp: CleanupInput) -> None:
    """Raises ValueError for a negative retention or a batch size below 1."""
    if inp.days < 0:
        raise ValueError(f"days must be >= 0, got {inp.days:g}")
    if inp.batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {inp.batch_size}")


def retention(days: float, *, minimum: timedelta = MIN_RETENTION) -> timedelta:
    """How much recent data a cleanup of ``days`` keeps: ``days``, at least ``minimum``."""
    return max(timedelta(days=days), minimum)


class Cleaner:
    """Deletes old rows of the operational tables in batches."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._store = CleanupStore(pool)

    async def run(self, inp: CleanupInput, *, progress: Progress | None = None) -> CleanupResult:
        """Clean every table of ``TABLES`` that exists.

        Raises:
            ValueError: for an invalid input (nothing is deleted).
        """
        validate(inp)
        report = progress or (lambda table, n, done: None)
        now = await self._store.clock()
        keep = retention(inp.days)
        # The rate limiter reads the requests of its look-back window.
        request_keep = max(keep, await self._rate_limit_lookback())
        counts: dict[str, int] = {}
        cutoffs: dict[str, str] = {}
        skipped: list[str] = []
        detached = 0
        for table in TABLES:
            if table in _OPTIONAL and not await self._store.exists(table):
                skipped.append(table)
                continue
            cutoff = now - (request_keep if table == "source_requests" else keep)
            if table == "webhook_deliveries" and (rescan := await self._change_rescan_start()):
                cutoff = min(cutoff, rescan)
            if table == "documents":
                counts[table], detached = await self._documents(inp, cutoff, report)
            else:
                counts[table] = await self._by_age(table, inp, cutoff, report)
            cutoffs[table] = cutoff.isoformat()
        log.info(
            "cleanup%s: %s; %d versions detached from deleted documents",
            " (dry run)" if inp.dry_run else "",
            counts,
            detached,
        )
        return CleanupResult(
            counts=counts,
            versions_detached=detached,
            cutoffs=cutoffs,
            skipped=skipped,
            dry_run=inp.dry_run,
        )

    async def _rate_limit_lookback(self) -> timedelta:
        store = RateLimitStore(self._pool)
        longest = timedelta(0)
        for source in source_ids():
            try:
                policy = await store.policy(source)
            except LookupError:
                policy = SOURCES[source].rate_limit
            longest = max(longest, lookback(policy))
        return longest

    async def _change_rescan_start(self) -> datetime | None:
        """Where change notifications next re-scan from (None before the first one)."""
        updated_at = await self._store.changes_cursor_moved_at()
        return None if updated_at is None else updated_at - CURSOR_OVERLAP

    async def _by_age(
        self, table: str, inp: CleanupInput, cutoff: datetime, report: Progress
    ) -> int:
        if inp.dry_run:
            count = await self._store.count_old(table, cutoff)
            report(table, count, True)
            return count
        total = 0
        while True:
            deleted = await self._store.delete_old(table, cutoff, inp.batch_size)
            total += deleted
            done = deleted < inp.batch_size
            report(table, total, done)
            if done:
                return total

    async def _documents(
        self, inp: CleanupInput, cutoff: datetime, report: Progress
    ) -> tuple[int, int]:
        """Delete unneeded raw documents; returns (documents deleted, versions detached)."""
        if inp.dry_run:
            count, detached = await self._store.count_old_documents(cutoff)
            report("documents", count, True)
            return count, detached
        deleted = detached = 0
        while True:
            candidates, batch_deleted, batch_detached = await self._store.delete_old_documents(
                cutoff, inp.batch_size
            )
            deleted += batch_deleted
            detached += batch_detached
            done = candidates < inp.batch_size
            report("documents", deleted, done)
            if done:
                return deleted, detached


class CleanupActivities:
    """Constructed once per worker."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._cleaner = Cleaner(pool)

    @activity.defn
    async def cleanup(self, inp: CleanupInput) -> CleanupResult:
        """Delete old operational rows; heartbeats ``{table: deleted so far}`` per batch."""
        try:
            validate(inp)
        except ValueError as exc:
            raise ApplicationError(str(exc), type="InvalidInput", non_retryable=True) from exc
        done: dict[str, int] = {}

        def heartbeat(table: str, deleted: int, finished: bool) -> None:
            done[table] = deleted
            activity.heartbeat(dict(done))

        return await self._cleaner.run(inp, progress=heartbeat)
