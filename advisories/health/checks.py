"""The checks: a :class:`MetricsSnapshot` and thresholds in, one :class:`CheckResult`
per check and subject out (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from advisories.health.definitions import FAILED_STATUSES, CheckName, Thresholds
from advisories.health.metrics import MetricsSnapshot, QueueMetrics, SourceMetrics, WorkerMetrics
from advisories.text import one_line

__all__ = [
    "CheckResult",
    "check_freshness",
    "check_index_canary",
    "check_index_fetch",
    "check_queue",
    "check_rate_limit",
    "check_success_rate",
    "check_worker_memory",
    "evaluate",
    "failing",
]

# Longest error message a check's detail quotes (on one line).
_QUOTE_LIMIT: Final = 300


@dataclass(frozen=True)
class CheckResult:
    """The verdict of one check on one subject.

    Attributes:
        name: The check (a :class:`CheckName` value).
        ok: False when the check fails.
        value: What was measured (None when there is nothing to measure).
        threshold: Where it turns bad.
        detail: One line for people.
        source: The source it is about, if any.
        queue: The task queue it is about, if any.
        worker: The worker identity (or ``jobs``) it is about, if any.
    """

    name: str
    ok: bool
    value: float | None = None
    threshold: float | None = None
    detail: str = ""
    source: str | None = None
    queue: str | None = None
    worker: str | None = None

    @property
    def subject(self) -> str | None:
        """The source, queue or worker this is about."""
        return self.source or self.queue or self.worker

    @property
    def key(self) -> str:
        """The alert's dedup key: the check and its subject."""
        return f"{self.name}:{self.subject}" if self.subject else self.name


def evaluate(snapshot: MetricsSnapshot, thresholds: Thresholds) -> list[CheckResult]:
    """Every check on ``snapshot``.

    When PostgreSQL (or Temporal) is down, the checks that need its data are
    left out rather than guessed: only the ``database`` (or ``temporal``) check
    speaks for them.
    """
    now = _parse(snapshot.collected_at)
    results = [
        CheckResult(
            CheckName.DATABASE,
            snapshot.database_ok,
            detail="ok" if snapshot.database_ok else f"unreachable: {snapshot.database_error}",
        ),
        CheckResult(
            CheckName.TEMPORAL,
            snapshot.temporal_ok,
            detail="ok" if snapshot.temporal_ok else f"unreachable: {snapshot.temporal_error}",
        ),
    ]
    if snapshot.database_ok:
        for source in snapshot.sources:
            results += [
                check_success_rate(source, thresholds, hours=snapshot.hours),
                check_index_fetch(source),
                check_freshness(source, thresholds, now=now),
                check_index_canary(source, thresholds),
                check_rate_limit(source, thresholds),
            ]
        results += check_worker_memory(snapshot.workers, snapshot.sources, thresholds)
    if snapshot.temporal_ok:
        for queue in snapshot.queues:
            results += check_queue(queue, thresholds)
    return results


def failing(results: Iterable[CheckResult]) -> list[str]:
    """Dedup keys of the failing results, sorted."""
    return sorted(r.key for r in results if not r.ok)


def check_success_rate(
    source: SourceMetrics, thresholds: Thresholds, *, hours: float
) -> CheckResult:
    """Fetch success rate of one source over the window."""
    rate = source.success_rate
    if rate is None or source.fetches_finished < thresholds.success_min_jobs:
        return CheckResult(
            CheckName.SUCCESS_RATE,
            True,
            rate,
            thresholds.success_rate_min,
            f"{source.fetches_finished} finished fetches in {hours:g} h: too few to judge",
            source=source.source,
        )
    return CheckResult(
        CheckName.SUCCESS_RATE,
        rate >= thresholds.success_rate_min,
        rate,
        thresholds.success_rate_min,
        f"{source.fetches_succeeded} of {source.fetches_finished} fetches succeeded in {hours:g} h",
        source=source.source,
    )


def check_index_fetch(source: SourceMetrics) -> CheckResult:
    """Whether the newest index fetch of the source worked (it answers now)."""
    status = source.last_index_status
    if status is None:
        return CheckResult(
            CheckName.INDEX_FETCH, True, detail="no index fetch yet", source=source.source
        )
    ok = status not in FAILED_STATUSES
    detail = f"latest index fetch: {status}"
    if not ok and source.last_index_error:
        detail += f": {one_line(source.last_index_error, limit=_QUOTE_LIMIT)}"
    return CheckResult(CheckName.INDEX_FETCH, ok, detail=detail, source=source.source)


def check_freshness(source: SourceMetrics, thresholds: Thresholds, *, now: datetime) -> CheckResult:
    """Whether the source was polled successfully within the allowed age."""
    limit_hours = thresholds.freshness_factor * source.interval_seconds / 3600
    if source.last_success_at is None:
        return CheckResult(
            CheckName.FRESHNESS,
            False,
            None,
            round(limit_hours, 2),
            "no successful index fetch yet",
            source=source.source,
        )
    age_hours = (now - _parse(source.last_success_at)).total_seconds() / 3600
    return CheckResult(
        CheckName.FRESHNESS,
        age_hours <= limit_hours,
        round(age_hours, 2),
        round(limit_hours, 2),
        f"last successful index fetch {age_hours:.1f} h ago (limit {limit_hours:g} h)",
        source=source.source,
    )


def check_index_canary(source: SourceMetrics, thresholds: Thresholds) -> CheckResult:
    """An empty, broken or suddenly much shorter index is an incident, not a success."""
    name, subject = CheckName.INDEX_CANARY, source.source
    if source.index_contract_failure:
        return CheckResult(
            name,
            False,
            0,
            None,
            f"index quarantined: {one_line(source.index_contract_failure, limit=_QUOTE_LIMIT)}",
            source=subject,
        )
    latest, previous = source.index_count_latest, source.index_count_previous
    if latest is None:
        return CheckResult(name, True, None, None, "no full index fetched yet", source=subject)
    if latest == 0:
        return CheckResult(name, False, 0, None, "the index lists no countries", source=subject)
    if previous is None or previous == 0:
        return CheckResult(
            name, True, latest, None, f"{latest} countries (no earlier index)", source=subject
        )
    floor = round(thresholds.canary_min_ratio * previous, 1)
    return CheckResult(
        name,
        latest >= floor,
        latest,
        floor,
        f"{latest} countries listed, {previous} in the index before",
        source=subject,
    )


def check_rate_limit(source: SourceMetrics, thresholds: Thresholds) -> CheckResult:
    """Hourly budget use of one source."""
    name, limit = CheckName.RATE_LIMIT, thresholds.rate_limit_utilisation_max
    used = source.utilisation_percent
    if used is None:
        return CheckResult(
            name, True, None, limit, "no rate limit configured", source=source.source
        )
    if not source.rate_limit_enforced:
        return CheckResult(
            name, True, used, limit, f"{used:g} % (limit switched off)", source=source.source
        )
    return CheckResult(
        name, used <= limit, used, limit, f"{used:g} % of the hourly budget", source=source.source
    )


def check_queue(queue: QueueMetrics, thresholds: Thresholds) -> list[CheckResult]:
    """Backlog and live workers of one task queue."""
    if queue.error is not None:
        return [
            CheckResult(
                CheckName.QUEUE_WORKERS,
                False,
                None,
                1,
                f"cannot describe the queue: {one_line(queue.error, limit=_QUOTE_LIMIT)}",
                queue=queue.queue,
            )
        ]
    workers = queue.live_workers
    identities = sorted(queue.live_identities("workflow") | queue.live_identities("activity"))
    return [
        CheckResult(
            CheckName.QUEUE_BACKLOG,
            queue.backlog <= thresholds.backlog_max,
            queue.backlog,
            thresholds.backlog_max,
            f"{queue.workflow_backlog} workflow + {queue.activity_backlog} activity tasks"
            f" waiting, oldest {queue.backlog_age_seconds:.0f} s",
            queue=queue.queue,
        ),
        CheckResult(
            CheckName.QUEUE_WORKERS,
            workers >= 1,
            workers,
            1,
            f"live: {', '.join(identities)}" if identities else "no live worker polls this queue",
            queue=queue.queue,
        ),
    ]


def check_worker_memory(
    workers: Sequence[WorkerMetrics], sources: Sequence[SourceMetrics], thresholds: Thresholds
) -> list[CheckResult]:
    """RSS of each live worker (heartbeats) and of the jobs of the last hour."""
    limit = thresholds.worker_memory_max_mb
    results = [
        CheckResult(
            CheckName.WORKER_MEMORY,
            w.rss_mb <= limit,
            round(w.rss_mb, 1),
            limit,
            f"{w.rss_mb:.0f} MB now, peak {w.peak_rss_mb:.0f} MB",
            worker=w.identity,
        )
        for w in workers
        if w.live(thresholds.poller_stale_seconds)
    ]
    recent = [s.recent_peak_rss_mb for s in sources if s.recent_peak_rss_mb is not None]
    if recent:
        # Workers without a heartbeat still record their RSS with every job.
        peak = max(recent)
        results.append(
            CheckResult(
                CheckName.WORKER_MEMORY,
                peak <= limit,
                round(peak, 1),
                limit,
                f"peak {peak:.0f} MB recorded by scrape jobs in the last hour",
                worker="jobs",
            )
        )
    return results


def _parse(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
