"""The report's input: plain rows, as the caller queried them from the database.

Frozen dataclasses with the columns the report uses; `ReportRows` gathers every
kind of row a report is built from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from advisories.sources import RateLimitPolicy

__all__ = [
    "AdvisoryRow",
    "BacklogPoint",
    "ChangeRow",
    "JobRow",
    "ReportRows",
    "RequestRow",
]


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
