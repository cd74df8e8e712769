"""The report model: the numbers `build_report` computes, and their JSON form.

Per source and time bucket (`BucketStats`, `SourceStats`), queue backlog
(`QueueBacklog`), levels by country × source (`LevelCell`, `MatrixRow`,
`LevelMatrix`), recent changes (`ChangeSummary`), and the whole `Report`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from advisories.changes import ChangeKind
from advisories.report.rows import BacklogPoint, ChangeRow

__all__ = [
    "NOTABLE_KINDS",
    "BucketStats",
    "ChangeSummary",
    "LevelCell",
    "LevelMatrix",
    "MatrixRow",
    "QueueBacklog",
    "Report",
    "SourceStats",
]

#: Change kinds that are notable (raised, lowered, regional, withdrawn).
NOTABLE_KINDS: Final = frozenset(k.value for k in ChangeKind if k.notable)


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
            n for kinds in self.by_source.values() for k, n in kinds.items() if k in NOTABLE_KINDS
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


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
