"""The operations report: a model built from plain rows, rendered as HTML, Markdown and JSON.

Pure: no clock, no database, no network. The caller (``activities.reports``)
queries the rows and passes the period; this module turns them into numbers
(per source and time bucket: success rate, duration percentiles, requests
against the rate-limit budget; queue backlog when given; the level of every
country by every source, with disagreements flagged; recent changes) and
renders them.

Everything that came from a source (titles, country names, URLs) is untrusted
text: HTML output escapes it with ``html.escape`` and only links ``http``/``https``
URLs; Markdown output backslash-escapes every character Markdown (or raw HTML
inside Markdown) could act on. The HTML page is self-contained: inline CSS,
inline SVG charts drawn here, no script and no external resource (a
Content-Security-Policy forbids both, should escaping ever be bypassed).
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

from advisories.changes import ChangeKind
from advisories.ratelimit import effective_policy
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


# --------------------------------------------------------------------------- SVG charts

#: Okabe–Ito colours: told apart by colour-blind readers too.
_PALETTE: Final = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
_LEVEL_COLOURS: Final = {
    "1": "#7fc97f",
    "2": "#ffe066",
    "3": "#ffa94d",
    "4": "#ff6b6b",
    "withdrawn": "#ced4da",
}
_KIND_COLOURS: Final = {
    "new": "#a5d8ff",
    "raised": "#ff6b6b",
    "lowered": "#7fc97f",
    "regional": "#ffa94d",
    "text": "#ced4da",
    "withdrawn": "#b197fc",
}
_CHAR_WIDTH: Final = 6.6  # average width of a 12 px sans-serif character, for layout
_WIDTH: Final = 760


def _h(value: object) -> str:
    return html.escape(str(value), quote=True)


@dataclass(frozen=True, slots=True)
class _Series:
    """One line. ``join_gaps``: a gauge sampled now and then (backlog), so the line
    runs across buckets without a sample; otherwise a gap means "nothing happened"."""

    label: str
    colour: str
    values: Sequence[float | None]
    dashed: bool = False
    join_gaps: bool = False


def _nice_axis(top: float, ticks: int = 4, *, whole: bool = False) -> tuple[float, float]:
    """An axis maximum ≥ ``top`` and a round step dividing it into about ``ticks`` parts.

    ``whole``: counts, so the step is a whole number.
    """
    if top <= 0:
        return (4.0, 1.0) if whole else (1.0, 0.25)
    raw = top / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if whole:
        step = max(1.0, math.ceil(step))
    return step * math.ceil(top / step - 1e-9), step


def _tick(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e5 else f"{value:.3g}"


def _legend(items: Sequence[tuple[str, str, str]], y: float, left: float, right: float) -> str:
    """Legend entries ``(label, colour, kind)`` (kind: line, dash or box), wrapped; at ``y``."""
    parts = []
    x = left
    for label, colour, kind in items:
        width = 26 + len(label) * _CHAR_WIDTH + 16
        if x + width > right and x > left:
            x, y = left, y + 18
        if kind == "box":
            parts.append(
                f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="18" height="10" fill="{colour}" '
                'stroke="#495057" stroke-width="0.5"/>'
            )
        else:
            dash = ' stroke-dasharray="5 3"' if kind == "dash" else ""
            parts.append(
                f'<line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x + 18:.1f}" y2="{y - 4:.1f}" '
                f'stroke="{colour}" stroke-width="2.5"{dash}/>'
            )
        parts.append(f'<text x="{x + 24:.1f}" y="{y:.1f}">{_h(label)}</text>')
        x += width
    return "".join(parts)


def _legend_rows(labels: Sequence[str], left: float, right: float) -> int:
    rows, x = 1, left
    for label in labels:
        width = 26 + len(label) * _CHAR_WIDTH + 16
        if x + width > right and x > left:
            rows, x = rows + 1, left
        x += width
    return rows


def _svg_open(chart_id: str, title: str, height: float) -> str:
    return (
        f'<svg id="{_h(chart_id)}" class="chart" role="img" viewBox="0 0 {_WIDTH} {height:.0f}" '
        f'width="{_WIDTH}" height="{height:.0f}" font-family="system-ui, sans-serif" '
        f'font-size="12"><title>{_h(title)}</title>'
    )


def _line_chart(
    chart_id: str,
    title: str,
    x_labels: Sequence[str],
    series: Sequence[_Series],
    *,
    y_label: str,
    y_max: float | None = None,
    value_format: str = "{:g}",
) -> str:
    """Lines over time buckets (one point per bucket; gaps where a value is None)."""
    left, right, top = 64.0, _WIDTH - 16.0, 14.0
    plot_bottom = 214.0
    legend_labels = [s.label for s in series]
    height = plot_bottom + 46 + 18 * _legend_rows(legend_labels, left, right)
    values = [v for s in series for v in s.values if v is not None]
    axis_max, step = (y_max, y_max / 4) if y_max else _nice_axis(max(values, default=0.0))
    n = max(len(x_labels), 1)
    slot = (right - left) / n

    def x_of(i: int) -> float:
        return left + (i + 0.5) * slot

    def y_of(v: float) -> float:
        return plot_bottom - (plot_bottom - top) * min(v, axis_max) / axis_max

    out = [_svg_open(chart_id, title, height)]
    tick = 0.0
    while tick <= axis_max + 1e-9:
        y = y_of(tick)
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#dee2e6"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_tick(tick)}</text>'
        )
        tick += step
    out.append(
        f'<text transform="translate(14 {(top + plot_bottom) / 2:.0f}) rotate(-90)" '
        f'text-anchor="middle">{_h(y_label)}</text>'
        f'<line x1="{left}" y1="{plot_bottom}" x2="{right}" y2="{plot_bottom}" stroke="#868e96"/>'
    )
    every = max(1, math.ceil(n / 8))
    for i, label in enumerate(x_labels):
        if i % every == 0:
            out.append(
                f'<text x="{x_of(i):.1f}" y="{plot_bottom + 16}" text-anchor="middle">'
                f"{_h(label)}</text>"
            )
    # Points of different colours at one spot stay visible: earlier colours are
    # drawn larger, later ones on top of them, smaller.
    colour_order = list(dict.fromkeys(s.colour for s in series))
    for s in series:
        radius = max(2.2, 5.0 - 1.2 * colour_order.index(s.colour))
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        segment: list[str] = []
        segments: list[list[str]] = []
        for i, v in enumerate(s.values):
            if v is None:
                if segment and not s.join_gaps:
                    segments.append(segment)
                    segment = []
                continue
            segment.append(f"{x_of(i):.1f},{y_of(v):.1f}")
        if segment:
            segments.append(segment)
        for points in segments:
            if len(points) > 1:
                out.append(
                    f'<polyline points="{" ".join(points)}" fill="none" stroke="{s.colour}" '
                    f'stroke-width="2"{dash}/>'
                )
        for i, v in enumerate(s.values):
            if v is not None:
                fill = "#ffffff" if s.dashed else s.colour
                out.append(
                    f'<circle cx="{x_of(i):.1f}" cy="{y_of(v):.1f}" r="{radius:g}" fill="{fill}" '
                    f'stroke="{s.colour}" stroke-width="1.5"><title>'
                    f"{_h(s.label)} {_h(x_labels[i])}: {_h(value_format.format(v))}"
                    "</title></circle>"
                )
    if not values:
        out.append(
            f'<text x="{(left + right) / 2:.0f}" y="{(top + plot_bottom) / 2:.0f}" '
            'text-anchor="middle" fill="#868e96">no data in this period</text>'
        )
    legend = [(s.label, s.colour, "dash" if s.dashed else "line") for s in series]
    out.append(_legend(legend, plot_bottom + 40, left, right))
    out.append("</svg>")
    return "".join(out)


def _bar_chart(
    chart_id: str,
    title: str,
    bars: Sequence[tuple[str, Sequence[float]]],
    segments: Sequence[tuple[str, str]],
    *,
    shares: bool = False,
) -> str:
    """Horizontal stacked bars: one bar per ``(label, values)``, one value per segment.

    ``shares``: every bar is 100 % long, so groups of very different sizes can be
    compared; the segments still say their counts.
    """
    label_width = max((len(label) for label, _ in bars), default=4) * _CHAR_WIDTH + 12
    left, right, top, row = 8 + label_width, _WIDTH - 56.0, 10.0, 30.0
    plot_bottom = top + row * max(len(bars), 1)
    height = plot_bottom + 46 + 18 * _legend_rows([s for s, _ in segments], left, right)
    if shares:
        axis_max, step, unit = 100.0, 25.0, " %"
    else:
        axis_max, step = _nice_axis(max((sum(v) for _, v in bars), default=0.0), whole=True)
        unit = ""
    out = [_svg_open(chart_id, title, height)]
    tick = 0.0
    while tick <= axis_max + 1e-9:
        x = left + tick * (right - left) / axis_max
        out.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{plot_bottom}" stroke="#dee2e6"/>'
            f'<text x="{x:.1f}" y="{plot_bottom + 16}" text-anchor="middle">'
            f"{_tick(tick)}{unit}</text>"
        )
        tick += step
    for i, (label, values) in enumerate(bars):
        y = top + i * row + 5
        total = sum(values)
        scale = (right - left) / (total if shares and total else axis_max)
        out.append(
            f'<text x="{left - 8:.1f}" y="{y + 14:.1f}" text-anchor="end">{_h(label)}</text>'
        )
        x = left
        for (name, colour), value in zip(segments, values, strict=True):
            if value <= 0:
                continue
            width = value * scale
            share = f" ({100 * value / total:.0f} %)" if shares else ""
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="20" fill="{colour}" '
                f'stroke="#ffffff" stroke-width="1"><title>{_h(label)}, {_h(name)}: '
                f"{_num(value)}{share}</title></rect>"
            )
            if width >= 8 + len(_num(value)) * _CHAR_WIDTH:
                out.append(
                    f'<text x="{x + width / 2:.1f}" y="{y + 14:.1f}" text-anchor="middle">'
                    f"{_num(value)}</text>"
                )
            x += width
        out.append(f'<text x="{x + 6:.1f}" y="{y + 14:.1f}">{_num(total)}</text>')
    if not bars or all(sum(v) == 0 for _, v in bars):
        out.append(
            f'<text x="{(left + right) / 2:.0f}" y="{(top + plot_bottom) / 2 + 4:.0f}" '
            'text-anchor="middle" fill="#868e96">nothing in this period</text>'
        )
    out.append(_legend([(n, c, "box") for n, c in segments], plot_bottom + 40, left, right))
    out.append("</svg>")
    return "".join(out)


def _x_labels(report: Report) -> list[str]:
    size = report.bucket_seconds
    multi_day = report.period_end - report.period_start > timedelta(days=1)
    if size >= 86400:
        fmt = "%m-%d"
    elif multi_day:
        fmt = "%m-%d %H:%M"
    else:
        fmt = "%H:%M"
    return [b.strftime(fmt) for b in report.buckets]


def _colours(report: Report) -> dict[str, str]:
    return {s.source: _PALETTE[i % len(_PALETTE)] for i, s in enumerate(report.sources)}


#: A line's label suffix and its value in one bucket.
_Measure = tuple[str, Callable[[BucketStats], float | None]]


def _solid_and_dashed(
    report: Report, colour: Mapping[str, str], solid: _Measure, dashed: _Measure
) -> list[_Series]:
    """Two lines per source in the source's colour: ``solid`` and ``dashed``."""
    return [
        _Series(
            f"{s.source} {label}",
            colour[s.source],
            [value(b) for b in s.series],
            dashed=is_dashed,
        )
        for s in report.sources
        for (label, value), is_dashed in ((solid, False), (dashed, True))
    ]


def _charts(report: Report) -> dict[str, tuple[str, str]]:
    """Every chart of the report: id → (heading, SVG)."""
    labels = _x_labels(report)
    colour = _colours(report)
    charts: dict[str, tuple[str, str]] = {}
    heading = "Success rate of fetch jobs per source"
    charts["chart-success-rate"] = (
        heading,
        _line_chart(
            "chart-success-rate",
            heading,
            labels,
            [
                _Series(s.source, colour[s.source], [b.success_rate for b in s.series])
                for s in report.sources
            ],
            y_label="success %",
            y_max=100.0,
            value_format="{:.1f} %",
        ),
    )
    heading = "Fetch-job duration per source: p50 (solid) and p95 (dashed)"
    charts["chart-duration"] = (
        heading,
        _line_chart(
            "chart-duration",
            heading,
            labels,
            _solid_and_dashed(
                report,
                colour,
                ("p50", lambda b: _ms_to_s(b.duration_p50_ms)),
                ("p95", lambda b: _ms_to_s(b.duration_p95_ms)),
            ),
            y_label="seconds",
            value_format="{:.2f} s",
        ),
    )
    heading = "Requests per bucket (solid) against the rate-limit budget (dashed)"
    charts["chart-requests"] = (
        heading,
        _line_chart(
            "chart-requests",
            heading,
            labels,
            _solid_and_dashed(
                report,
                colour,
                ("requests", lambda b: float(b.requests)),
                ("budget", lambda b: b.budget),
            ),
            y_label="requests",
            value_format="{:g}",
        ),
    )
    if report.backlog:
        heading = "Task-queue backlog"
        if any(len(q.points) > 1 for q in report.backlog):
            # Samples over time: one line per queue, on the report's buckets.
            charts["chart-backlog"] = (
                heading,
                _line_chart(
                    "chart-backlog",
                    heading,
                    labels,
                    [
                        _Series(
                            q.queue,
                            _PALETTE[i % len(_PALETTE)],
                            _bucket_max(report, q.points),
                            join_gaps=True,
                        )
                        for i, q in enumerate(report.backlog)
                    ],
                    y_label="tasks waiting",
                ),
            )
        else:
            charts["chart-backlog"] = (
                f"{heading} at {_when(report.backlog[0].points[-1].at)}",
                _bar_chart(
                    "chart-backlog",
                    heading,
                    [(q.queue, [float(q.latest)]) for q in report.backlog],
                    [("tasks waiting", "#74c0fc")],
                ),
            )
    heading = (
        "Current advisories per source by level, as shares of the source's countries"
        " (1 normal precautions … 4 do not travel)"
    )
    level_keys = ("1", "2", "3", "4", "withdrawn")
    charts["chart-levels"] = (
        heading,
        _bar_chart(
            "chart-levels",
            heading,
            [
                (source, [float(report.levels.distribution[source][k]) for k in level_keys])
                for source in report.levels.sources
            ],
            [(f"level {k}" if k != "withdrawn" else k, _LEVEL_COLOURS[k]) for k in level_keys],
            shares=True,
        ),
    )
    heading = "Changes detected in the period, by kind"
    kinds = [k.value for k in ChangeKind]
    charts["chart-changes"] = (
        heading,
        _bar_chart(
            "chart-changes",
            heading,
            [
                (
                    s.source,
                    [float(report.changes.by_source.get(s.source, {}).get(k, 0)) for k in kinds],
                )
                for s in report.sources
            ],
            [(k, _KIND_COLOURS[k]) for k in kinds],
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

_CSS: Final = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #212529;
       margin: 0 auto; max-width: 1100px; padding: 16px 24px 48px; }
h1 { font-size: 24px; margin: 8px 0 4px; }
h2 { font-size: 19px; margin: 32px 0 8px; border-bottom: 1px solid #dee2e6; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 20px 0 6px; }
.meta { color: #495057; margin: 0 0 16px; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { border: 1px solid #dee2e6; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f1f3f5; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.l1 { background: #d3f9d8; } td.l2 { background: #fff3bf; }
td.l3 { background: #ffe8cc; } td.l4 { background: #ffc9c9; }
td.lw { background: #e9ecef; color: #495057; } td.none { color: #adb5bd; }
tr.disagree td.country { font-weight: 600; }
tr.wide td.spread { background: #ffc9c9; font-weight: 600; }
svg.chart { display: block; max-width: 100%; height: auto; margin: 4px 0 8px; }
figure { margin: 0 0 8px; }
figcaption { font-weight: 600; margin: 12px 0 2px; }
.note { color: #495057; font-size: 13px; }
details summary { cursor: pointer; margin: 8px 0; }
.bad { color: #c92a2a; font-weight: 600; }
"""

#: Defence in depth: even if some text escaped escaping, nothing runs and nothing loads.
_CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

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


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[tuple[str, str]]],
    *,
    row_classes: Sequence[str] | None = None,
) -> str:
    """An HTML table; each cell is ``(already escaped html, css class)``."""
    out = ["<table><thead><tr>"]
    out.extend(f"<th>{_h(h)}</th>" for h in headers)
    out.append("</tr></thead><tbody>")
    for i, row in enumerate(rows):
        cls = row_classes[i] if row_classes else ""
        out.append(f'<tr class="{cls}">' if cls else "<tr>")
        for content, css in row:
            out.append(f'<td class="{css}">{content}</td>' if css else f"<td>{content}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _link(text: str, url: str) -> str:
    """``text`` as a link to ``url`` when it is an http(s) URL, else as plain text."""
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        scheme = ""
    if scheme in ("http", "https"):
        return f'<a href="{_h(url)}" rel="noopener noreferrer">{_h(text)}</a>'
    return _h(text)


def _level_cell(cell: LevelCell | None) -> tuple[str, str]:
    if cell is None:
        return _h(_DASH), "none"
    css = "lw" if cell.withdrawn else f"l{cell.level}"
    return f'<span title="{_h(cell.title)}">{_h(_cell_text(cell))}</span>', css


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG, no script)."""
    charts = _charts(report)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Travel-advisory report {_h(_when(report.period_end))}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Travel-advisory report</h1>",
        f'<p class="meta">{_h(_when(report.period_start))} to {_h(_when(report.period_end))} '
        f"({_h(_span(report.hours * 3600))}), in buckets of {_h(_span(report.bucket_seconds))}; "
        f"generated {_h(_when(report.generated_at))}.</p>",
    ]
    counts = report.counts
    parts.append(
        _table(
            [_COUNT_LABELS[k] for k in counts],
            [[(_num(v), "n") for v in counts.values()]],
        )
    )

    parts.append("<h2>Sources</h2>")
    parts.append(
        _table(
            _SOURCE_HEADERS,
            [_source_cells(s) for s in report.sources],
        )
    )
    parts.append(
        '<p class="note">Fetch jobs are index and country fetches; the success rate counts '
        "those that ended (success, failure, dead letter). The budget is the hourly rate "
        "limit in force (business hours applied) times the time covered.</p>"
    )
    for chart_id in ("chart-success-rate", "chart-duration", "chart-requests"):
        parts.append(_figure(*charts[chart_id]))

    parts.append("<h2>Queue backlog</h2>")
    if "chart-backlog" in charts:
        parts.append(_figure(*charts["chart-backlog"]))
        parts.append(
            _table(
                ["queue", "latest", "max", "samples", "pollers"],
                [
                    [
                        (_h(q.queue), ""),
                        (_num(q.latest), "n"),
                        (_num(q.maximum), "n"),
                        (_num(len(q.points)), "n"),
                        (_num(q.points[-1].pollers), "n"),
                    ]
                    for q in report.backlog
                ],
            )
        )
    else:
        parts.append('<p class="note">No backlog samples were available for this report.</p>')

    parts.append("<h2>Levels by country across sources</h2>")
    parts.append(_figure(*charts["chart-levels"]))
    parts.append(_distribution_table_html(report.levels))
    disagreements = report.levels.disagreements
    parts.append(f"<h3>Disagreements ({len(disagreements)})</h3>")
    if disagreements:
        parts.append(_matrix_html(report.levels, disagreements))
    else:
        parts.append(
            '<p class="note">Every country covered by two or more sources has one level.</p>'
        )
    parts.append(
        f"<details><summary>All {len(report.levels.rows)} countries</summary>"
        f"{_matrix_html(report.levels, report.levels.rows)}</details>"
    )

    parts.append("<h2>Recent changes</h2>")
    parts.append(_figure(*charts["chart-changes"]))
    changes = report.changes
    parts.append(
        f"<h3>Notable: raised, lowered, regional, withdrawn ({changes.notable_total})</h3>"
    )
    parts.append(_changes_html(changes.notable, changes.notable_total))
    other_total = changes.total - changes.notable_total
    parts.append(
        f"<details><summary>New countries and text-only edits ({other_total})</summary>"
        f"{_changes_html(changes.other, other_total)}</details>"
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _figure(heading: str, svg: str) -> str:
    return f"<figure><figcaption>{_h(heading)}</figcaption>{svg}</figure>"


def _source_cells(s: SourceStats) -> list[tuple[str, str]]:
    failed = s.finished - s.succeeded
    rate = _h(_pct(s.success_rate))
    if s.success_rate is not None and s.success_rate < 80:
        rate = f'<span class="bad">{rate}</span>'
    return [
        (_h(s.source), ""),
        (_num(sum(s.jobs_by_status.values())), "n"),
        (rate, "n"),
        (_num(failed), "n"),
        (_h(_secs(s.duration_p50_ms)), "n"),
        (_h(_secs(s.duration_p95_ms)), "n"),
        (_h(_secs(s.duration_max_ms)), "n"),
        (_num(s.cycles), "n"),
        (_h(_secs(s.cycle_p50_ms)), "n"),
        (_h(_secs(s.cycle_p95_ms)), "n"),
        (_num(s.requests), "n"),
        (_num(s.not_modified), "n"),
        (_num(s.errors), "n"),
        (_h(_num(s.budget)) if s.budget is not None else "off", "n"),
        (_h(_pct(s.utilisation)), "n"),
        (_num(s.advisories), "n"),
    ]


def _distribution_table_html(levels: LevelMatrix) -> str:
    keys = ("1", "2", "3", "4", "withdrawn")
    return _table(
        ["source", "level 1", "level 2", "level 3", "level 4", "withdrawn", "total"],
        [
            [(_h(source), "")]
            + [(_num(levels.distribution[source][k]), "n") for k in keys]
            + [(_num(sum(levels.distribution[source].values())), "n")]
            for source in levels.sources
        ],
    )


def _matrix_html(levels: LevelMatrix, rows: Sequence[MatrixRow]) -> str:
    classes = []
    for row in rows:
        names = ["disagree"] if row.disagreement else []
        if row.spread >= 2:
            names.append("wide")
        classes.append(" ".join(names))
    return _table(
        ["country", "name", *levels.sources, "spread"],
        [
            [(_h(row.country), "country"), (_h(row.country_name), "")]
            + [_level_cell(row.cells[s]) for s in levels.sources]
            + [(_num(row.spread), "n spread")]
            for row in rows
        ],
        row_classes=classes,
    )


def _changes_html(changes: Sequence[ChangeRow], total: int) -> str:
    if not changes:
        return '<p class="note">None in this period.</p>'
    table = _table(
        ["detected", "source", "country", "name", "kind", "level", "title"],
        [
            [
                (_h(_when(c.detected_at)), ""),
                (_h(c.source), ""),
                (_h(c.country), ""),
                (_h(c.country_name), ""),
                (_h(c.kind), ""),
                (_h(_level_change(c)), ""),
                (_link(c.title, c.url), ""),
            ]
            for c in changes
        ],
    )
    if total > len(changes):
        table += f'<p class="note">{total - len(changes)} older ones not shown.</p>'
    return table


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
