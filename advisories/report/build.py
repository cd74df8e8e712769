"""Building the report: rows of a period in, the `Report` model out.

Pure: no clock, no database, no network. Rows are counted per source and per
time bucket (buckets aligned to multiples of their size since the Unix epoch);
percentiles interpolate linearly; the request budget comes from the rate-limit
policy in force.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from advisories.ratelimit import effective_policy
from advisories.report.model import (
    NOTABLE_KINDS,
    BucketStats,
    ChangeSummary,
    LevelCell,
    LevelMatrix,
    MatrixRow,
    QueueBacklog,
    Report,
    SourceStats,
)
from advisories.report.rows import (
    AdvisoryRow,
    BacklogPoint,
    ChangeRow,
    JobRow,
    ReportRows,
    RequestRow,
)
from advisories.sources import RateLimitPolicy

__all__ = [
    "FETCH_KINDS",
    "MAX_BUCKETS",
    "as_utc",
    "build_report",
    "choose_bucket",
    "percentile",
]

#: Job kinds that fetch something; their outcomes make the success rate. A
#: ``cycle`` row summarises the jobs of one source cycle and is counted apart.
FETCH_KINDS: Final = ("index", "country")
#: Job statuses that end a job; ``pending``, ``started`` and ``retry`` do not.
_SUCCESS: Final = "success"
_FAILED: Final = ("failure", "dead_letter")

#: Bucket sizes to choose from, smallest first; the first giving at most
#: ``MAX_BUCKETS`` buckets over the period wins.
_BUCKET_LADDER: Final = tuple(
    timedelta(minutes=m)
    for m in (1, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080, 20160, 43200)
)
MAX_BUCKETS: Final = 24


def choose_bucket(span: timedelta) -> timedelta:
    """The smallest bucket of the ladder giving at most ``MAX_BUCKETS`` buckets."""
    for size in _BUCKET_LADDER:
        if span / size <= MAX_BUCKETS:
            return size
    return _BUCKET_LADDER[-1]


def percentile(values: Sequence[float], p: float) -> float | None:
    """The ``p``-th percentile (0–100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def build_report(
    rows: ReportRows,
    *,
    start: datetime,
    end: datetime,
    generated_at: datetime | None = None,
    bucket: timedelta | None = None,
    max_changes: int = 100,
) -> Report:
    """Compute the report of ``[start, end)`` from ``rows``.

    Rows outside the period are ignored (except advisories, which are the
    current state). Buckets are aligned to multiples of their size since the
    Unix epoch, so two reports of overlapping periods share bucket edges.

    Raises:
        ValueError: if a time is naive or ``end`` is not after ``start``.
    """
    start, end = as_utc(start), as_utc(end)
    if end <= start:
        raise ValueError(f"period end {end.isoformat()} is not after its start")
    size = bucket or choose_bucket(end - start)
    buckets = _bucket_starts(start, end, size)
    seen: set[str] = set()
    for group in (rows.jobs, rows.requests, rows.advisories, rows.changes):
        seen.update(r.source for r in group)
    sources = tuple(rows.sources) or tuple(sorted(seen))

    def index(at: datetime) -> int | None:
        at = as_utc(at)
        if not start <= at < end:
            return None
        return int((at - buckets[0]) // size)

    jobs: dict[str, list[list[JobRow]]] = {s: [[] for _ in buckets] for s in sources}
    for job in rows.jobs:
        i = index(job.started_at)
        if i is not None and job.source in jobs:
            jobs[job.source][i].append(job)
    requests: dict[str, list[list[RequestRow]]] = {s: [[] for _ in buckets] for s in sources}
    for request in rows.requests:
        i = index(request.at)
        if i is not None and request.source in requests:
            requests[request.source][i].append(request)
    advisories = Counter(a.source for a in rows.advisories)

    stats = tuple(
        _source_stats(
            source,
            buckets,
            size,
            start,
            end,
            jobs[source],
            requests[source],
            rows.policies.get(source),
            advisories[source],
        )
        for source in sources
    )
    return Report(
        generated_at=as_utc(generated_at or end),
        period_start=start,
        period_end=end,
        bucket_seconds=int(size.total_seconds()),
        buckets=tuple(buckets),
        sources=stats,
        backlog=_backlog(rows.backlog),
        levels=_levels(sources, rows.advisories),
        changes=_changes(rows.changes, start, end, max_changes),
    )


def _bucket_starts(start: datetime, end: datetime, size: timedelta) -> list[datetime]:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    first = epoch + ((start - epoch) // size) * size
    starts = []
    at = first
    while at < end:
        starts.append(at)
        at += size
    return starts


def _fetch_outcomes(jobs: Iterable[JobRow]) -> tuple[Counter[str], int, int, list[float]]:
    """Statuses of the fetch jobs, finished, succeeded, and the finished ones' durations."""
    by_status: Counter[str] = Counter()
    durations: list[float] = []
    for job in jobs:
        if job.kind not in FETCH_KINDS:
            continue
        by_status[job.status] += 1
        if (job.status == _SUCCESS or job.status in _FAILED) and job.duration_ms is not None:
            durations.append(float(job.duration_ms))
    succeeded = by_status[_SUCCESS]
    finished = succeeded + sum(by_status[s] for s in _FAILED)
    return by_status, finished, succeeded, durations


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100 * part / whole, 1)


def _budget(
    policy: RateLimitPolicy | None, lo: datetime, hi: datetime, size: timedelta
) -> float | None:
    """Requests allowed in ``[lo, hi)``: the hourly budget in force at its middle × its hours."""
    if policy is None or not policy.enabled or hi <= lo:
        return None
    per_hour = effective_policy(policy, lo + (hi - lo) / 2).requests_per_hour
    return round(per_hour * (hi - lo).total_seconds() / 3600, 2)


def _source_stats(
    source: str,
    buckets: Sequence[datetime],
    size: timedelta,
    start: datetime,
    end: datetime,
    jobs: Sequence[Sequence[JobRow]],
    requests: Sequence[Sequence[RequestRow]],
    policy: RateLimitPolicy | None,
    advisories: int,
) -> SourceStats:
    series: list[BucketStats] = []
    for bucket_start, bucket_jobs, bucket_requests in zip(buckets, jobs, requests, strict=True):
        _, finished, succeeded, durations = _fetch_outcomes(bucket_jobs)
        lo, hi = max(bucket_start, start), min(bucket_start + size, end)
        series.append(
            BucketStats(
                start=bucket_start,
                finished=finished,
                succeeded=succeeded,
                success_rate=_rate(succeeded, finished),
                duration_p50_ms=percentile(durations, 50),
                duration_p95_ms=percentile(durations, 95),
                requests=sum(r.count for r in bucket_requests),
                budget=_budget(policy, lo, hi, size),
            )
        )
    all_jobs = [j for bucket_jobs in jobs for j in bucket_jobs]
    by_status, finished, succeeded, durations = _fetch_outcomes(all_jobs)
    cycle_durations = [
        float(j.duration_ms)
        for j in all_jobs
        if j.kind == "cycle" and j.duration_ms is not None and j.status != "started"
    ]
    all_requests = [r for bucket_requests in requests for r in bucket_requests]
    total_requests = sum(r.count for r in all_requests)
    budgets = [b.budget for b in series if b.budget is not None]
    budget = round(sum(budgets), 2) if budgets else None
    return SourceStats(
        source=source,
        jobs_by_status=dict(sorted(by_status.items())),
        finished=finished,
        succeeded=succeeded,
        success_rate=_rate(succeeded, finished),
        duration_p50_ms=percentile(durations, 50),
        duration_p95_ms=percentile(durations, 95),
        duration_max_ms=max(durations) if durations else None,
        cycles=len(cycle_durations),
        cycle_p50_ms=percentile(cycle_durations, 50),
        cycle_p95_ms=percentile(cycle_durations, 95),
        requests=total_requests,
        not_modified=sum(r.count for r in all_requests if r.not_modified),
        errors=sum(r.count for r in all_requests if r.status is None or r.status >= 400),
        budget=budget,
        utilisation=None if not budget else round(100 * total_requests / budget, 1),
        advisories=advisories,
        series=tuple(series),
    )


def _backlog(points: Sequence[BacklogPoint]) -> tuple[QueueBacklog, ...]:
    by_queue: dict[str, list[BacklogPoint]] = defaultdict(list)
    for point in points:
        by_queue[point.queue].append(point)
    out = []
    for queue in sorted(by_queue):
        ordered = tuple(sorted(by_queue[queue], key=lambda p: p.at))
        out.append(
            QueueBacklog(
                queue=queue,
                points=ordered,
                latest=ordered[-1].backlog,
                maximum=max(p.backlog for p in ordered),
            )
        )
    return tuple(out)


def _levels(sources: Sequence[str], advisories: Sequence[AdvisoryRow]) -> LevelMatrix:
    by_country: dict[str, dict[str, AdvisoryRow]] = defaultdict(dict)
    distribution = {s: {"1": 0, "2": 0, "3": 0, "4": 0, "withdrawn": 0} for s in sources}
    for adv in advisories:
        if adv.source not in distribution:
            continue
        by_country[adv.country][adv.source] = adv
        key = "withdrawn" if adv.withdrawn else str(adv.level)
        distribution[adv.source][key] = distribution[adv.source].get(key, 0) + 1
    rows = []
    for country in sorted(by_country):
        found = by_country[country]
        cells: dict[str, LevelCell | None] = {}
        for source in sources:
            mine = found.get(source)
            cells[source] = (
                None
                if mine is None
                else LevelCell(mine.level, mine.regional_level, mine.withdrawn, mine.title)
            )
        live = [c.level for c in cells.values() if c is not None and not c.withdrawn]
        spread = max(live) - min(live) if live else 0
        name = next(found[s].country_name for s in sources if s in found)
        rows.append(
            MatrixRow(
                country=country,
                country_name=name,
                cells=cells,
                spread=spread,
                disagreement=len(live) >= 2 and spread > 0,
            )
        )
    return LevelMatrix(sources=tuple(sources), rows=tuple(rows), distribution=distribution)


def _changes(
    changes: Sequence[ChangeRow], start: datetime, end: datetime, limit: int
) -> ChangeSummary:
    within = sorted(
        (c for c in changes if start <= as_utc(c.detected_at) < end),
        key=lambda c: as_utc(c.detected_at),
        reverse=True,
    )
    by_source: dict[str, Counter[str]] = defaultdict(Counter)
    for change in within:
        by_source[change.source][change.kind] += 1
    return ChangeSummary(
        total=len(within),
        by_source={s: dict(sorted(k.items())) for s, k in sorted(by_source.items())},
        notable=tuple(c for c in within if c.kind in NOTABLE_KINDS)[:limit],
        other=tuple(c for c in within if c.kind not in NOTABLE_KINDS)[:limit],
    )


def as_utc(at: datetime) -> datetime:
    """``at`` in UTC; report times must be aware (ValueError for a naive one)."""
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at.isoformat()}: report times must be aware")
    return at.astimezone(UTC)
