"""Health checks, alert deduplication and signed webhooks (pure).

Everything here is a function of plain inputs: a :class:`MetricsSnapshot`
collected by ``activities.health`` (jobs, requests, changes and dead letters
from PostgreSQL; backlog and pollers from Temporal; worker heartbeats), the
thresholds, and a clock passed in. Nothing reads a clock, a database or the
network, so every rule is tested without a server.

* :data:`CHECKS` defines each check as data (what it means, its unit, which
  side of the threshold is bad); :func:`evaluate` turns a snapshot into one
  :class:`CheckResult` per check and subject (source, queue or worker).
* :func:`reconcile` is the alert deduplication: an alert fires once when a
  check turns bad, reminds only after a cool-down, and is resolved (and says
  so) when the check recovers.
* :func:`sign` / :func:`verify` are the webhook signature: HMAC-SHA256 over
  ``<timestamp>.<raw body>``; the timestamp travels in its own header and is
  covered by the signature, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from advisories.changes import ChangeKind
from advisories.queues import ALL_QUEUES
from advisories.text import one_line

__all__ = [
    "CHECKS",
    "DEFAULT_TOLERANCE_SECONDS",
    "ID_HEADER",
    "NOTABLE_CHANGE_KINDS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Alert",
    "AlertDecision",
    "CheckDefinition",
    "CheckName",
    "CheckResult",
    "Event",
    "HealthSettings",
    "MetricsSnapshot",
    "PollerMetrics",
    "QueueMetrics",
    "SourceMetrics",
    "Thresholds",
    "WorkerMetrics",
    "alert_message",
    "change_message",
    "encode_body",
    "evaluate",
    "failing",
    "poller_live",
    "reconcile",
    "redact_target",
    "sign",
    "signed_headers",
    "target_key",
    "verify",
]

#: Header carrying ``sha256=<hex>``: HMAC-SHA256 of ``<timestamp>.<raw body>``.
SIGNATURE_HEADER: Final = "X-Signature-SHA256"
#: Header carrying the Unix time (seconds) the request was signed at.
TIMESTAMP_HEADER: Final = "X-Signature-Timestamp"
#: Header carrying the delivery id: the same on every retry, so receivers can dedupe.
ID_HEADER: Final = "X-Webhook-Id"
#: How old a signed request a receiver accepts by default (seconds).
DEFAULT_TOLERANCE_SECONDS: Final = 300

#: Change kinds people are notified of (``ChangeKind.notable``).
NOTABLE_CHANGE_KINDS: Final[tuple[str, ...]] = tuple(k.value for k in ChangeKind if k.notable)

#: Job statuses of a fetch that ended (the denominator of the success rate).
FINISHED_STATUSES: Final = frozenset({"success", "failure", "dead_letter"})
#: Statuses of an index fetch that did not get a usable index.
FAILED_STATUSES: Final = frozenset({"failure", "dead_letter", "retry"})
# Longest error message a check's detail quotes (on one line).
_QUOTE_LIMIT: Final = 300


# --------------------------------------------------------------------------- settings


class HealthSettings(BaseSettings):
    """Thresholds, webhooks and alerting policy, from the environment (or ``.env``).

    Environment variable names are the upper-cased field names
    (``WEBHOOK_URLS``, ``WEBHOOK_SECRET``, ``HEALTH_SUCCESS_RATE_MIN`` ...).
    """

    # Inputs stay out of validation errors: they may hold the secret or a token URL.
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    webhook_urls: list[str] = Field(
        default_factory=list,
        # Webhook paths are often tokens: kept out of repr (and so out of logs).
        repr=False,
        description='JSON list of URLs that receive alerts and change notifications, e.g. ["https://hooks.example.org/advisories"]',
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC-SHA256 key signing every webhook request"
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_max_attempts: int = Field(
        default=20,
        ge=1,
        description="Attempts (over all health runs) before a delivery is marked failed",
    )
    alert_cooldown_hours: float = Field(
        default=6.0, gt=0, description="A still-failing check is re-sent after this long"
    )

    health_window_hours: float = Field(default=6.0, gt=0, le=24 * 30)
    health_success_rate_min: float = Field(default=80.0, ge=0, le=100)
    health_success_min_jobs: int = Field(
        default=10,
        ge=1,
        # A source that is idle between cycles finishes one index fetch per cycle:
        # one failure among three is noise, not a rate.
        description="Fewer finished fetches than this in the window: no success-rate verdict",
    )
    health_backlog_max: int = Field(default=100, ge=0)
    health_worker_memory_max_mb: float = Field(default=500.0, gt=0)
    health_rate_limit_utilisation_max: float = Field(default=90.0, gt=0)
    health_poller_stale_seconds: float = Field(
        default=90.0,
        ge=10,
        description="An idle worker re-polls about every 60 s: a poller not seen for"
        " longer than this is gone",
    )
    health_freshness_factor: float = Field(default=2.0, gt=0)
    health_canary_min_ratio: float = Field(default=0.8, gt=0, le=1)
    health_queues: list[str] = Field(
        default_factory=lambda: list(ALL_QUEUES),
        description="Task queues that must have a live worker (and a backlog under the limit)",
    )
    health_database_timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    @field_validator("webhook_urls")
    @classmethod
    def _http_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            parts = urlsplit(url)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                # Never echo the URL: its path or query may be a secret token.
                raise ValueError(f"WEBHOOK_URLS: not an http(s) URL: {redact_target(url)}")
        return value

    @model_validator(mode="after")
    def _secret_with_urls(self) -> HealthSettings:
        if self.webhook_urls and self.webhook_secret is None:
            raise ValueError("WEBHOOK_URLS is set but WEBHOOK_SECRET is not: webhooks are signed")
        return self

    @property
    def alert_cooldown(self) -> timedelta:
        """How long a still-failing check stays quiet after a notification."""
        return timedelta(hours=self.alert_cooldown_hours)

    def thresholds(self) -> Thresholds:
        """The check thresholds as a plain object."""
        return Thresholds(
            success_rate_min=self.health_success_rate_min,
            success_min_jobs=self.health_success_min_jobs,
            backlog_max=self.health_backlog_max,
            worker_memory_max_mb=self.health_worker_memory_max_mb,
            rate_limit_utilisation_max=self.health_rate_limit_utilisation_max,
            poller_stale_seconds=self.health_poller_stale_seconds,
            freshness_factor=self.health_freshness_factor,
            canary_min_ratio=self.health_canary_min_ratio,
        )

    def safe_summary(self) -> dict[str, object]:
        """What may be printed: webhook targets redacted, the secret only as set/unset."""
        return {
            "webhook_urls": [redact_target(url) for url in self.webhook_urls],
            "webhook_secret": "set" if self.webhook_secret else "unset",
            "alert_cooldown_hours": self.alert_cooldown_hours,
            "thresholds": dataclasses.asdict(self.thresholds()),
            "health_queues": self.health_queues,
        }


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Where each check turns bad (see :data:`CHECKS`).

    Attributes:
        success_rate_min: Fetch success rate (percent) below which a source fails.
        success_min_jobs: Finished fetches needed before the rate is judged.
        backlog_max: Tasks waiting on one queue (workflow + activity) above which it fails.
        worker_memory_max_mb: RSS above which a worker fails.
        rate_limit_utilisation_max: Percent of the hourly budget above which a source fails.
        poller_stale_seconds: A poller not seen for longer is not a live worker.
        freshness_factor: A source fails when its last successful index fetch is
            older than this many scrape intervals.
        canary_min_ratio: An index listing fewer than this share of the countries
            of the previous full index is an incident.
    """

    success_rate_min: float = 80.0
    success_min_jobs: int = 10
    backlog_max: int = 100
    worker_memory_max_mb: float = 500.0
    rate_limit_utilisation_max: float = 90.0
    poller_stale_seconds: float = 90.0
    freshness_factor: float = 2.0
    canary_min_ratio: float = 0.8


# --------------------------------------------------------------------------- definitions


class CheckName(StrEnum):
    """Every check, one name everywhere (rows, alerts, payloads, CLI)."""

    DATABASE = "database"
    TEMPORAL = "temporal"
    SUCCESS_RATE = "success_rate"
    INDEX_FETCH = "index_fetch"
    FRESHNESS = "freshness"
    INDEX_CANARY = "index_canary"
    RATE_LIMIT = "rate_limit_utilisation"
    QUEUE_BACKLOG = "queue_backlog"
    QUEUE_WORKERS = "queue_workers"
    WORKER_MEMORY = "worker_memory"


@dataclass(frozen=True, slots=True)
class CheckDefinition:
    """What one check means.

    Attributes:
        name: The check.
        subject: What it is evaluated per: ``system``, ``source``, ``queue`` or ``worker``.
        description: One line for people (also in alert payloads).
        unit: Unit of ``value`` and ``threshold``.
        bad_when: ``below`` or ``above`` the threshold (``None``: pass/fail only).
        threshold_field: The :class:`Thresholds` field holding the threshold, if any.
    """

    name: CheckName
    subject: str
    description: str
    unit: str = ""
    bad_when: str | None = None
    threshold_field: str | None = None


CHECKS: Final[dict[CheckName, CheckDefinition]] = {
    d.name: d
    for d in (
        CheckDefinition(CheckName.DATABASE, "system", "PostgreSQL answers"),
        CheckDefinition(CheckName.TEMPORAL, "system", "the Temporal frontend answers"),
        CheckDefinition(
            CheckName.SUCCESS_RATE,
            "source",
            "share of finished fetches (index and country jobs) that succeeded",
            "%",
            "below",
            "success_rate_min",
        ),
        CheckDefinition(
            CheckName.INDEX_FETCH, "source", "the latest index fetch of the source succeeded"
        ),
        CheckDefinition(
            CheckName.FRESHNESS,
            "source",
            "hours since the last successful index fetch, against the freshness"
            " factor times the scrape interval",
            "h",
            "above",
        ),
        CheckDefinition(
            CheckName.INDEX_CANARY,
            "source",
            "countries in the latest full index, against a share of the previous one"
            " (an empty or unparseable index fails too)",
            "countries",
            "below",
        ),
        CheckDefinition(
            CheckName.RATE_LIMIT,
            "source",
            "requests in the last hour as a share of the hourly budget in force",
            "%",
            "above",
            "rate_limit_utilisation_max",
        ),
        CheckDefinition(
            CheckName.QUEUE_BACKLOG,
            "queue",
            "tasks waiting on the task queue (workflow + activity)",
            "tasks",
            "above",
            "backlog_max",
        ),
        CheckDefinition(
            CheckName.QUEUE_WORKERS,
            "queue",
            "workers polling the task queue for both workflow and activity tasks",
            "workers",
            "below",
        ),
        CheckDefinition(
            CheckName.WORKER_MEMORY,
            "worker",
            "resident memory of a worker process",
            "MB",
            "above",
            "worker_memory_max_mb",
        ),
    )
}


# --------------------------------------------------------------------------- metrics


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


# --------------------------------------------------------------------------- checks


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


# --------------------------------------------------------------------------- alerts


class Event(StrEnum):
    """What a webhook request announces."""

    FIRING = "firing"
    REMINDER = "reminder"
    RESOLVED = "resolved"
    CHANGE = "change"


@dataclass(frozen=True)
class Alert:
    """The alert state of one check and subject, across health runs.

    Attributes:
        key: Dedup key (:attr:`CheckResult.key`).
        check: The check name.
        state: ``firing`` or ``resolved``.
        first_seen_at: When it turned bad (this time).
        last_seen_at: The last run that saw it (bad, or the recovery).
        last_sent_at: When a notification about it last went out.
        resolved_at: When it recovered (None while firing).
        notifications: Notifications sent about it this time.
    """

    key: str
    check: str
    state: str
    first_seen_at: datetime
    last_seen_at: datetime
    last_sent_at: datetime | None = None
    resolved_at: datetime | None = None
    notifications: int = 0

    @property
    def firing(self) -> bool:
        """Whether the check is currently bad."""
        return self.state == "firing"


@dataclass(frozen=True)
class AlertDecision:
    """What to do about one alert this run.

    Attributes:
        alert: Its new state (to store).
        event: The notification to send, or None (deduplicated, or nothing new).
        result: The check result behind it (None when its subject vanished).
    """

    alert: Alert
    event: Event | None
    result: CheckResult | None


def reconcile(
    previous: Mapping[str, Alert],
    results: Sequence[CheckResult],
    *,
    now: datetime,
    cooldown: timedelta,
) -> list[AlertDecision]:
    """Decide the alerts of this run, given the stored alert states.

    * a check that turns bad fires once (``firing``);
    * one that stays bad is quiet until ``cooldown`` has passed since the last
      notification, then reminds (``reminder``);
    * one that recovers sends ``resolved`` once;
    * a firing alert whose subject is no longer reported (a worker that went
      away) while its check still ran is resolved, so nothing fires forever;
      one whose check did not run at all (its data source is down) is left alone.

    Returns:
        One decision per alert that changed, in the order of ``results``
        (vanished subjects last). Unchanged, already resolved alerts are omitted.
    """
    decisions: list[AlertDecision] = []
    seen: set[str] = set()
    for result in results:
        seen.add(result.key)
        decision = _decide(previous.get(result.key), result, now=now, cooldown=cooldown)
        if decision is not None:
            decisions.append(decision)
    checks_run = {r.name for r in results}
    for key in sorted(set(previous) - seen):
        alert = previous[key]
        if alert.firing and alert.check in checks_run:
            decisions.append(AlertDecision(_resolved(alert, now), Event.RESOLVED, None))
    return decisions


def _decide(
    alert: Alert | None, result: CheckResult, *, now: datetime, cooldown: timedelta
) -> AlertDecision | None:
    if result.ok:
        if alert is None or not alert.firing:
            return None
        return AlertDecision(_resolved(alert, now), Event.RESOLVED, result)
    if alert is None or not alert.firing:
        fired = Alert(
            key=result.key,
            check=result.name,
            state="firing",
            first_seen_at=now,
            last_seen_at=now,
            last_sent_at=now,
            notifications=1,
        )
        return AlertDecision(fired, Event.FIRING, result)
    due = alert.last_sent_at is None or now - alert.last_sent_at >= cooldown
    updated = Alert(
        key=alert.key,
        check=alert.check,
        state="firing",
        first_seen_at=alert.first_seen_at,
        last_seen_at=now,
        last_sent_at=now if due else alert.last_sent_at,
        notifications=alert.notifications + (1 if due else 0),
    )
    return AlertDecision(updated, Event.REMINDER if due else None, result)


def _resolved(alert: Alert, now: datetime) -> Alert:
    return Alert(
        key=alert.key,
        check=alert.check,
        state="resolved",
        first_seen_at=alert.first_seen_at,
        last_seen_at=now,
        last_sent_at=now,
        resolved_at=now,
        notifications=alert.notifications + 1,
    )


# --------------------------------------------------------------------------- webhooks


def alert_message(decision: AlertDecision) -> tuple[str, dict[str, Any]]:
    """Delivery id and JSON body of the notification of ``decision``.

    The id names the alert and the instant of the decision, so every retry of
    one notification carries the same id and two notifications never share one.

    Raises:
        ValueError: for a decision that sends nothing.
    """
    if decision.event is None:
        raise ValueError(f"alert {decision.alert.key} sends nothing this run")
    alert, result = decision.alert, decision.result
    at = _iso(alert.last_seen_at)
    delivery_id = f"alert:{alert.key}:{decision.event.value}:{at}"
    check = _definition(alert.check)
    body: dict[str, Any] = {
        "id": delivery_id,
        "type": "alert",
        "event": decision.event.value,
        "alert": alert.key,
        "check": alert.check,
        "description": check.description if check else "",
        "state": alert.state,
        "first_seen_at": _iso(alert.first_seen_at),
        "at": at,
        "source": result.source if result else None,
        "queue": result.queue if result else None,
        "worker": result.worker if result else None,
        "value": result.value if result else None,
        "threshold": result.threshold if result else None,
        "unit": check.unit if check else "",
        "detail": result.detail if result else "no longer reported",
    }
    return delivery_id, body


def change_message(change: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Delivery id and JSON body of the notification of one advisory change.

    Args:
        change: A change row: ``id``, ``source``, ``country``, ``country_name``,
            ``kind``, ``level_before``, ``level_after``, ``regional_before``,
            ``regional_after``, ``source_updated_at``, ``detected_at``, ``title``, ``url``.
    """
    delivery_id = f"change:{change['id']}"
    body = {
        "id": delivery_id,
        "type": "change",
        "event": Event.CHANGE.value,
        "change_id": change["id"],
        "source": change["source"],
        "country": change["country"],
        "country_name": change.get("country_name"),
        "kind": change["kind"],
        "level_before": change.get("level_before"),
        "level_after": change.get("level_after"),
        "regional_before": change.get("regional_before"),
        "regional_after": change.get("regional_after"),
        "title": change.get("title"),
        "url": change.get("url"),
        "source_updated_at": _iso_or_none(change.get("source_updated_at")),
        "detected_at": _iso_or_none(change.get("detected_at")),
    }
    return delivery_id, body


def encode_body(body: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact, key-sorted JSON in UTF-8."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 keyed by ``secret`` over ``<timestamp>.<body>``."""
    message = str(timestamp).encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, *, timestamp: int, delivery_id: str) -> dict[str, str]:
    """The headers of one signed webhook request."""
    return {
        "Content-Type": "application/json",
        ID_HEADER: delivery_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


def verify(
    secret: str,
    body: bytes,
    *,
    timestamp: str | None,
    signature: str | None,
    now: int,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver checks: a valid signature on a request signed recently.

    Args:
        secret: The shared secret.
        body: The raw request body, as received.
        timestamp: The ``X-Signature-Timestamp`` header.
        signature: The ``X-Signature-SHA256`` header.
        now: The receiver's Unix time.
        tolerance_seconds: Oldest (and furthest in the future) timestamp accepted.
    """
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    if abs(now - int(timestamp)) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


def target_key(url: str) -> str:
    """A stable key of a webhook URL that reveals nothing of it (stored with deliveries)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def redact_target(url: str) -> str:
    """What may be logged of a webhook URL: scheme, host and port only.

    Paths and queries of webhook URLs are often secrets themselves (chat
    services put the token there).
    """
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme or '?'}://{host}{port}/… ({target_key(url)[:8]})"


# --------------------------------------------------------------------------- helpers


def _definition(name: str) -> CheckDefinition | None:
    try:
        return CHECKS[CheckName(name)]
    except ValueError:
        return None


def _parse(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _iso_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return _iso(value) if isinstance(value, datetime) else str(value)
