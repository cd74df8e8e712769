"""Inputs and results of workflows and activities: one object each, small.

Kept free of I/O imports so workflow code can import them through the sandbox.
Raw documents never travel through workflow history; only ids, counts and
short messages do.

No ``from __future__ import annotations`` here: with string annotations the payload
converter resolves every dataclass's type hints again for each value it converts.
"""

from dataclasses import dataclass, field

from advisories.followup import RaisedCountry
from advisories.models import RetryConfig

__all__ = [
    "BatchInput",
    "BatchResult",
    "CountryInput",
    "CountryOutcome",
    "CountryResult",
    "CountryTask",
    "CycleSummary",
    "DeadLetterQuery",
    "DeadLetterRow",
    "FailureInfo",
    "FollowUpTargets",
    "FollowUpTargetsInput",
    "IndexInput",
    "IndexResult",
    "JobStatusInput",
    "QuarantineInput",
    "QuarantineState",
    "RaisedCountry",
    "RetryConfig",
    "ScrapeSourceInput",
    "ScrapeSourceResult",
]


@dataclass(frozen=True)
class ScrapeSourceInput:
    """Input of ``ScrapeSourceWorkflow``.

    Attributes:
        source: Source id.
        retry: Retry policy parameters for scrape activities.
        countries: Scrape exactly these countries now, changed or not (None: what changed).
        batch_size: At most this many countries per fetch activity; a cycle's plan is cut
            into even batches, at least ``max_parallel_batches`` of them.
        max_parallel_batches: Fetch activities running at once.
        batch_concurrency: Documents fetched at once inside one activity.
        followup_of: Set on a follow-up run: the source whose raise caused it. Such a run
            polls its index conditionally, fetches ``countries`` whatever the index says,
            and never starts follow-ups of its own.
    """

    source: str
    retry: RetryConfig = field(default_factory=RetryConfig)
    countries: list[str] | None = None
    batch_size: int = 100
    max_parallel_batches: int = 4
    batch_concurrency: int = 8
    followup_of: str | None = None


@dataclass(frozen=True)
class ScrapeSourceResult:
    """Result of one source cycle."""

    source: str
    not_modified: bool
    items_seen: int
    versions_created: int
    requests_made: int
    countries_planned: int = 0
    countries_stored: int = 0
    countries_quarantined: list[str] = field(default_factory=list)
    #: Workflow ids of the follow-up runs this cycle started (advisories/followup.py).
    followups: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CountryTask:
    """One country to fetch this cycle."""

    country: str
    document_path: str | None
    job_key: str
    job_id: int = 0
    entry_hash: str = ""


@dataclass(frozen=True)
class IndexInput:
    """Input of the index activity.

    Attributes:
        followup: A follow-up run: the index request stays conditional, and ``countries``
            come from the stored index entries when it answers 304.
    """

    source: str
    job_key: str
    job_prefix: str
    retry: RetryConfig = field(default_factory=RetryConfig)
    countries: list[str] | None = None
    followup: bool = False


@dataclass(frozen=True)
class IndexResult:
    """What the index activity did and what is left to fetch.

    ``deferred_seconds > 0`` means the rate limit had no budget: nothing was
    fetched; try again after that long (no retry attempt is spent).
    """

    source: str
    http_status: int = 0
    not_modified: bool = False
    items_seen: int = 0
    versions_created: int = 0
    requests_made: int = 0
    tasks: list[CountryTask] = field(default_factory=list)
    deferred_seconds: float = 0.0
    #: Countries the advisories stored from the index put at the follow-up level.
    raised: list[RaisedCountry] = field(default_factory=list)


@dataclass(frozen=True)
class BatchInput:
    """Input of the batch fetch activity."""

    source: str
    tasks: list[CountryTask]
    concurrency: int = 8


@dataclass(frozen=True)
class CountryOutcome:
    """How one country of a batch went: ``ok``, ``failed`` or ``deferred``."""

    country: str
    status: str
    versions_created: int = 0
    requests_made: int = 0
    failure_kind: str | None = None
    message: str | None = None
    http_status: int | None = None
    traceback: str | None = None
    retryable: bool = False
    wait_seconds: float = 0.0
    failed_at: str | None = None
    raised: list[RaisedCountry] = field(default_factory=list)


@dataclass(frozen=True)
class BatchResult:
    """Per-country outcomes of a batch, in task order."""

    outcomes: list[CountryOutcome]


@dataclass(frozen=True)
class CountryInput:
    """Input of the single-country activity (retries and requeues).

    Attributes:
        attempts_before: Attempts already spent on this country this cycle, so
            backoff and the "last attempt" decision continue from there.
    """

    source: str
    task: CountryTask
    retry: RetryConfig = field(default_factory=RetryConfig)
    attempts_before: int = 0


@dataclass(frozen=True)
class CountryResult:
    """What a single-country scrape did (``deferred_seconds > 0``: try again later)."""

    country: str
    versions_created: int = 0
    requests_made: int = 0
    not_modified: bool = False
    deferred_seconds: float = 0.0
    raised: list[RaisedCountry] = field(default_factory=list)


@dataclass(frozen=True)
class FollowUpTargetsInput:
    """Which other sources list these countries (the follow-up targets of ``source``)."""

    source: str
    countries: list[str]


@dataclass(frozen=True)
class FollowUpTargets:
    """Source id → the countries (of those asked) its index lists."""

    listed: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class CycleSummary:
    """Recorded as the cycle's own job row at the end of a cycle."""

    source: str
    job_key: str
    status: str
    items_seen: int
    versions_created: int
    requests_made: int
    error: str | None = None
    started_at: str | None = None


@dataclass(frozen=True)
class JobStatusInput:
    """Move job rows to a status."""

    job_keys: list[str]
    status: str


@dataclass
class FailureInfo:
    """Why a job ended in the dead-letter queue."""

    kind: str
    message: str
    attempts: int
    first_failure_at: str
    last_failure_at: str
    http_status: int | None = None
    traceback: str | None = None


@dataclass(frozen=True)
class QuarantineInput:
    """Input of ``QuarantineWorkflow``.

    Attributes:
        task: The country (``document_path`` None for sources whose index
            carries the advisory; ``country == "*"`` for a failed index).
    """

    source: str
    task: CountryTask
    failure: FailureInfo
    retry: RetryConfig = field(default_factory=RetryConfig)


@dataclass
class QuarantineState:
    """What the ``state`` query answers and the database mirrors."""

    workflow_id: str
    source: str
    country: str
    job_key: str
    status: str
    failure: FailureInfo
    requeue_count: int = 0
    note: str | None = None
    history: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DeadLetterQuery:
    """Which dead letters ``process-dlq`` may requeue."""

    kinds: list[str]
    limit: int = 500


@dataclass(frozen=True)
class DeadLetterRow:
    """One requeue candidate."""

    workflow_id: str
    source: str
    country: str
    failure_kind: str
