"""The figures health looks at: per source, task queue and worker, in one snapshot (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "MetricsSnapshot",
    "PollerMetrics",
    "QueueMetrics",
    "SourceMetrics",
    "WorkerMetrics",
    "poller_live",
]


@dataclass(frozen=True)
class SourceMetrics:
    """One source over the metrics window (times are ISO 8601 UTC strings).

    Attributes:
        source: Source id.
        interval_seconds: The source's scrape interval (schedule).
        jobs_by_status: Job rows of every kind started in the window, by status.
        fetches_finished: Index and country jobs that ended (success, failure, dead letter).
        fetches_succeeded: Of those, the successful ones.
        duration_p50_ms: Median duration of finished fetches.
        duration_p95_ms: 95th percentile duration of finished fetches.
        duration_max_ms: Longest finished fetch.
        requests_made: Requests sent to the source in the window.
        requests_allowed: The hourly budget times the window's hours.
        utilisation_percent: Requests in the last hour against the budget in force now.
        rate_limit_enforced: False when the limit is switched off (the utilisation
            is then reported, not judged).
        changes_detected: Changes stored in the window.
        changes_notable: Of those, the notable ones (raised, lowered, regional, withdrawn).
        dead_letters_open: Quarantined jobs still open or requeued.
        peak_rss_mb: Highest worker RSS recorded by a job in the window.
        recent_peak_rss_mb: Highest worker RSS recorded by a job in the last hour.
        last_success_at: End of the newest successful index fetch.
        last_index_status: Status of the newest ended index fetch.
        last_index_error: Its error, if it failed.
        index_count_latest: Countries in the newest successful full (200) index.
        index_count_previous: Countries in the full index before it.
        index_contract_failure: Message of an open index quarantine of kind
            ``parse`` or ``contract`` (an empty or broken index), if any.
    """

    source: str
    interval_seconds: float
    jobs_by_status: dict[str, int] = field(default_factory=dict)
    fetches_finished: int = 0
    fetches_succeeded: int = 0
    duration_p50_ms: float | None = None
    duration_p95_ms: float | None = None
    duration_max_ms: float | None = None
    requests_made: int = 0
    requests_allowed: int | None = None
    utilisation_percent: float | None = None
    rate_limit_enforced: bool = True
    changes_detected: int = 0
    changes_notable: int = 0
    dead_letters_open: int = 0
    peak_rss_mb: float | None = None
    recent_peak_rss_mb: float | None = None
    last_success_at: str | None = None
    last_index_status: str | None = None
    last_index_error: str | None = None
    index_count_latest: int | None = None
    index_count_previous: int | None = None
    index_contract_failure: str | None = None

    @property
    def success_rate(self) -> float | None:
        """Percent of finished fetches that succeeded (None: nothing finished)."""
        if not self.fetches_finished:
            return None
        return round(100.0 * self.fetches_succeeded / self.fetches_finished, 1)


@dataclass(frozen=True)
class PollerMetrics:
    """A worker polling one task queue for one task type.

    Attributes:
        identity: The worker's identity (``pid@host`` by default).
        task_type: ``workflow`` or ``activity``.
        last_access_at: When the server last saw it poll (ISO 8601).
        age_seconds: Seconds since then, at collection time.
        live: Whether it counts as a live worker (see :func:`poller_live`).
    """

    identity: str
    task_type: str
    last_access_at: str
    age_seconds: float
    live: bool


@dataclass(frozen=True)
class QueueMetrics:
    """One task queue, from Temporal's task-queue stats (cached ~5 s by the server).

    Attributes:
        queue: Task-queue name.
        workflow_backlog: Approximate workflow tasks waiting.
        activity_backlog: Approximate activity tasks waiting.
        backlog_age_seconds: Age of the oldest waiting task (either type).
        pollers: Every poller the server lists (stopped ones stay listed for minutes).
        error: Why the queue could not be described, if it could not.
    """

    queue: str
    workflow_backlog: int = 0
    activity_backlog: int = 0
    backlog_age_seconds: float = 0.0
    pollers: list[PollerMetrics] = field(default_factory=list)
    error: str | None = None

    @property
    def backlog(self) -> int:
        """Tasks waiting, both types."""
        return self.workflow_backlog + self.activity_backlog

    def live_identities(self, task_type: str) -> set[str]:
        """Identities of the live pollers of ``task_type``."""
        return {p.identity for p in self.pollers if p.live and p.task_type == task_type}

    @property
    def live_workers(self) -> int:
        """Workers that could run both kinds of task of this queue now."""
        return min(len(self.live_identities("workflow")), len(self.live_identities("activity")))


@dataclass(frozen=True)
class WorkerMetrics:
    """One worker process, from its heartbeat row.

    Attributes:
        identity: ``pid@host``, the same as its Temporal pollers'.
        host: Host name.
        pid: Process id.
        queues: Task queues it polls.
        rss_mb: Resident memory at the last heartbeat.
        peak_rss_mb: Highest resident memory since it started.
        started_at: When it started (ISO 8601).
        seen_at: Its last heartbeat (ISO 8601).
        age_seconds: Seconds since that heartbeat, at collection time.
        stopped_at: When it shut down cleanly, if it did (ISO 8601).
    """

    identity: str
    host: str
    pid: int
    queues: list[str]
    rss_mb: float
    peak_rss_mb: float
    started_at: str
    seen_at: str
    age_seconds: float
    stopped_at: str | None = None

    def live(self, stale_seconds: float) -> bool:
        """Whether the heartbeat is recent and the process has not said it stopped."""
        return self.stopped_at is None and self.age_seconds <= stale_seconds


@dataclass(frozen=True)
class MetricsSnapshot:
    """Everything the health checks and ``metrics`` look at, collected at one time.

    Attributes:
        collected_at: When (ISO 8601 UTC).
        hours: The window of the job, request and change figures.
        database_ok: Whether PostgreSQL answered.
        database_error: Why not.
        temporal_ok: Whether the Temporal frontend answered.
        temporal_error: Why not.
        sources: Per source (empty when the database is down).
        queues: Per task queue (empty when Temporal is down).
        workers: Per worker heartbeat seen in the window.
    """

    collected_at: str
    hours: float
    database_ok: bool
    temporal_ok: bool
    database_error: str | None = None
    temporal_error: str | None = None
    sources: list[SourceMetrics] = field(default_factory=list)
    queues: list[QueueMetrics] = field(default_factory=list)
    workers: list[WorkerMetrics] = field(default_factory=list)


def poller_live(
    last_access: datetime,
    now: datetime,
    *,
    stale_seconds: float,
    stopped_at: datetime | None = None,
) -> bool:
    """Whether a poller the server lists is a live worker.

    The server keeps a stopped worker's pollers listed for minutes, and an idle
    live worker re-polls only about every 60 s, so liveness is judged by the
    last access: recent enough, and not before the process said it stopped.
    """
    if stopped_at is not None and last_access <= stopped_at:
        return False
    return (now - last_access).total_seconds() <= stale_seconds
