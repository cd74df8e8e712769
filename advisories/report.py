"""The operations report: a model built from plain rows, rendered as HTML, Markdown and JSON.

Pure: no clock, no database, no network. The caller (``activities.reports``)
queries the rows and passes the period; this module turns them into numbers
(per source and time bucket: success rate, duration percentiles, requests
against the rate-limit budget; queue backlog when given; the level of every
country by every source, with disagreements flagged; recent changes) and
renders them.

Everything that came from a source (titles, country names, URLs) is untrusted
text: the HTML is rendered by the shared, autoescaping template set
(``advisories.render``) and only links ``http``/``https`` URLs; Markdown output
backslash-escapes every character Markdown (or raw HTML inside Markdown) could
act on. The HTML page is self-contained: the shared stylesheet inlined, the
shared charts (Vega-Lite rendered to SVG on the server) inline, no script and no
external resource (a Content-Security-Policy forbids both, should escaping ever
be bypassed).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from markupsafe import Markup

from advisories.changes import ChangeKind
from advisories.ratelimit import effective_policy
from advisories.render import render, stylesheet, stylesheet_hash
from advisories.render.charts import (
    KIND_COLOURS,
    LEVEL_COLOURS,
    PALETTE,
    Line,
    bar_chart,
    line_chart,
)
from advisories.sources import RateLimitPolicy

__all__ = [
    "CHART_IDS",
    "FETCH_KINDS",
    "AdvisoryRow",
    "BacklogPoint",
    "BucketStats",
    "ChangeRow",
    "ChangeSummary",
    "JobRow",
    "LevelCell",
    "LevelMatrix",
    "MatrixRow",
    "QueueBacklog",
    "Report",
    "ReportRows",
    "RequestRow",
    "SourceStats",
    "build_report",
    "choose_bucket",
    "md_escape",
    "percentile",
    "render_html",
    "render_json",
    "render_markdown",
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

#: The charts of an HTML report, by the ``id`` of their ``<svg>``; the backlog
#: chart only appears when backlog samples were given.
CHART_IDS: Final = (
    "chart-success-rate",
    "chart-duration",
    "chart-requests",
    "chart-backlog",
    "chart-levels",
    "chart-changes",
)

_NOTABLE: Final = frozenset(k.value for k in ChangeKind if k.notable)


# --------------------------------------------------------------------------- input rows


@dataclass(frozen=True, slots=True)
class JobRow:
    """One ``scrape_jobs`` row (the columns the report uses)."""

    source: str
    kind: str
    status: str
    started_at: datetime
    duration_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RequestRow:
    """Requests made to a source: one request, or ``count`` of them at ``at``.

    Attributes:
        source: Source id.
        at: When it was sent (or the start of the period it was aggregated over).
        status: HTTP status; None when no response was recorded (network error).
        not_modified: A 304 answer to a conditional request.
        count: How many requests this row stands for (SQL may pre-aggregate).
    """

    source: str
    at: datetime
    status: int | None = None
    not_modified: bool = False
    count: int = 1


@dataclass(frozen=True, slots=True)
class AdvisoryRow:
    """One current advisory (``advisories`` row)."""

    source: str
    country: str
    country_name: str
    level: int
    regional_level: int | None = None
    withdrawn: bool = False
    title: str = ""
    url: str = ""


@dataclass(frozen=True, slots=True)
class ChangeRow:
    """One classified change (``changes`` joined with its version's title and URL)."""

    source: str
    country: str
    country_name: str
    kind: str
    level_after: int
    detected_at: datetime
    level_before: int | None = None
    regional_before: int | None = None
    regional_after: int | None = None
    title: str = ""
    url: str = ""


@dataclass(frozen=True, slots=True)
class BacklogPoint:
    """A task queue's backlog at one instant (Temporal's task-queue stats).

    Attributes:
        queue: Task-queue name.
        at: When it was sampled.
        backlog: Approximate number of tasks waiting.
        pollers: Workers polling the queue then, if known.
    """

    queue: str
    at: datetime
    backlog: int
    pollers: int | None = None


@dataclass(frozen=True, slots=True)
class ReportRows:
    """Everything a report is built from.

    Attributes:
        jobs: Jobs started in the period.
        requests: Requests sent in the period.
        advisories: The current advisories (not limited to the period).
        changes: Changes detected in the period.
        backlog: Queue backlog samples, if any were taken.
        policies: Rate-limit policy in force per source (the budget).
        sources: Source ids to report on, in order (default: every one seen).
    """

    jobs: Sequence[JobRow] = ()
    requests: Sequence[RequestRow] = ()
    advisories: Sequence[AdvisoryRow] = ()
    changes: Sequence[ChangeRow] = ()
    backlog: Sequence[BacklogPoint] = ()
    policies: Mapping[str, RateLimitPolicy] = field(default_factory=dict)
    sources: Sequence[str] = ()


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True, slots=True)
class BucketStats:
    """One source in one time bucket.

    Attributes:
        start: Start of the bucket (UTC).
        finished: Fetch jobs that ended (success, failure, dead letter).
        succeeded: Of those, successes.
        success_rate: ``succeeded / finished`` in percent; None without jobs.
        duration_p50_ms: Median duration of the finished fetch jobs.
        duration_p95_ms: 95th percentile of the same.
        requests: Requests sent to the source.
        budget: Requests the rate limit allowed in the bucket (hourly budget in
            force at the bucket's middle × its length within the period); None
            when the limit is off or unknown.
    """

    start: datetime
    finished: int
    succeeded: int
    success_rate: float | None
    duration_p50_ms: float | None
    duration_p95_ms: float | None
    requests: int
    budget: float | None


@dataclass(frozen=True, slots=True)
class SourceStats:
    """One source over the whole period.

    Attributes:
        source: Source id.
        jobs_by_status: Fetch jobs (index and country) by status.
        finished: Fetch jobs that ended.
        succeeded: Of those, successes.
        success_rate: In percent; None without finished jobs.
        duration_p50_ms: Median duration of finished fetch jobs.
        duration_p95_ms: 95th percentile of the same.
        duration_max_ms: Longest of the same.
        cycles: Source cycles that ended.
        cycle_p50_ms: Median duration of a cycle.
        cycle_p95_ms: 95th percentile of the same.
        requests: Requests sent.
        not_modified: Of those, answered 304.
        errors: Of those, answered ≥ 400 or not at all.
        budget: Requests the rate limit allowed over the period; None when off.
        utilisation: ``requests / budget`` in percent; None without a budget.
        advisories: Current advisories of the source.
        series: The same numbers per time bucket.
    """

    source: str
    jobs_by_status: dict[str, int]
    finished: int
    succeeded: int
    success_rate: float | None
    duration_p50_ms: float | None
    duration_p95_ms: float | None
    duration_max_ms: float | None
    cycles: int
    cycle_p50_ms: float | None
    cycle_p95_ms: float | None
    requests: int
    not_modified: int
    errors: int
    budget: float | None
    utilisation: float | None
    advisories: int
    series: tuple[BucketStats, ...]


@dataclass(frozen=True, slots=True)
class QueueBacklog:
    """One task queue's backlog samples, oldest first."""

    queue: str
    points: tuple[BacklogPoint, ...]
    latest: int
    maximum: int


@dataclass(frozen=True, slots=True)
class LevelCell:
    """One source's current level for one country."""

    level: int
    regional_level: int | None
    withdrawn: bool
    title: str


@dataclass(frozen=True, slots=True)
class MatrixRow:
    """One country across sources.

    Attributes:
        country: ISO code.
        country_name: Name given by the first source (in report order) that has it.
        cells: Per source id; None where the source has no advisory for it.
        spread: Highest minus lowest level among the sources' live advisories.
        disagreement: At least two sources cover it and their levels differ.
    """

    country: str
    country_name: str
    cells: dict[str, LevelCell | None]
    spread: int
    disagreement: bool


@dataclass(frozen=True, slots=True)
class LevelMatrix:
    """Levels by country × source.

    Attributes:
        sources: Column order.
        rows: One per country, by country code.
        distribution: Per source: countries per level (``"1"``..``"4"``) and
            ``"withdrawn"``.
    """

    sources: tuple[str, ...]
    rows: tuple[MatrixRow, ...]
    distribution: dict[str, dict[str, int]]

    @property
    def disagreements(self) -> tuple[MatrixRow, ...]:
        """Countries the sources disagree on, widest spread first."""
        return tuple(
            sorted((r for r in self.rows if r.disagreement), key=lambda r: (-r.spread, r.country))
        )


@dataclass(frozen=True, slots=True)
class ChangeSummary:
    """Changes detected in the period.

    Attributes:
        total: All of them.
        by_source: Per source, per kind.
        notable: Raised, lowered, regional and withdrawn, newest first (at most the limit).
        other: New countries and text-only edits, newest first (at most the limit).
    """

    total: int
    by_source: dict[str, dict[str, int]]
    notable: tuple[ChangeRow, ...]
    other: tuple[ChangeRow, ...]

    @property
    def notable_total(self) -> int:
        """Notable changes, counted before the limit."""
        return sum(
            n for kinds in self.by_source.values() for k, n in kinds.items() if k in _NOTABLE
        )


@dataclass(frozen=True, slots=True)
class Report:
    """The whole report; ``to_dict`` is its JSON form."""

    generated_at: datetime
    period_start: datetime
    period_end: datetime
    bucket_seconds: int
    buckets: tuple[datetime, ...]
    sources: tuple[SourceStats, ...]
    backlog: tuple[QueueBacklog, ...]
    levels: LevelMatrix
    changes: ChangeSummary

    @property
    def hours(self) -> float:
        """Length of the period in hours."""
        return (self.period_end - self.period_start).total_seconds() / 3600

    @property
    def counts(self) -> dict[str, int]:
        """Headline numbers (kept with the stored report and returned to workflows)."""
        return {
            "fetch_jobs": sum(sum(s.jobs_by_status.values()) for s in self.sources),
            "fetch_jobs_failed": sum(s.finished - s.succeeded for s in self.sources),
            "cycles": sum(s.cycles for s in self.sources),
            "requests": sum(s.requests for s in self.sources),
            "advisories": sum(s.advisories for s in self.sources),
            "countries": len(self.levels.rows),
            "disagreements": len(self.levels.disagreements),
            "changes": self.changes.total,
            "notable_changes": self.changes.notable_total,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: datetimes as ISO 8601 UTC strings."""
        data = _jsonable(dataclasses.asdict(self))
        data["hours"] = round(self.hours, 3)
        data["counts"] = self.counts
        data["levels"]["disagreements"] = [r.country for r in self.levels.disagreements]
        return data


# --------------------------------------------------------------------------- building


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
    start, end = _utc(start), _utc(end)
    if end <= start:
        raise ValueError(f"period end {end.isoformat()} is not after its start")
    size = bucket or choose_bucket(end - start)
    buckets = _bucket_starts(start, end, size)
    seen: set[str] = set()
    for group in (rows.jobs, rows.requests, rows.advisories, rows.changes):
        seen.update(r.source for r in group)
    sources = tuple(rows.sources) or tuple(sorted(seen))

    def index(at: datetime) -> int | None:
        at = _utc(at)
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
        generated_at=_utc(generated_at or end),
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
        (c for c in changes if start <= _utc(c.detected_at) < end),
        key=lambda c: _utc(c.detected_at),
        reverse=True,
    )
    by_source: dict[str, Counter[str]] = defaultdict(Counter)
    for change in within:
        by_source[change.source][change.kind] += 1
    return ChangeSummary(
        total=len(within),
        by_source={s: dict(sorted(k.items())) for s, k in sorted(by_source.items())},
        notable=tuple(c for c in within if c.kind in _NOTABLE)[:limit],
        other=tuple(c for c in within if c.kind not in _NOTABLE)[:limit],
    )


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at.isoformat()}: report times must be aware")
    return at.astimezone(UTC)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# --------------------------------------------------------------------------- formatting

_DASH: Final = "–"


def _pct(value: float | None) -> str:
    return _DASH if value is None else f"{value:.1f} %"


def _secs(ms: float | None) -> str:
    return _DASH if ms is None else f"{ms / 1000:.2f} s"


def _num(value: float | None) -> str:
    if value is None:
        return _DASH
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _span(seconds: float) -> str:
    if seconds % 86400 == 0:
        return f"{seconds / 86400:g} d"
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 60:g} min"


def _cell_text(cell: LevelCell | None) -> str:
    if cell is None:
        return _DASH
    if cell.withdrawn:
        return "withdrawn"
    if cell.regional_level is not None and cell.regional_level != cell.level:
        return f"{cell.level} (parts {cell.regional_level})"
    return str(cell.level)


def _level_change(change: ChangeRow) -> str:
    before = _DASH if change.level_before is None else str(change.level_before)
    text = f"{before} → {change.level_after}"
    if change.regional_before != change.regional_after:
        rb = _DASH if change.regional_before is None else str(change.regional_before)
        ra = _DASH if change.regional_after is None else str(change.regional_after)
        text += f" (parts {rb} → {ra})"
    return text


# --------------------------------------------------------------------------- charts

_LEVEL_KEYS: Final = ("1", "2", "3", "4", "withdrawn")


@dataclass(frozen=True, slots=True)
class _Chart:
    """A chart as the template shows it: caption and inline SVG."""

    heading: str
    svg: Markup


def _colours(report: Report) -> dict[str, str]:
    return {s.source: PALETTE[i % len(PALETTE)] for i, s in enumerate(report.sources)}


#: A line's label suffix and its value in one bucket.
_Measure = tuple[str, Callable[[BucketStats], float | None]]


def _solid_and_dashed(
    report: Report, colour: Mapping[str, str], solid: _Measure, dashed: _Measure
) -> list[Line]:
    """Two lines per source in the source's colour: ``solid`` and ``dashed``."""
    return [
        Line(
            f"{s.source} {label}",
            colour[s.source],
            [value(b) for b in s.series],
            dashed=is_dashed,
        )
        for s in report.sources
        for (label, value), is_dashed in ((solid, False), (dashed, True))
    ]


def _charts(report: Report) -> dict[str, _Chart]:
    """Every chart of the report, by ``CHART_IDS`` id."""
    times = report.buckets
    colour = _colours(report)
    charts: dict[str, _Chart] = {}

    def line(chart_id: str, heading: str, lines: Sequence[Line], **kw: Any) -> None:
        charts[chart_id] = _Chart(heading, line_chart(chart_id, heading, times, lines, **kw))

    line(
        "chart-success-rate",
        "Success rate of fetch jobs per source",
        [
            Line(s.source, colour[s.source], [b.success_rate for b in s.series])
            for s in report.sources
        ],
        y_title="success %",
        y_max=100.0,
    )
    line(
        "chart-duration",
        "Fetch-job duration per source: p50 (solid) and p95 (dashed)",
        _solid_and_dashed(
            report,
            colour,
            ("p50", lambda b: _ms_to_s(b.duration_p50_ms)),
            ("p95", lambda b: _ms_to_s(b.duration_p95_ms)),
        ),
        y_title="seconds",
    )
    line(
        "chart-requests",
        "Requests per bucket (solid) against the rate-limit budget (dashed)",
        _solid_and_dashed(
            report,
            colour,
            ("requests", lambda b: float(b.requests)),
            ("budget", lambda b: b.budget),
        ),
        y_title="requests",
    )
    if report.backlog:
        heading = "Task-queue backlog"
        if any(len(q.points) > 1 for q in report.backlog):
            # Samples over time: one line per queue, on the report's buckets,
            # joined across buckets without a sample (a gauge, not a count).
            line(
                "chart-backlog",
                heading,
                [
                    Line(
                        q.queue,
                        PALETTE[i % len(PALETTE)],
                        _bucket_max(report, q.points),
                        join_gaps=True,
                    )
                    for i, q in enumerate(report.backlog)
                ],
                y_title="tasks waiting",
            )
        else:
            charts["chart-backlog"] = _Chart(
                f"{heading} at {_when(report.backlog[0].points[-1].at)}",
                bar_chart(
                    "chart-backlog",
                    heading,
                    [(q.queue, [float(q.latest)]) for q in report.backlog],
                    [("tasks waiting", "#4a90c2")],
                ),
            )
    heading = (
        "Current advisories per source by level, as shares of the source's countries"
        " (1 normal precautions … 4 do not travel)"
    )
    charts["chart-levels"] = _Chart(
        heading,
        bar_chart(
            "chart-levels",
            heading,
            [
                (source, [float(report.levels.distribution[source][k]) for k in _LEVEL_KEYS])
                for source in report.levels.sources
            ],
            [(f"level {k}" if k != "withdrawn" else k, LEVEL_COLOURS[k]) for k in _LEVEL_KEYS],
            shares=True,
        ),
    )
    heading = "Changes detected in the period, by kind"
    kinds = [k.value for k in ChangeKind]
    charts["chart-changes"] = _Chart(
        heading,
        bar_chart(
            "chart-changes",
            heading,
            [
                (
                    s.source,
                    [float(report.changes.by_source.get(s.source, {}).get(k, 0)) for k in kinds],
                )
                for s in report.sources
            ],
            [(k, KIND_COLOURS[k]) for k in kinds],
        ),
    )
    return charts


def _ms_to_s(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


def _bucket_max(report: Report, points: Sequence[BacklogPoint]) -> list[float | None]:
    """The largest sample of each bucket (None where none was taken).

    A sample taken at or after the period's end (the one taken while the report
    was being made) counts in the last bucket.
    """
    size = timedelta(seconds=report.bucket_seconds)
    out: list[float | None] = [None] * len(report.buckets)
    for point in points:
        at = _utc(point.at)
        if at < report.period_start:
            continue
        i = min(int((at - report.buckets[0]) // size), len(out) - 1)
        current = out[i]
        out[i] = float(point.backlog) if current is None else max(current, point.backlog)
    return out


# --------------------------------------------------------------------------- HTML

_COUNT_LABELS: Final = {
    "fetch_jobs": "fetch jobs",
    "fetch_jobs_failed": "failed",
    "cycles": "cycles",
    "requests": "requests",
    "advisories": "advisories",
    "countries": "countries",
    "disagreements": "disagreements",
    "changes": "changes",
    "notable_changes": "notable changes",
}

#: Columns of the per-source table (HTML and Markdown).
_SOURCE_HEADERS: Final = (
    "source",
    "fetch jobs",
    "success rate",
    "failed",
    "p50",
    "p95",
    "max",
    "cycles",
    "cycle p50",
    "cycle p95",
    "requests",
    "304",
    "errors",
    "budget",
    "utilisation",
    "advisories",
)


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG, no script).

    Rendered by the shared template set (``report.html`` on the common layout)
    with the shared charts. CPU-bound (the charts take ~0.1 s each the first
    time): call it in a thread from async code.
    """
    return render(
        "report.html",
        standalone=True,
        stylesheet=stylesheet(),
        style_hash=stylesheet_hash(),
        report=report,
        counts=[(_COUNT_LABELS[k], v) for k, v in report.counts.items()],
        source_headers=_SOURCE_HEADERS,
        charts=_charts(report),
        cell_text=_cell_text,
        level_change=_level_change,
    )


# --------------------------------------------------------------------------- Markdown

# Characters Markdown (CommonMark, GitHub tables) or HTML inside Markdown could
# act on anywhere in a line. Line-start markers (#, -, +, 1.) cannot occur: every
# scraped value is written inside a table cell or after fixed text.
_MD_SPECIAL: Final = re.compile(r"([\\`*_\[\]<>|~&!])")


def md_escape(value: object) -> str:
    """``value`` as literal Markdown text: one line, special characters backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Cells are already escaped (or our own text)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return [*lines, ""]


def render_markdown(report: Report) -> str:
    """The report as Markdown: the same numbers, as tables instead of charts."""
    lines = [
        "# Travel-advisory report",
        "",
        f"{_when(report.period_start)} to {_when(report.period_end)} "
        f"({_span(report.hours * 3600)}), in buckets of {_span(report.bucket_seconds)}; "
        f"generated {_when(report.generated_at)}.",
        "",
    ]
    counts = report.counts
    lines += _md_table([_COUNT_LABELS[k] for k in counts], [[_num(v) for v in counts.values()]])
    lines += ["## Sources", ""]
    lines += _md_table(
        _SOURCE_HEADERS,
        [
            [
                md_escape(s.source),
                _num(sum(s.jobs_by_status.values())),
                _pct(s.success_rate),
                _num(s.finished - s.succeeded),
                _secs(s.duration_p50_ms),
                _secs(s.duration_p95_ms),
                _secs(s.duration_max_ms),
                _num(s.cycles),
                _secs(s.cycle_p50_ms),
                _secs(s.cycle_p95_ms),
                _num(s.requests),
                _num(s.not_modified),
                _num(s.errors),
                _num(s.budget) if s.budget is not None else "off",
                _pct(s.utilisation),
                _num(s.advisories),
            ]
            for s in report.sources
        ],
    )
    lines += ["## Over time", ""]
    for s in report.sources:
        lines += [f"### {md_escape(s.source)}", ""]
        lines += _md_table(
            ["bucket", "fetch jobs ended", "success rate", "p50", "p95", "requests", "budget"],
            [
                [
                    _when(b.start),
                    _num(b.finished),
                    _pct(b.success_rate),
                    _secs(b.duration_p50_ms),
                    _secs(b.duration_p95_ms),
                    _num(b.requests),
                    _num(b.budget),
                ]
                for b in s.series
            ],
        )
    lines += ["## Queue backlog", ""]
    if report.backlog:
        lines += _md_table(
            ["queue", "latest", "max", "samples", "pollers"],
            [
                [
                    md_escape(q.queue),
                    _num(q.latest),
                    _num(q.maximum),
                    _num(len(q.points)),
                    _num(q.points[-1].pollers),
                ]
                for q in report.backlog
            ],
        )
    else:
        lines += ["No backlog samples were available for this report.", ""]
    levels = report.levels
    lines += ["## Levels by country across sources", ""]
    keys = ("1", "2", "3", "4", "withdrawn")
    lines += _md_table(
        ["source", "level 1", "level 2", "level 3", "level 4", "withdrawn"],
        [
            [md_escape(source)] + [_num(levels.distribution[source][k]) for k in keys]
            for source in levels.sources
        ],
    )
    disagreements = levels.disagreements
    lines += [f"### Disagreements ({len(disagreements)})", ""]
    lines += _md_matrix(levels, disagreements) if disagreements else ["None.", ""]
    lines += [f"### All countries ({len(levels.rows)})", ""]
    lines += _md_matrix(levels, levels.rows)
    changes = report.changes
    lines += ["## Recent changes", ""]
    kinds = [k.value for k in ChangeKind]
    lines += _md_table(
        ["source", *kinds],
        [
            [md_escape(source)] + [_num(by_kind.get(k, 0)) for k in kinds]
            for source, by_kind in changes.by_source.items()
        ],
    )
    lines += [f"### Notable: raised, lowered, regional, withdrawn ({changes.notable_total})", ""]
    lines += _md_changes(changes.notable, changes.notable_total)
    other_total = changes.total - changes.notable_total
    lines += [f"### New countries and text-only edits ({other_total})", ""]
    lines += _md_changes(changes.other, other_total)
    return "\n".join(lines).rstrip("\n") + "\n"


def _md_matrix(levels: LevelMatrix, rows: Sequence[MatrixRow]) -> list[str]:
    return _md_table(
        ["country", "name", *(md_escape(s) for s in levels.sources), "spread"],
        [
            [md_escape(r.country), md_escape(r.country_name)]
            + [md_escape(_cell_text(r.cells[s])) for s in levels.sources]
            + [str(r.spread) + (" (disagree)" if r.disagreement else "")]
            for r in rows
        ],
    )


def _md_changes(changes: Sequence[ChangeRow], total: int) -> list[str]:
    if not changes:
        return ["None in this period.", ""]
    lines = _md_table(
        ["detected", "source", "country", "name", "kind", "level", "title"],
        [
            [
                _when(c.detected_at),
                md_escape(c.source),
                md_escape(c.country),
                md_escape(c.country_name),
                md_escape(c.kind),
                _level_change(c),
                md_escape(c.title),
            ]
            for c in changes
        ],
    )
    if total > len(changes):
        lines += [f"{total - len(changes)} older ones not shown.", ""]
    return lines


# --------------------------------------------------------------------------- JSON


def render_json(report: Report) -> str:
    """The report as JSON text (``Report.to_dict``)."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
